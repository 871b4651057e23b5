"""What a server says about its own rate limits, read from a reply's headers (pure functions).

- OpenAI (and compatible servers): ``x-ratelimit-remaining-requests`` / ``-tokens`` with
  ``x-ratelimit-reset-requests`` / ``-tokens`` as Go durations (``1s``, ``6m0s``, ``20ms``,
  ``1h2m3.5s``): the time until the budget is full again.
- Anthropic: ``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-remaining`` with
  ``-reset`` as an RFC 3339 time.
- A 429's ``Retry-After`` (seconds or an HTTP date) or ``retry-after-ms``.

`server_wait` turns them into one number: how long no request should be sent, because a budget
the server reported is spent. A budget with some left says nothing: the client's own limiter
paces those.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime

from . import _constants as C
from ._retry import parse_retry_after

_OPENAI_KINDS = ("requests", "tokens")
_ANTHROPIC_KINDS = ("requests", "tokens", "input-tokens", "output-tokens")
_GO_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_GO_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|us|µs|ns|h|m|s)")


def parse_duration(text: str) -> float | None:
    """Seconds in a Go duration (``6m0s``, ``20ms``, ``1h2m3.5s``); a bare number is seconds.
    `None` for anything else."""
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        return value if math.isfinite(value) and value >= 0 else None
    total, position = 0.0, 0
    for match in _GO_PART.finditer(text):
        if match.start() != position:
            return None
        total += float(match.group(1)) * _GO_UNITS[match.group(2)]
        position = match.end()
    return total if position == len(text) else None


def parse_reset_time(text: str, now_epoch: float) -> float | None:
    """Seconds from `now_epoch` until an RFC 3339 time (0 if it has passed); `None` if unreadable."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now_epoch)


def _spent(raw: str | None) -> bool:
    if raw is None:
        return False
    try:
        return float(raw) <= 0
    except ValueError:
        return False


_PREFIXES = ("x-ratelimit-", "anthropic-ratelimit-", "retry-after")


def server_wait(headers: Mapping[str, str], status: int, now_epoch: float) -> float | None:
    """Seconds to send nothing, from what the server said (`None`: it said nothing of the kind).

    Waits above `SERVER_WAIT_CAP` are not believed.
    """
    # One pass over the headers (a reply has a dozen or two; most carry none of these).
    found = {
        name.lower(): value
        for name, value in headers.items()
        if name[:1] in "xXaArR" and name.lower().startswith(_PREFIXES)
    }
    if not found:
        return None
    waits: list[float] = []
    for kind in _OPENAI_KINDS:
        if _spent(found.get(f"x-ratelimit-remaining-{kind}")):
            reset = parse_duration(found.get(f"x-ratelimit-reset-{kind}") or "")
            if reset is not None:
                waits.append(reset)
    for kind in _ANTHROPIC_KINDS:
        if _spent(found.get(f"anthropic-ratelimit-{kind}-remaining")):
            raw = found.get(f"anthropic-ratelimit-{kind}-reset")
            reset = parse_reset_time(raw, now_epoch) if raw else None
            if reset is not None:
                waits.append(reset)
    if status == 429:
        after = parse_retry_after(found, now_epoch)
        if after is not None:
            waits.append(after)
    believable = [wait for wait in waits if wait <= C.SERVER_WAIT_CAP]
    return max(believable) if believable else None
