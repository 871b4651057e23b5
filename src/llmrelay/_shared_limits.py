"""Rate limits shared through Redis: the local token buckets, kept in one Redis hash per key.

Every acquire is one Lua script run atomically by Redis (`EVALSHA`; loaded again after a
``NOSCRIPT``, e.g. when Redis restarted): it refills both buckets from Redis's own clock
(`TIME`, never a worker's), takes one request and the token estimate when both allow it, or
returns how long to wait. The same call carries this process's pending corrections (token
estimates settled with the usage replies reported, a server-announced wait), so settling costs
no round trip of its own. The hash expires once its buckets would be full again, which is the
same as no hash at all: a crashed worker leaves nothing behind.

redis-py (the ``llmrelay[redis]`` extra) is imported when the first call needs it, and only
asyncio is supported (redis-py's asyncio client).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio

from . import _constants as C
from ._exceptions import ConfigError, RateLimitBackendError
from ._limits import RateLimiter, bucket_shape

if TYPE_CHECKING:
    from ._config import RateLimit

logger = logging.getLogger("llmrelay")

# KEYS[1]: the hash. ARGV: requests/s, request capacity, tokens/s, token capacity (0 = no such
# budget), tokens wanted, take (1: acquire, 0: only apply the corrections), tokens owed (added
# to what was taken: actual - estimated), hold (ms from now during which nothing may be taken).
# Returns the wait in microseconds (0: taken).
_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local rr, rc = tonumber(ARGV[1]), tonumber(ARGV[2])
local tr, tc = tonumber(ARGV[3]), tonumber(ARGV[4])
local want, take = tonumber(ARGV[5]), tonumber(ARGV[6])
local owed, hold = tonumber(ARGV[7]), tonumber(ARGV[8])
local s = redis.call('HMGET', KEYS[1], 'r', 't', 'at', 'until')
local at = tonumber(s[3]) or now
local elapsed = math.max(0, now - at) / 1000
local r, tk = 0, 0
if rc > 0 then r = math.min(rc, (tonumber(s[1]) or rc) + elapsed * rr) end
if tc > 0 then tk = math.min(tc, (tonumber(s[2]) or tc) + elapsed * tr) - owed end
local hold_until = tonumber(s[4]) or 0
if hold > 0 then hold_until = math.max(hold_until, now + hold) end
local wait = 0
if take == 1 then
  wait = math.max(0, hold_until - now)
  if rc > 0 and r < 1 then wait = math.max(wait, (1 - r) / rr * 1000) end
  if tc > 0 then
    local need = math.min(want, tc)
    if tk < need then wait = math.max(wait, (need - tk) / tr * 1000) end
  end
  if wait <= 0 then
    if rc > 0 then r = r - 1 end
    if tc > 0 then tk = tk - want end
  end
end
local ttl = math.max(0, hold_until - now)
if rc > 0 then ttl = math.max(ttl, (rc - r) / rr * 1000) end
if tc > 0 then ttl = math.max(ttl, (tc - tk) / tr * 1000) end
redis.call('HSET', KEYS[1], 'r', tostring(r), 't', tostring(tk), 'at', tostring(now),
  'until', tostring(hold_until))
redis.call('PEXPIRE', KEYS[1], math.ceil(ttl + tonumber(ARGV[9])))
return math.ceil(wait * 1000)
"""


def _rate_and_capacity(per_minute: float | None) -> tuple[float, float]:
    if not per_minute:
        return 0.0, 0.0
    return bucket_shape(per_minute)


class SharedRateLimiter:
    """The `RateLimiter` interface (`acquire`, `refund`, `hold`) over one Redis key."""

    def __init__(
        self,
        limit: RateLimit,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        assert limit.redis_url is not None and limit.key is not None
        self._url = limit.redis_url
        self._hash = C.REDIS_KEY_PREFIX + limit.key
        self._fallback = (
            RateLimiter(limit, clock=clock, sleep=sleep)
            if limit.on_redis_error == "local"
            else None
        )
        req_rate, req_cap = _rate_and_capacity(limit.requests_per_minute)
        tok_rate, tok_cap = _rate_and_capacity(limit.tokens_per_minute)
        self._budgets = (req_rate, req_cap, tok_rate, tok_cap)
        self._clock = clock
        self._sleep = sleep
        self._lock = anyio.Lock()  # this process's callers queue here, first come first served
        self._redis: Any = None  # redis.asyncio.Redis, made on first use (on the running loop)
        self._sha: str | None = None
        self._owed = 0.0  # token corrections not yet told to Redis
        self._hold_until = 0.0  # a server-announced wait not yet told to Redis (clock time)
        self._local_until: float | None = None  # on the fallback until then (clock time)

    # -- the RateLimiter interface ---------------------------------------------------------------

    async def acquire(self, tokens: int) -> None:
        async with self._lock:
            while True:
                if self._local_until is not None:
                    if self._clock() < self._local_until:
                        assert self._fallback is not None
                        await self._fallback.acquire(tokens)
                        return
                    self._local_until = None
                try:
                    wait = await self._run(take=True, tokens=tokens)
                except RateLimitBackendError:
                    if self._fallback is None:
                        raise
                    logger.warning(
                        "shared rate limit: Redis failed; this process keeps to its own "
                        "limits for %gs",
                        C.REDIS_FALLBACK_SECONDS,
                    )
                    self._local_until = self._clock() + C.REDIS_FALLBACK_SECONDS
                    continue
                if wait <= 0.0:
                    return
                await self._sleep(wait)

    def refund(self, estimated: int, actual: int) -> None:
        """Owe Redis the difference; it is settled with the next call to Redis."""
        if self._budgets[3]:
            self._owed += float(actual - estimated)
        if self._fallback is not None:
            self._fallback.refund(estimated, actual)

    async def hold(self, seconds: float) -> None:
        """Tell every worker on this key: send nothing for `seconds` (now, if Redis answers,
        else with this process's next acquire)."""
        self._hold_until = max(self._hold_until, self._clock() + seconds)
        if self._fallback is not None:
            await self._fallback.hold(seconds)
        if self._local_until is not None and self._clock() < self._local_until:
            return  # on the fallback: Redis is asked again when the fallback time is over
        # On failure it stays pending: the next acquire carries it, or reports Redis's failure.
        with contextlib.suppress(RateLimitBackendError):
            await self._run(take=False, tokens=0)

    async def aclose(self) -> None:
        redis, self._redis = self._redis, None
        if redis is not None:
            with anyio.CancelScope(shield=True):
                await redis.aclose()

    # -- Redis -----------------------------------------------------------------------------------

    def _client(self) -> Any:
        if self._redis is None:
            self._redis = _connect(self._url)
        return self._redis

    async def _run(self, *, take: bool, tokens: int) -> float:
        """One script run: the wait in seconds (0: taken). Corrections sent are cleared."""
        from redis.exceptions import NoScriptError, RedisError

        owed, hold_until = self._owed, self._hold_until
        hold_ms = max(0.0, (hold_until - self._clock()) * 1000)
        slack_ms = C.REDIS_KEY_SLACK_SECONDS * 1000
        args = (*self._budgets, tokens, 1 if take else 0, owed, hold_ms, slack_ms)
        redis = self._client()
        try:
            if self._sha is None:
                self._sha = await redis.script_load(_SCRIPT)
            try:
                micros = await redis.evalsha(self._sha, 1, self._hash, *args)
            except NoScriptError:  # Redis restarted (or SCRIPT FLUSH): load it again
                self._sha = await redis.script_load(_SCRIPT)
                micros = await redis.evalsha(self._sha, 1, self._hash, *args)
        except (RedisError, OSError) as exc:
            raise RateLimitBackendError(
                f"shared rate limit {self._hash[len(C.REDIS_KEY_PREFIX) :]!r}: Redis failed "
                f"({type(exc).__name__}: {_safe(exc)}); nothing was sent"
            ) from exc
        self._owed -= owed
        if self._hold_until == hold_until:  # not raised again while Redis was answering
            self._hold_until = 0.0
        return int(micros) / 1e6


def _connect(url: str) -> Any:
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        raise ConfigError(
            "RateLimit(redis_url=...) runs on asyncio (redis-py's asyncio client)"
        ) from None
    try:
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
    except ImportError:  # pragma: no cover - checked when the client is built
        raise ConfigError(redis_missing()) from None
    try:
        return Redis.from_url(
            url,
            socket_connect_timeout=C.REDIS_CONNECT_TIMEOUT,
            socket_timeout=C.REDIS_SOCKET_TIMEOUT,
            retry=Retry(NoBackoff(), C.REDIS_COMMAND_RETRIES),
        )
    except (ValueError, TypeError) as exc:  # e.g. a query option redis-py cannot read
        text = _safe(exc)
        password = urlsplit(url).password
        if password:
            text = text.replace(password, "***")
        raise ConfigError(f"RateLimit.redis_url is not a URL redis-py takes: {text}") from None


def redis_missing() -> str:
    return "RateLimit(redis_url=...) needs redis-py: pip install 'llmrelay[redis]'"


def _safe(exc: BaseException) -> str:
    # redis-py's messages name host and port, never the URL's password; cut them short anyway.
    return (str(exc) or "no detail")[:200]
