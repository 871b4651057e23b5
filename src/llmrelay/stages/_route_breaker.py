"""A circuit breaker for one fallback route: after `threshold` failures in a row it opens, and
the route is skipped for `cooldown` seconds; then one call may try it again (half-open): a
success closes the breaker, a failure opens it for another cool-down.

The interface is three methods, `allow()`, `record_success()`, `record_failure()`, so that a
shared breaker (the scale work's, e.g. one kept in Redis) can stand in for this one.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .. import _constants as C


def _now() -> float:
    return time.monotonic()


class RouteBreaker:
    __slots__ = ("_clock", "_failures", "_open_until", "cooldown", "threshold")

    def __init__(
        self,
        *,
        threshold: int = C.ROUTE_BREAKER_FAILURES,
        cooldown: float = C.ROUTE_BREAKER_COOLDOWN,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock or _now
        self._failures = 0
        self._open_until: float | None = None

    @property
    def failures(self) -> int:
        """Failures in a row so far."""
        return self._failures

    def remaining(self) -> float:
        """Seconds left of the cool-down (0 when the route may be tried)."""
        if self._open_until is None:
            return 0.0
        return max(0.0, self._open_until - self._clock())

    def allow(self) -> bool:
        """Whether a call may try this route now. Once the cool-down is over, one call probes
        it: the next cool-down starts with the probe, so a probe that never reports (a
        cancelled call) cannot leave the route shut for good."""
        if self._open_until is None:
            return True
        now = self._clock()
        if now < self._open_until:
            return False
        self._open_until = now + self.cooldown
        return True

    def record_success(self) -> None:
        self._failures = 0
        self._open_until = None

    def record_failure(self) -> None:
        self._failures += 1
        if self._failures >= self.threshold:
            self._open_until = self._clock() + self.cooldown
