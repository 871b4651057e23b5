"""What the mock engine answers: a response, and the steps that deliver a body over time.

Faces (the httpx transport, the ASGI server) turn these into bytes on a wire; the engine itself
never sleeps and never touches I/O.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TypeAlias


@dataclass(frozen=True, slots=True)
class Data:
    """Send these bytes."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Sleep:
    """Send nothing for this many seconds."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Reset:
    """Drop the connection: the reader sees a network error."""


Step: TypeAlias = Data | Sleep | Reset


@dataclass(frozen=True, slots=True, kw_only=True)
class MockResponse:
    """One answer of the mock engine.

    `body` is the whole payload of an ordinary response. When `steps` is not `None` it replaces
    `body`: the payload is delivered step by step (streams, and faults that cut or pause a body).
    `stall_before` is how long to wait before sending the status line and headers.
    """

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    steps: tuple[Step, ...] | None = None
    stall_before: float = 0.0

    def header(self, name: str) -> str | None:
        """The value of header `name` (case-insensitive), or `None`."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key == wanted), None)

    def content(self) -> bytes:
        """Every byte the body would carry if nothing went wrong (steps' data concatenated)."""
        if self.steps is None:
            return self.body
        return b"".join(step.data for step in self.steps if isinstance(step, Data))

    def json(self) -> Any:
        """The non-streamed body parsed as JSON (raises `ValueError` when it is not JSON)."""
        return json.loads(self.body)
