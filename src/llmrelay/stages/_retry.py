"""The retry stage: the call's total deadline, retries with backoff and `Retry-After`.

Everything below it is one attempt, run under the time left (a cancel scope with the call's
deadline): the wait for a slot and the rate limiter included, and, for a stream, the read up to
its first chunk. The
decision itself is the pure rule list in `_retry.decide`. This stage is the only writer of the
`retries` and `failures` counters: it counts a call that gave up, and (through the reply's
finish hook) a stream that failed after its first chunk.
"""

from __future__ import annotations

import logging
import random
import time
from typing import TYPE_CHECKING, Protocol

import anyio

from .._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    CircuitOpenError,
    LLMError,
)
from .._retry import decide
from ._base import Call, Reply, Stage

if TYPE_CHECKING:
    from .._types import Usage
    from .._usage import UsageTotals

logger = logging.getLogger("llmrelay")


class RetryListener(Protocol):
    async def __call__(self, call: Call, error: LLMError, delay: float) -> None:
        """Told before each backoff sleep: the attempt `call.attempt` (0 for the first) failed
        with `error`, and the next starts in `delay` seconds."""


class RetryStage:
    def __init__(self, inner: Stage, *, usage: UsageTotals, provider: str) -> None:
        self._inner = inner
        self._usage = usage
        self._name = provider
        self._rand = random.Random()
        # Who hears about each retry (the hooks stage, set by the composer); None costs nothing.
        self.listener: RetryListener | None = None

    def _count_failure(self, usage: Usage | None, error: LLMError | None) -> None:
        if error is not None:
            self._usage.failures += 1

    async def send(self, call: Call) -> Reply:
        total = call.timeout.total
        deadline = call.deadline = None if total is None else anyio.current_time() + total
        while True:
            try:
                if deadline is None:
                    reply = await self._inner.send(call)
                else:
                    if deadline <= anyio.current_time():
                        raise TimeoutError
                    # A bare cancel scope, not `anyio.fail_after`: that one is two nested
                    # generator context managers, ~0.9 KB and a few µs more per call.
                    with anyio.CancelScope(deadline=deadline) as scope:
                        reply = await self._inner.send(call)
                    if scope.cancelled_caught:  # only its deadline cancels this scope
                        raise TimeoutError
            except TimeoutError:
                self._usage.failures += 1
                raise APITimeoutError(
                    f"{self._name}: the total timeout ran out", provider=self._name
                ) from None
            except CircuitOpenError:
                self._usage.failures += 1  # the server is down: retrying now only waits
                raise
            except (APIConnectionError, APIStatusError) as error:
                delay = self._judge(call, error, deadline)
                if delay is None:
                    self._usage.failures += 1
                    raise
                self._usage.retries += 1
                if self.listener is not None:
                    await self.listener(call, error, delay)
                call.attempt += 1
                await anyio.sleep(delay)
                continue
            except LLMError:
                self._usage.failures += 1  # not something a retry can fix (bad JSON, config)
                raise
            reply.on_finish(self._count_failure)
            return reply

    def _judge(self, call: Call, error: LLMError, deadline: float | None) -> float | None:
        """Seconds to wait before the next attempt, or `None` to give up."""
        status = headers = hint = retryable = None
        if isinstance(error, APIStatusError):
            status, headers = error.status_code, error.headers
            hint, retryable = error.retry_after, error.should_retry
        decision = decide(
            policy=call.retry,
            retries_done=call.attempt,
            status_code=status,
            headers=headers,
            remaining=None if deadline is None else deadline - anyio.current_time(),
            rand=self._rand.random(),
            now_epoch=time.time(),
            retry_after_hint=hint,
            retryable_hint=retryable,
        )
        if isinstance(error, APIStatusError) and decision.retry_after is not None:
            error.retry_after = decision.retry_after
        if logger.isEnabledFor(logging.INFO):
            if decision.retry:
                logger.info(
                    "retrying %s %s after %s: %s",
                    call.method,
                    _path(call.url),
                    type(error).__name__,
                    decision.reason,
                )
            else:
                logger.info(
                    "giving up on %s %s after %d retries: %s",
                    call.method,
                    _path(call.url),
                    call.attempt,
                    decision.reason,
                )
        return decision.delay if decision.retry else None


def _path(url: str) -> str:
    # Logs name the path only: a base URL may carry credentials or a tenant's host.
    rest = url.partition("://")[2]
    return "/" + rest.partition("/")[2].partition("?")[0]
