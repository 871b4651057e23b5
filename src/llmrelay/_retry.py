"""The retry decision, as a short ordered list of rules, and the wait before the next try.

Pure functions of (what happened, the policy, the clock): the pipeline does the sleeping.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from ._config import RetryPolicy


@dataclass(frozen=True, slots=True)
class RetryDecision:
    retry: bool
    delay: float = 0.0
    reason: str = ""
    retry_after: float | None = None  # the server's requested wait, when it sent one


def _finite_non_negative(value: float) -> float | None:
    if math.isnan(value) or math.isinf(value):
        return None
    return max(0.0, value)


def parse_retry_after(headers: Mapping[str, str], now_epoch: float) -> float | None:
    """Seconds the server asked us to wait, from `retry-after-ms` or `Retry-After` (seconds or
    an HTTP-date). Unusable values (garbage, nan, inf) give `None`; past dates give 0."""
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            value = _finite_non_negative(float(ms) / 1000.0)
        except ValueError:
            value = None
        if value is not None:
            return value
    raw = headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        return _finite_non_negative(float(raw))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime  # rare path: keep it out of import time

    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now_epoch)


def backoff_delay(retries_done: int, policy: RetryPolicy, rand: float) -> float:
    """Full jitter: a uniform pick in [0, min(cap, base * 2**n)); `rand` is in [0, 1)."""
    # 2.0**n overflows a float from n = 1024; past n = 1000 the cap has long been reached.
    ceiling = min(policy.backoff_cap, policy.backoff_base * (2.0 ** min(retries_done, 1000)))
    return ceiling * rand


def decide(
    *,
    policy: RetryPolicy,
    retries_done: int,
    status_code: int | None,
    headers: Mapping[str, str] | None,
    remaining: float | None,
    rand: float,
    now_epoch: float,
    retry_after_hint: float | None = None,
    retryable_hint: bool | None = None,
) -> RetryDecision:
    """Whether to try again after a failure, and after how long.

    `status_code` is `None` for a connection error or timeout. `remaining` is the time left
    before the call's deadline (`None`: no deadline). `retry_after_hint` is a wait the adapter
    found in the error body (e.g. Gemini's RetryInfo). The rules, in order:

    1. No retries left: stop.
    2. ``x-should-retry: true|false`` from the server decides; failing that, what the error
       body says (`retryable_hint`, e.g. Anthropic's spend-limit 429 is final).
    3. Otherwise connection errors, timeouts and `policy.retry_statuses` are retried.
    4. A server-requested wait longer than `retry_after_cap` or than the time left: stop now.
    5. Wait the server's requested time when it gave one, else the jittered backoff.
    """
    headers = headers or {}
    retry_after = parse_retry_after(headers, now_epoch)
    if retry_after is None:
        retry_after = retry_after_hint
    if retries_done >= policy.max_retries:
        return RetryDecision(False, reason="no retries left", retry_after=retry_after)
    should = (headers.get("x-should-retry") or "").strip().lower()
    source = "the server said x-should-retry: false"
    if not should and retryable_hint is not None:
        should = "true" if retryable_hint else "false"
        source = "the error body says retrying cannot help"
    if should == "false":
        return RetryDecision(False, reason=source, retry_after=retry_after)
    if should != "true" and status_code is not None and status_code not in policy.retry_statuses:
        return RetryDecision(
            False, reason=f"status {status_code} is not retryable", retry_after=retry_after
        )
    if retry_after is not None:
        if retry_after > policy.retry_after_cap:
            return RetryDecision(
                False,
                reason=f"Retry-After {retry_after:g}s is above the {policy.retry_after_cap:g}s cap",
                retry_after=retry_after,
            )
        delay = retry_after
    else:
        delay = backoff_delay(retries_done, policy, rand)
    if remaining is not None and delay >= remaining:
        return RetryDecision(
            False,
            reason=f"waiting {delay:.2f}s would pass the deadline ({remaining:.2f}s left)",
            retry_after=retry_after,
        )
    what = f"status {status_code}" if status_code is not None else "connection error"
    return RetryDecision(
        True, delay=delay, reason=f"{what}, retry in {delay:.2f}s", retry_after=retry_after
    )
