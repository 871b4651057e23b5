"""Configuration value types: `Timeout`, `RetryPolicy`, `RateLimit`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from . import _constants as C
from ._exceptions import ConfigError


def _check_positive(name: str, value: float | None, *, allow_zero: bool = False) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ConfigError(f"{name} must be a number of seconds, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"{name} must be positive, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeout:
    """Time limits for one call, in seconds (`None` means no limit).

    `connect` bounds opening a connection, `read` the silence between two received chunks, and
    `total` the whole call: every attempt and every backoff sleep. Example::

        Timeout(connect=5, read=30, total=120)
    """

    connect: float | None = C.DEFAULT_CONNECT_TIMEOUT
    read: float | None = C.DEFAULT_READ_TIMEOUT
    total: float | None = None

    def __post_init__(self) -> None:
        _check_positive("Timeout.connect", self.connect)
        _check_positive("Timeout.read", self.read)
        _check_positive("Timeout.total", self.total)

    @classmethod
    def coerce(cls, value: Timeout | float | None) -> Timeout:
        """A float (or int) means `total`; `None` means the defaults."""
        if value is None:
            return cls()
        if isinstance(value, Timeout):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return cls(total=float(value))
        raise ConfigError(f"timeout must be a Timeout or a number of seconds, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """When and how long to wait before trying a failed request again.

    Connection errors, timeouts and the statuses in `retry_statuses` are retried up to
    `max_retries` times with full-jitter exponential backoff (`backoff_base * 2**n`, capped at
    `backoff_cap`). A server's `Retry-After` wins over the backoff, unless it is longer than
    `retry_after_cap` or the remaining deadline, in which case the call fails at once.
    """

    max_retries: int = C.DEFAULT_MAX_RETRIES
    backoff_base: float = C.BACKOFF_BASE
    backoff_cap: float = C.BACKOFF_CAP
    retry_after_cap: float = C.RETRY_AFTER_CAP
    retry_statuses: frozenset[int] = field(default=C.RETRYABLE_STATUS_CODES)

    def __post_init__(self) -> None:
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int):
            raise ConfigError(f"max_retries must be an int, got {self.max_retries!r}")
        if self.max_retries < 0:
            raise ConfigError(f"max_retries must be >= 0, got {self.max_retries}")
        _check_positive("RetryPolicy.backoff_base", self.backoff_base, allow_zero=True)
        _check_positive("RetryPolicy.backoff_cap", self.backoff_cap, allow_zero=True)
        _check_positive("RetryPolicy.retry_after_cap", self.retry_after_cap, allow_zero=True)
        object.__setattr__(self, "retry_statuses", frozenset(self.retry_statuses))


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimit:
    """Client-side request and token budgets per minute (token counts are estimated up front)."""

    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None

    def __post_init__(self) -> None:
        _check_positive("RateLimit.requests_per_minute", self.requests_per_minute)
        _check_positive("RateLimit.tokens_per_minute", self.tokens_per_minute)
