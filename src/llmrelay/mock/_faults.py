"""Fault specs: the little language of `x-mock-fault` (see the `llmrelay.mock` docstring).

A spec is ``KIND[;OPTION=VALUE]...``; for example ``429;retry-after=1;times=2`` or
``reset;after=3``. Parsing is strict: a typo is an error, never a silently healthy response.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal, TypeAlias

FaultKind: TypeAlias = Literal[
    "status", "stall", "stall-mid", "reset", "error-event", "truncate", "malformed"
]

_NAMED_KINDS: dict[str, FaultKind] = {
    "stall": "stall",
    "stall-mid": "stall-mid",
    "reset": "reset",
    "error-event": "error-event",
    "truncate": "truncate",
    "malformed": "malformed",
}
# Kinds that act inside a body, at a point chosen by `after`.
_BODY_KINDS = frozenset({"stall-mid", "reset", "error-event", "truncate", "malformed"})

DEFAULT_STALL_SECONDS = 5.0
DEFAULT_AFTER = 1
MODEL_FAULT_MARKER = "+fault="


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultSpec:
    """One fault to inject. Build it with `FaultSpec.parse("429;retry-after=1;times=2")`.

    `status` is the HTTP status of a `"status"` fault; `seconds` is the length of a stall;
    `after` is how many content chunks go out before a body fault strikes; `times` limits the
    fault to the first N attempts of a logical request (`None`: every attempt).
    """

    kind: FaultKind
    status: int = 0
    seconds: float = DEFAULT_STALL_SECONDS
    after: int = DEFAULT_AFTER
    times: int | None = None
    retry_after: float | None = None
    retry_after_ms: int | None = None
    text: str = ""

    @classmethod
    def parse(cls, text: str) -> FaultSpec:
        """Parse a spec such as ``"stall-mid;seconds=2;after=3"``; raise `ValueError` if bad."""
        head, *options = (part.strip() for part in text.strip().split(";"))
        status = 0
        if head.isascii() and head.isdigit():
            status = int(head)
            if not 400 <= status <= 599:
                raise ValueError(f"fault status must be 400-599, got {head!r}")
            kind: FaultKind = "status"
        elif head.lower() in _NAMED_KINDS:
            kind = _NAMED_KINDS[head.lower()]
        else:
            allowed = ", ".join(["<status code>", *_NAMED_KINDS])
            raise ValueError(f"unknown fault {head!r} (expected one of: {allowed})")
        spec = cls(kind=kind, status=status, text=text.strip())
        for option in options:
            if option:
                spec = spec._with_option(option)
        return spec

    @property
    def in_body(self) -> bool:
        """Whether the fault strikes inside a body (after headers were sent)."""
        return self.kind in _BODY_KINDS

    def fires(self, attempt: int) -> bool:
        """Whether the fault applies to attempt number `attempt` (1-based)."""
        return self.times is None or attempt <= self.times

    def retry_delay(self) -> float | None:
        """The wait the fault asks for, in seconds (`retry-after-ms` wins), or `None`."""
        if self.retry_after_ms is not None:
            return self.retry_after_ms / 1000
        return self.retry_after

    def _with_option(self, option: str) -> FaultSpec:
        name, sep, raw = (item.strip() for item in option.partition("="))
        name = name.lower()
        if not sep or not raw:
            raise ValueError(f"fault option {option!r} must look like name=value")
        if name == "seconds":
            return replace(self, seconds=_non_negative_float(name, raw))
        if name == "retry-after":
            return replace(self, retry_after=_non_negative_float(name, raw))
        if name == "after":
            return replace(self, after=_non_negative_int(name, raw))
        if name == "times":
            return replace(self, times=_non_negative_int(name, raw))
        if name == "retry-after-ms":
            return replace(self, retry_after_ms=_non_negative_int(name, raw))
        raise ValueError(
            f"unknown fault option {name!r} "
            "(expected seconds, after, times, retry-after or retry-after-ms)"
        )


def split_model_fault(model: str) -> tuple[str, str | None]:
    """Split ``"mock-echo+fault=500;times=1"`` into ``("mock-echo", "500;times=1")``."""
    base, sep, spec = model.partition(MODEL_FAULT_MARKER)
    return (base, spec) if sep else (model, None)


def format_seconds(seconds: float) -> str:
    """Seconds as a short header value: 1.0 -> "1", 0.25 -> "0.25"."""
    return f"{seconds:g}"


def _non_negative_float(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"fault option {name} must be a number, got {raw!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"fault option {name} must be a finite number >= 0, got {raw!r}")
    return value


def _non_negative_int(name: str, raw: str) -> int:
    if not (raw.isascii() and raw.isdigit()):
        raise ValueError(f"fault option {name} must be a whole number >= 0, got {raw!r}")
    return int(raw)
