"""Client-side rate limiting: token buckets for requests and tokens per minute.

Buckets refill continuously and hold at most `RATE_LIMIT_BURST_SECONDS` worth, so a batch of
thousands of prompts is spread out instead of fired in one burst that the provider would 429.
The clock and sleep are injected so tests can run on a fake clock.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio

from . import _constants as C
from ._config import RateLimit


def bucket_shape(per_minute: float) -> tuple[float, float]:
    """(refill per second, capacity) of a bucket allowing `per_minute`; the shared (Redis)
    limiter sizes its buckets here too, so local and shared limits burst alike."""
    rate = per_minute / 60.0
    return rate, max(1.0, rate * C.RATE_LIMIT_BURST_SECONDS)


class _Bucket:
    __slots__ = ("capacity", "level", "rate", "stamp")

    def __init__(self, per_minute: float) -> None:
        self.rate, self.capacity = bucket_shape(per_minute)
        self.level = self.capacity
        self.stamp: float | None = None  # set on first use: no clock exists before a loop runs

    def wait_for(self, amount: float, now: float) -> float:
        """Seconds until `amount` is available (0 if it is now). Amounts above the capacity
        are allowed to drive the level negative, so one huge request waits but is not stuck."""
        if self.stamp is not None:
            self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now
        need = min(amount, self.capacity)
        return 0.0 if self.level >= need else (need - self.level) / self.rate

    def take(self, amount: float) -> None:
        self.level -= amount


class RateLimiter:
    """Waits until both budgets allow one more request of `tokens` estimated tokens."""

    def __init__(
        self,
        limit: RateLimit,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        # The clock is not read here: a client may be built before its event loop runs.
        self._requests = _Bucket(limit.requests_per_minute) if limit.requests_per_minute else None
        self._tokens = _Bucket(limit.tokens_per_minute) if limit.tokens_per_minute else None
        self._clock = clock
        self._sleep = sleep
        self._lock = anyio.Lock()  # first come, first served
        self._until = 0.0  # the server said: nothing before this (clock time)

    async def hold(self, seconds: float) -> None:
        """Send nothing for `seconds` from now (a server said its budget is spent)."""
        self._until = max(self._until, self._clock() + seconds)

    async def acquire(self, tokens: int) -> None:
        async with self._lock:
            while True:
                now = self._clock()
                wait = self._until - now
                if self._requests is not None:
                    wait = max(wait, self._requests.wait_for(1.0, now))
                if self._tokens is not None:
                    wait = max(wait, self._tokens.wait_for(float(tokens), now))
                if wait <= 0.0:
                    break
                await self._sleep(wait)
            if self._requests is not None:
                self._requests.take(1.0)
            if self._tokens is not None:
                self._tokens.take(float(tokens))

    def refund(self, estimated: int, actual: int) -> None:
        """Correct the token budget once the reply tells the real prompt+completion count."""
        if self._tokens is not None:
            self._tokens.take(float(actual - estimated))
