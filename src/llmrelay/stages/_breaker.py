"""The circuit breaker: a server that is down stops costing every call all of its retries.

`Breaker` is the state (closed → open → half-open → closed), shared by everything that talks
to one server through a client; `BreakerStage` is the stage that consults and feeds it, one
attempt at a time (it sits inside the retry stage, above the concurrency slot, so an open
circuit fails a call before it waits for a slot or a rate limit).

- closed: attempts go through; `failures` in a row that cannot connect or end in a 5xx
  (500-504), from at least two different calls and over at least `min_span` seconds, open the
  circuit (one call's own retries are
  its `RetryPolicy`'s business: a single call with ``max_retries=10`` gets its 11 attempts). Any other outcome (a success, a 4xx, a 429, a 529) resets the
  count: the server is there.
- open: every attempt fails at once with `CircuitOpenError` (the retry stage does not retry it)
  until `cooldown` seconds have passed.
- half-open: one attempt goes through as a probe while the others still fail fast; its success
  closes the circuit, its failure opens it for another cool-down.

For other code that wants to skip a server that is down (e.g. fallbacks): `Breaker.is_open`
(true while calls would fail fast), `Breaker.state` and `Breaker.retry_in`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import anyio

from .._config import CircuitBreaker
from .._exceptions import (
    APIConnectionError,
    CircuitOpenError,
    InternalServerError,
    LLMError,
    OverloadedError,
    RateLimitBackendError,
)
from ._base import Call, Reply, Stage

State = Literal["closed", "open", "half-open"]


# Exceptions (by class name, whatever the HTTP library) that mean no connection could be made.
_CONNECT_FAILURES = frozenset(
    {"ConnectError", "ConnectTimeout", "ConnectionRefusedError", "ClientConnectorError", "gaierror"}
)


def counts_as_down(error: BaseException) -> bool:
    """Whether a failed attempt says the server is down: no connection could be made, or a 5xx
    other than 529 (an overloaded server is alive). A cut body, a read timeout or a reset
    after connecting are the server's answer going wrong, not its absence."""
    if isinstance(error, CircuitOpenError):
        return False
    if isinstance(error, APIConnectionError):
        cause: BaseException | None = error
        for _ in range(8):  # the typed error wraps the library's, which may wrap an OSError
            if cause is None:
                break
            if any(cls.__name__ in _CONNECT_FAILURES for cls in type(cause).__mro__):
                return True
            cause = cause.__cause__ or cause.__context__
        return False
    return isinstance(error, InternalServerError) and not isinstance(error, OverloadedError)


class Breaker:
    """The state of one circuit. `clock` is the loop clock (injected for tests)."""

    def __init__(
        self,
        policy: CircuitBreaker,
        *,
        provider: str,
        clock: Callable[[], float] = anyio.current_time,
    ) -> None:
        self.policy = policy
        self._provider = provider
        self._clock = clock
        self._failures = 0
        self._failed_calls: set[int] = set()  # ids of the calls in the current streak
        self._streak_start = 0.0  # when the current streak's first failure came
        self._opened_at: float | None = None  # None: closed
        self._probing = False
        self._last: LLMError | None = None

    @property
    def state(self) -> State:
        if self._opened_at is None:
            return "closed"
        return "open" if self.retry_in > 0 else "half-open"

    @property
    def is_open(self) -> bool:
        """True while a call would fail at once (open, or half-open with its probe in flight)."""
        if self._opened_at is None:
            return False
        return self.retry_in > 0 or self._probing

    @property
    def retry_in(self) -> float:
        """Seconds until a probe may go (0 when closed or when a probe may go now)."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self._opened_at + self.policy.cooldown - self._clock())

    def admit(self) -> bool:
        """Whether an attempt may go now; True for a half-open circuit's probe (which must then
        be reported with `success` or `failure`)."""
        if self._opened_at is None:
            return True
        if self._probing or self.retry_in > 0:
            return False
        self._probing = True
        return True

    def error(self) -> CircuitOpenError:
        error = CircuitOpenError(
            f"{self._provider}: circuit open after {self.policy.failures} failed attempts in a "
            f"row; failing fast for {self.retry_in:.1f}s more (last: {self._last})",
            provider=self._provider,
            retry_in=self.retry_in,
        )
        error.__cause__ = self._last
        return error

    def success(self) -> None:
        self._failures = 0
        self._failed_calls.clear()
        self._opened_at = None
        self._probing = False

    def failure(self, error: LLMError, call: object = None) -> None:
        """A failed attempt saying the server is down; `call` tells the calls apart."""
        self._last = error
        if self._probing:
            self._probing = False
            self._opened_at = self._clock()  # the probe failed: another cool-down
            return
        if self._opened_at is not None:
            return  # sent before the circuit opened: the cool-down already runs
        now = self._clock()
        if self._failures == 0:
            self._streak_start = now
        self._failures += 1
        if len(self._failed_calls) < 2:
            self._failed_calls.add(id(call))
        if (
            self._failures >= self.policy.failures
            and len(self._failed_calls) >= 2
            and now - self._streak_start >= self.policy.min_span
        ):
            self._opened_at = now

    def release(self) -> None:
        """An attempt that never reached the server (cancelled, or stopped below this stage)."""
        self._probing = False

    def neutral(self) -> None:
        """An attempt the server answered without saying it is down (a 4xx, a 429, a 529)."""
        if self._opened_at is None:
            self._failures = 0
            self._failed_calls.clear()
        else:
            self.success()  # the probe reached a live server


class BreakerStage:
    def __init__(self, inner: Stage, *, breaker: Breaker) -> None:
        self._inner = inner
        self.breaker = breaker

    async def send(self, call: Call) -> Reply:
        breaker = self.breaker
        if not breaker.admit():
            raise breaker.error()
        try:
            reply = await self._inner.send(call)
        except RateLimitBackendError:
            breaker.release()  # not the server's doing
            raise
        except LLMError as error:
            if counts_as_down(error):
                breaker.failure(error, call)
            else:
                breaker.neutral()
            raise
        except BaseException:
            breaker.release()  # cancelled or timed out while waiting: let another probe go
            raise
        breaker.success()
        return reply
