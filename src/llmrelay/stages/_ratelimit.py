"""The rate-limit stage: wait for the client-side request and token budgets, then settle the
token estimate with the count the reply reports (the estimate was a guess from the prompt)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio

from .._limits import RateLimiter
from ._base import Call, Reply, Stage

if TYPE_CHECKING:
    from .._config import RateLimit


class RateLimitStage:
    def __init__(self, inner: Stage, *, limit: RateLimit) -> None:
        self._inner = inner
        self.limiter = RateLimiter(limit, clock=anyio.current_time, sleep=anyio.sleep)

    async def send(self, call: Call) -> Reply:
        estimated = call.estimated_tokens
        await self.limiter.acquire(estimated)
        reply = await self._inner.send(call)
        limiter = self.limiter
        reply.on_finish(
            lambda usage, error: (
                limiter.refund(estimated, usage.total_tokens)
                if usage is not None and usage.total_tokens
                else None
            )
        )
        return reply
