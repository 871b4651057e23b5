"""The ``x-mock-batch`` spec: what one batch job of the mock should do wrong (see `_batches`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ._common import RequestError


@dataclass(frozen=True, slots=True)
class BatchFault:
    """What ``x-mock-batch`` asks of one job (see the module docstring)."""

    kind: str | None = None  # None, "expire" or "fail"
    done: int = 0
    delay: float | None = None
    fail_items: frozenset[int] = frozenset()
    item_status: int = 500

    @classmethod
    def parse(cls, text: str | None) -> BatchFault:
        if not text or not text.strip():
            return cls()
        kind: str | None = None
        options: dict[str, Any] = {}
        for part in (p.strip() for p in text.split(";")):
            if not part:
                continue
            name, sep, value = (s.strip() for s in part.partition("="))
            if not sep:
                if name not in ("expire", "fail"):
                    raise RequestError(f"x-mock-batch: unknown job fault {name!r} (expire, fail)")
                kind = name
            elif name == "done" and value.isdigit():
                options["done"] = int(value)
            elif name == "delay" and _seconds(value) is not None:
                options["delay"] = _seconds(value)
            elif name == "fail-items" and all(v.strip().isdigit() for v in value.split(",")):
                options["fail_items"] = frozenset(int(v) for v in value.split(","))
            elif name == "item-status" and value.isdigit() and 400 <= int(value) <= 599:
                options["item_status"] = int(value)
            else:
                raise RequestError(
                    f"x-mock-batch: bad option {part!r} (done=N, delay=S, fail-items=I,J, "
                    "item-status=400-599)"
                )
        return cls(kind=kind, **options)


def _seconds(value: str) -> float | None:
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None
