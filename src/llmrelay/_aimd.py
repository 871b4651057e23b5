"""Adaptive concurrency (`RateLimit(adaptive_concurrency=True)`): how many calls may be in
flight, found by AIMD the way TCP finds its window. A 429 or 529 multiplies the limit by
`AIMD_DECREASE_FACTOR`, once per window as TCP does: only a call sent after the last decrease
can cause the next one, so a burst of rejections of calls already in flight counts once. Each
success adds ``1 / limit``. The limit stays between 1 and the client's
`max_concurrency`. Per process, even with a shared (Redis) rate limit.
"""

from __future__ import annotations

from collections import deque

import anyio

from . import _constants as C


class AdaptiveConcurrency:
    def __init__(self, ceiling: int) -> None:
        self.ceiling = ceiling
        self.limit = float(ceiling)
        self.in_flight = 0
        self.window = 0  # how many decreases so far: a call remembers the one it was sent in
        self._waiters: deque[anyio.Event] = deque()

    async def acquire(self) -> int:
        """Wait for room; returns the window to report an overload with."""
        if self.in_flight < int(self.limit) and not self._waiters:
            self.in_flight += 1
            return self.window
        event = anyio.Event()
        self._waiters.append(event)
        try:
            await event.wait()
        except BaseException:
            if event.is_set():  # woken and cancelled at once: pass the turn on
                self.release()
            else:
                self._waiters.remove(event)
            raise
        return self.window

    def release(self) -> None:
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_flight < int(self.limit):
            self.in_flight += 1  # taken on the waiter's behalf: no one can slip in between
            self._waiters.popleft().set()

    def overloaded(self, window: int) -> None:
        """A call sent in `window` was refused for load (429, 529)."""
        if window == self.window:
            self.window += 1
            self.limit = max(1.0, self.limit * C.AIMD_DECREASE_FACTOR)

    def succeeded(self) -> None:
        self.limit = min(float(self.ceiling), self.limit + 1.0 / self.limit)
        self._wake()
