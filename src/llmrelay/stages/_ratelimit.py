"""The rate-limit stage: wait for the client-side request and token budgets, then settle the
token estimate with the count the reply reports (the estimate was a guess from the prompt).

With `RateLimit.follow_server`, every reply (and every error status) is read for what the server
says of its own budget (`_server_limits.server_wait`): a spent budget, or a 429's
``Retry-After``, holds every later request of this limiter (of every worker, for a shared one)
until the announced reset. With `RateLimit.adaptive_concurrency`, an AIMD gate (`_aimd.py`)
also bounds the calls in flight. The budgets live in this process (`_limits.RateLimiter`) or in Redis
(`_shared_limits.SharedRateLimiter`, `RateLimit(redis_url=...)`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

import anyio

from .._exceptions import APIStatusError, OverloadedError
from .._limits import RateLimiter
from .._server_limits import server_wait
from ._base import Call, Reply, Stage

if TYPE_CHECKING:
    from .._aimd import AdaptiveConcurrency
    from .._config import RateLimit
    from .._shared_limits import SharedRateLimiter


class Limiter(Protocol):
    async def acquire(self, tokens: int) -> None: ...
    async def hold(self, seconds: float) -> None: ...
    def refund(self, estimated: int, actual: int) -> None: ...


class RateLimitStage:
    def __init__(self, inner: Stage, *, limit: RateLimit, max_concurrency: int = 1) -> None:
        self._inner = inner
        self._follow = limit.follow_server
        self.gate: AdaptiveConcurrency | None = None
        if limit.adaptive_concurrency:
            from .._aimd import AdaptiveConcurrency

            self.gate = AdaptiveConcurrency(max_concurrency)
        self.limiter: Limiter
        self._shared: SharedRateLimiter | None = None
        if limit.shared:
            from .._shared_limits import SharedRateLimiter

            self.limiter = self._shared = SharedRateLimiter(
                limit, clock=anyio.current_time, sleep=anyio.sleep
            )
        else:
            self.limiter = RateLimiter(limit, clock=anyio.current_time, sleep=anyio.sleep)

    async def send(self, call: Call) -> Reply:
        gate = self.gate
        if gate is None:
            return await self._send(call)
        window = await gate.acquire()
        try:
            reply = await self._send(call)
        except APIStatusError as error:
            gate.release()
            if error.status_code in (429, 529) or isinstance(error, OverloadedError):
                gate.overloaded(window)
            raise
        except BaseException:
            gate.release()
            raise
        gate.succeeded()
        reply.on_finish(lambda usage, error: gate.release())
        return reply

    async def _send(self, call: Call) -> Reply:
        estimated = call.estimated_tokens
        await self.limiter.acquire(estimated)
        try:
            reply = await self._inner.send(call)
        except APIStatusError as error:
            if self._follow and error.headers is not None:
                await self._heed(error.headers, error.status_code)
            raise
        if self._follow:
            try:
                await self._heed(reply.headers, reply.status)
            except BaseException:  # cancelled while telling Redis: the open stream goes back
                await reply.aclose()
                raise
        limiter = self.limiter
        reply.on_finish(
            lambda usage, error: (
                limiter.refund(estimated, usage.total_tokens)
                if usage is not None and usage.total_tokens
                else None
            )
        )
        return reply

    async def _heed(self, headers: Mapping[str, str], status: int) -> None:
        wait = server_wait(headers, status, time.time())
        if wait:
            await self.limiter.hold(wait)

    async def aclose(self) -> None:
        if self._shared is not None:
            await self._shared.aclose()
