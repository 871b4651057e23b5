"""Which attempt of which call a request is: the counter behind a fault's ``times=N``.

A *call* is what a client sends, retries included; ``times=N`` fails its first N attempts. The
attempt number of a request comes from, in order:

1. ``x-stainless-retry-count: K`` (sent by the official OpenAI and Anthropic SDKs on every
   request, 0 on the first): attempt K + 1. Nothing is stored, so every new call starts again.
2. ``idempotency-key`` (llmrelay's client sends one per call, the same on each retry): the
   attempts seen with that key are counted. The key names the call, so a key sent again later is
   the same call going on.
3. Otherwise the call is named by the request's method, path and body, and it ends with its first
   attempt that gets no fault: the same request sent again after that is a new call, attempt 1.
   (Identical requests in flight at the same time share one count.)
"""

from __future__ import annotations

import threading

RETRY_COUNT_HEADER = "x-stainless-retry-count"
MAX_RETRY_COUNT = 1_000_000  # a larger header value is not an attempt number but noise


def sdk_attempt(headers: dict[str, str]) -> int | None:
    """The attempt number an SDK's retry counter header gives (1-based), or `None`."""
    raw = headers.get(RETRY_COUNT_HEADER, "").strip()
    if raw.isascii() and raw.isdigit() and int(raw) <= MAX_RETRY_COUNT:
        return int(raw) + 1
    return None


class AttemptTable:
    """Bounded attempt counters per call key; the stalest key is dropped when full."""

    def __init__(self, max_keys: int) -> None:
        self._max_keys = max_keys
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def next(self, key: str) -> int:
        """Count one more attempt of `key` and return its number (1 for a new key)."""
        with self._lock:
            attempt = self._counts.pop(key, 0) + 1
            self._counts[key] = attempt  # re-inserted last: eviction drops the stalest key
            if len(self._counts) > self._max_keys:
                del self._counts[next(iter(self._counts))]
        return attempt

    def forget(self, key: str) -> None:
        """End the call `key`: its next request is attempt 1 again."""
        with self._lock:
            self._counts.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()
