"""The mock engine on a loopback server (as `llmrelay mock serve` runs it), keeping every
request it answers, for tests that look at what a client or the CLI sent over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from llmrelay.mock import MockEngine, MockResponse, serve


@dataclass(frozen=True, slots=True)
class Seen:
    """One request the engine answered, as the server handed it over."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class RecordingEngine(MockEngine):
    """The mock engine, keeping each request it answers in `requests` (arrival order)."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[Seen] = []

    def handle(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
    ) -> MockResponse:
        self.requests.append(Seen(method, path, dict(headers), body))
        return super().handle(method, path, query, headers, body)

    @property
    def seen(self) -> list[tuple[str, str]]:
        """(method, path) of each request."""
        return [(request.method, request.path) for request in self.requests]


@contextmanager
def recording_server() -> Iterator[tuple[str, RecordingEngine]]:
    """A loopback mock server's URL (``http://127.0.0.1:PORT``) and its recording engine."""
    engine = RecordingEngine()
    with serve(engine) as url:
        yield url, engine
