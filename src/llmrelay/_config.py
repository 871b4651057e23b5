"""Configuration value types: `Timeout`, `RetryPolicy`, `RateLimit`, `CircuitBreaker`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

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
    """Client-side request and token budgets per minute (token counts are estimated up front).

    Buckets refill continuously and hold at most one second's worth. Token estimates are settled
    with the usage each reply reports. With `follow_server` (the default) the limiter also obeys
    the server: when its ``x-ratelimit-remaining-*`` / ``anthropic-ratelimit-*-remaining``
    headers say a budget is spent, or a 429 says ``Retry-After``, no request is sent before the
    announced reset. ``RateLimit()`` with no numbers does only that.

    With `redis_url` and `key` (the ``llmrelay[redis]`` extra) the budgets are shared by every
    process and machine using the same Redis and key::

        RateLimit(requests_per_minute=600, redis_url="redis://127.0.0.1:6379/0", key="openai")

    If Redis cannot be reached, a call fails with `RateLimitBackendError`; with
    ``on_redis_error="local"`` each process keeps to these budgets on its own instead (so N
    processes may send up to N times the budget) and asks Redis again a few seconds later.

    `adaptive_concurrency=True` also finds how many calls may be in flight, AIMD-style: a 429
    or 529 halves it, successes raise it again, up to the client's `max_concurrency`.
    """

    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    redis_url: str | None = field(default=None, repr=False)  # may carry a password
    key: str | None = None
    on_redis_error: Literal["raise", "local"] = "raise"
    follow_server: bool = True
    adaptive_concurrency: bool = False

    def __post_init__(self) -> None:
        _check_positive("RateLimit.requests_per_minute", self.requests_per_minute)
        _check_positive("RateLimit.tokens_per_minute", self.tokens_per_minute)
        if self.on_redis_error not in ("raise", "local"):
            raise ConfigError(
                f"RateLimit.on_redis_error must be 'raise' or 'local', got {self.on_redis_error!r}"
            )
        for name in ("follow_server", "adaptive_concurrency"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"RateLimit.{name} must be a bool, got {getattr(self, name)!r}")
        if self.redis_url is None:
            if self.key is not None:
                raise ConfigError("RateLimit.key names a shared budget: give redis_url= too")
            return
        if not isinstance(self.redis_url, str) or not self.redis_url.startswith(_REDIS_SCHEMES):
            raise ConfigError(
                "RateLimit.redis_url must be a redis://, rediss:// or unix:// URL"
            )  # no echo of the value: it may hold a password
        try:
            from urllib.parse import urlsplit

            urlsplit(self.redis_url).port  # noqa: B018 - read for its check
        except ValueError:  # redis-py would raise it at the first call, as a bare ValueError
            raise ConfigError(
                "RateLimit.redis_url has a port that is not a number from 0 to 65535"
            ) from None
        if not isinstance(self.key, str) or not self.key.strip():
            raise ConfigError(
                "RateLimit.key is required with redis_url: every process sharing one budget "
                "uses the same key, e.g. key='openai-prod'"
            )

    def __repr__(self) -> str:
        parts = [f"requests_per_minute={self.requests_per_minute!r}"]
        parts.append(f"tokens_per_minute={self.tokens_per_minute!r}")
        if self.redis_url is not None:
            from ._logging import redact_url

            parts += [f"redis_url={redact_url(self.redis_url)!r}", f"key={self.key!r}"]
            parts.append(f"on_redis_error={self.on_redis_error!r}")
        if not self.follow_server:
            parts.append("follow_server=False")
        if self.adaptive_concurrency:
            parts.append("adaptive_concurrency=True")
        return f"RateLimit({', '.join(parts)})"

    @property
    def shared(self) -> bool:
        return self.redis_url is not None


_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


@dataclass(frozen=True, slots=True, kw_only=True)
class CircuitBreaker:
    """When a client stops calling a server that is down.

    `failures` attempts in a row that cannot connect or end in a 5xx (500-504; not 529, an
    overloaded server is alive), lasting at least `min_span` seconds from the first to the
    last, open the circuit: for `cooldown` seconds every call fails at once with
    `CircuitOpenError` instead of spending its retries. (`min_span` keeps a burst of concurrent
    attempts that meet one brief 503 from opening it: their retries recover.) Then one call goes
    through as a probe: its success closes the circuit, its failure opens it again. Pass
    ``circuit_breaker=None`` to a client to turn this off.
    """

    failures: int = C.BREAKER_FAILURES
    cooldown: float = C.BREAKER_COOLDOWN_SECONDS
    min_span: float = C.BREAKER_MIN_SPAN_SECONDS

    def __post_init__(self) -> None:
        if isinstance(self.failures, bool) or not isinstance(self.failures, int):
            raise ConfigError(f"CircuitBreaker.failures must be an int, got {self.failures!r}")
        if self.failures < 1:
            raise ConfigError(f"CircuitBreaker.failures must be >= 1, got {self.failures}")
        _check_positive("CircuitBreaker.cooldown", self.cooldown)
        _check_positive("CircuitBreaker.min_span", self.min_span, allow_zero=True)


DEFAULT_BREAKER = CircuitBreaker()  # what a client gets unless told otherwise (immutable, shared)
