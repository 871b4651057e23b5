"""The ``llmrelay_mock`` fixture's objects: the shared loopback server and the per-test handle.

Loaded only when a test uses the fixture (it imports llmrelay, httpx and uvicorn).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from llmrelay import AsyncClient, RetryPolicy
from llmrelay.mock import MockEngine, MockResponse, serve

if TYPE_CHECKING:
    import pytest

    from llmrelay import Client

# Test clients back off for milliseconds, not the production half second, so a test of a
# retried 429 takes no noticeable time. A `Retry-After` from the server is still honoured.
TEST_BACKOFF_BASE = 0.01
TEST_BACKOFF_CAP = 0.05
TEST_API_KEY = "sk-llmrelay-mock"
_FAULT_HEADER = "x-mock-fault"


@dataclass(frozen=True, slots=True)
class MockRequest:
    """One HTTP request the mock server received (each retry attempt is one)."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    fault: str | None = None  # the fault spec the request carried or was given, if any

    def json(self) -> Any:
        """The request body parsed as JSON (`None` for an empty body)."""
        return json.loads(self.body) if self.body else None


@dataclass(slots=True)
class _Injection:
    spec: str
    remaining: int | None  # requests left to fault; None: every request until cleared


class _FixtureEngine(MockEngine):
    """A `MockEngine` that records requests and adds the current test's injected fault."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.requests: list[MockRequest] = []
        self.injections: list[_Injection] = []

    def handle(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
    ) -> MockResponse:
        headers = {name.lower(): value for name, value in headers.items()}
        with self.lock:
            if _FAULT_HEADER not in headers and self.injections:
                injection = self.injections[0]
                headers[_FAULT_HEADER] = injection.spec
                if injection.remaining is not None:
                    injection.remaining -= 1
                    if injection.remaining <= 0:
                        self.injections.pop(0)
            self.requests.append(
                MockRequest(method, path, dict(headers), body, headers.get(_FAULT_HEADER))
            )
        return super().handle(method, path, query, headers, body)

    def reset(self) -> None:
        defaults = MockEngine()
        with self.lock:
            self.requests.clear()
            self.injections.clear()
            self.take_options(defaults)
        self.clear()

    def take_options(self, other: MockEngine) -> None:
        """Answer as `other` would: its per-test options (`configure`'s). Call under `lock`."""
        self.chunks = other.chunks
        self.chunk_delay = other.chunk_delay
        self.fault_rate = other.fault_rate
        self.faults = other.faults
        self.seed = other.seed


@dataclass(slots=True)
class MockServer:
    """The session's loopback mock server (one uvicorn thread) and its engine."""

    url: str
    engine: _FixtureEngine = field(repr=False)

    @classmethod
    @contextmanager
    def start(cls) -> Iterator[MockServer]:
        engine = _FixtureEngine()
        with serve(engine) as url:
            yield cls(url, engine)

    def reset(self) -> None:
        self.engine.reset()


class LLMRelayMock:
    """What the ``llmrelay_mock`` fixture yields: the server's URLs, ready clients, fault
    injection for this test and the requests the server received.

    - `base_url`: the OpenAI-style root, ``http://127.0.0.1:PORT/v1`` (Anthropic clients use it
      too; Gemini clients use `url` + ``"/v1beta"``); `url`: the bare ``http://127.0.0.1:PORT``.
    - `client(**options)` / `sync_client(**options)`: an `AsyncClient` / `Client` on the server.
    - `inject(spec, count=None)`: fault the following requests (see `llmrelay.mock` for specs).
    - `configure(...)`: the engine's options for this test (`chunks`, `chunk_delay`,
      `fault_rate`, `faults`, `seed`).
    - `requests`: every request received during this test, retries included.
    - `setenv()`: point ``OPENAI_BASE_URL``/``ANTHROPIC_BASE_URL``/``GEMINI_BASE_URL`` (and dummy
      keys) at the server for this test, for code that builds its own clients.
    """

    def __init__(self, server: MockServer, monkeypatch: pytest.MonkeyPatch) -> None:
        self._server = server
        self._monkeypatch = monkeypatch
        self.url = server.url
        self.base_url = f"{server.url}/v1"

    def __repr__(self) -> str:
        return f"LLMRelayMock(base_url={self.base_url!r})"

    @property
    def engine(self) -> MockEngine:
        """The engine answering the requests (reset after each test)."""
        return self._server.engine

    @property
    def requests(self) -> list[MockRequest]:
        """The requests received during this test, in arrival order (a copy)."""
        with self._server.engine.lock:
            return list(self._server.engine.requests)

    @property
    def env(self) -> dict[str, str]:
        """Environment variables that point the openai, anthropic and gemini presets here."""
        return {
            "OPENAI_BASE_URL": self.base_url,
            "OPENAI_API_KEY": TEST_API_KEY,
            "ANTHROPIC_BASE_URL": self.base_url,
            "ANTHROPIC_API_KEY": TEST_API_KEY,
            "GEMINI_BASE_URL": f"{self.url}/v1beta",
            "GEMINI_API_KEY": TEST_API_KEY,
        }

    def setenv(self) -> None:
        """Set `env` for this test (undone after it, as with ``monkeypatch.setenv``)."""
        for name, value in self.env.items():
            self._monkeypatch.setenv(name, value)

    def inject(self, spec: str, *, count: int | None = None) -> None:
        """Fault the following requests with `spec` (e.g. ``"429;retry-after=0.1"``,
        ``"reset;after=2"``): the next `count` requests, or every one until `clear_faults()`.

        A request that carries its own ``x-mock-fault`` header keeps it. Injections queue up:
        ``inject("500", count=1); inject("429", count=1)`` faults the next two requests in that
        order. A bad spec raises `ValueError` here, not in the server.
        """
        from llmrelay.mock import FaultSpec

        FaultSpec.parse(spec)
        if count is not None and count < 1:
            raise ValueError(f"count must be at least 1, got {count!r}")
        engine = self._server.engine
        with engine.lock:
            engine.injections.append(_Injection(spec, count))

    def clear_faults(self) -> None:
        """Stop injecting faults (those of `inject` and of `configure(fault_rate=...)`)."""
        engine = self._server.engine
        with engine.lock:
            engine.injections.clear()
            engine.fault_rate = 0.0

    def configure(
        self,
        *,
        chunks: int | None = None,
        chunk_delay: float | None = None,
        fault_rate: float | None = None,
        faults: Sequence[str] | None = None,
        seed: int | None = None,
    ) -> None:
        """Set the engine's options for this test, checked as `MockEngine` checks them: e.g.
        ``configure(chunks=5, chunk_delay=0.01)`` streams every reply as five spaced deltas,
        ``configure(fault_rate=0.2, seed=7)`` fails a reproducible fifth of the attempts."""
        engine = self._server.engine
        given: dict[str, Any] = {
            "chunks": chunks if chunks is not None else engine.chunks,
            "chunk_delay": chunk_delay if chunk_delay is not None else engine.chunk_delay,
            "fault_rate": fault_rate if fault_rate is not None else engine.fault_rate,
            "faults": faults if faults is not None else [f.text for f in engine.faults],
            "seed": seed if seed is not None else engine.seed,
        }
        checked = MockEngine(**given)
        with engine.lock:
            engine.take_options(checked)

    def client_options(self, **options: Any) -> dict[str, Any]:
        """The keyword arguments `client()` gives `AsyncClient` (yours win): the mock provider
        on this server's `base_url`, a dummy key, and millisecond retry backoff."""
        provider = options.get("provider", "mock")
        gemini = isinstance(provider, str) and provider == "gemini"
        merged: dict[str, Any] = {
            "provider": "mock",
            "base_url": f"{self.url}/v1beta" if gemini else self.base_url,
            "api_key": TEST_API_KEY,
            **options,
        }
        if "retry" not in merged:
            retries = merged.pop("max_retries", None)
            merged["retry"] = RetryPolicy(
                backoff_base=TEST_BACKOFF_BASE,
                backoff_cap=TEST_BACKOFF_CAP,
                **({} if retries is None else {"max_retries": retries}),
            )
        return merged

    def client(self, **options: Any) -> AsyncClient:
        """An `AsyncClient` talking to this server over loopback HTTP (use it in ``async
        with``). `options` are `AsyncClient` arguments: ``client(provider="anthropic")`` speaks
        Anthropic's wire format to the same server, ``client(max_retries=0)`` never retries."""
        return AsyncClient(**self.client_options(**options))

    def sync_client(self, **options: Any) -> Client:
        """The blocking `llmrelay.Client` on this server, with `client()`'s options."""
        from llmrelay import Client

        return Client(**self.client_options(**options))
