"""The mock engine: a pure function of (request, attempt number) to a `MockResponse`.

No I/O, no clock, no httpx: the faces (`MockTransport`, the ASGI server) deliver what it returns.
Its one piece of state is a bounded table of attempt counters per call (`_attempts`), so that a
fault with `times=N` strikes the first N attempts of a request and then lets retries through.
The exception is the provider Batch APIs (`_batches.BatchStore`, `engine.batches`): uploaded
files and jobs are state, and a job ends by the clock.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ._anthropic_wire import AnthropicWire
from ._attempts import AttemptTable, sdk_attempt
from ._batches import DEFAULT_BATCH_DELAY, BatchStore
from ._common import MAX_CHUNKS, Call, JSONObject, RequestError, StreamPlan, Wire, dumps
from ._faults import FaultSpec, format_seconds, split_model_fault
from ._gemini_wire import GeminiWire
from ._openai_wire import OpenAIWire
from ._responses_wire import ResponsesWire
from ._types import Data, MockResponse, Reset, Sleep, Step

_OPENAI: Wire = OpenAIWire()
_ANTHROPIC: Wire = AnthropicWire()
_GEMINI: Wire = GeminiWire()
_RESPONSES: Wire = ResponsesWire()  # OpenAI's /v1/responses
_WIRES = {"openai": _OPENAI, "anthropic": _ANTHROPIC, "gemini": _GEMINI}
_GOOGLE_VERSION = re.compile(r"/v1(alpha|beta)\d*(/|$)")
_FAULT_MESSAGES = {
    429: "Rate limit exceeded, please slow down",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Gateway timeout",
    529: "Overloaded",
}
_MALFORMED_BODY = b"mock: this body is not JSON {"
_JSON = ("content-type", "application/json")
_SSE = (("content-type", "text/event-stream; charset=utf-8"), ("cache-control", "no-cache"))
DEFAULT_MAX_TRACKED_KEYS = 100_000


class MockEngine:
    """A deterministic echo model speaking the OpenAI, Anthropic and Gemini wire formats.

    `fault_rate` makes a share of attempts fail with one of `faults` (fault specs); each draw is
    seeded by (seed, logical request, attempt), so outcomes do not depend on request order.
    `chunk_delay` and `chunks` are defaults for the `x-mock-chunk-delay`/`x-mock-chunks` headers.
    Example::

        engine = MockEngine(seed=1, fault_rate=0.2)
        response = engine.handle("POST", "/v1/chat/completions", {}, {}, body)
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        fault_rate: float = 0.0,
        faults: Sequence[str] = ("429", "500", "503"),
        chunk_delay: float = 0.0,
        chunks: int | None = None,
        max_tracked_keys: int = DEFAULT_MAX_TRACKED_KEYS,
        batch_delay: float = DEFAULT_BATCH_DELAY,
        batch_fault: str | None = None,
    ) -> None:
        if not 0.0 <= fault_rate <= 1.0:
            raise ValueError(f"fault_rate must be between 0 and 1, got {fault_rate!r}")
        if isinstance(faults, str):
            raise TypeError("faults must be a sequence of fault specs, not one string")
        if fault_rate > 0 and not faults:
            raise ValueError("fault_rate > 0 needs at least one fault spec in faults")
        if not (math.isfinite(chunk_delay) and chunk_delay >= 0):
            raise ValueError(f"chunk_delay must be a finite number >= 0, got {chunk_delay!r}")
        if chunks is not None and not 1 <= chunks <= MAX_CHUNKS:
            raise ValueError(f"chunks must be from 1 to {MAX_CHUNKS}, got {chunks!r}")
        if max_tracked_keys < 1:
            raise ValueError(f"max_tracked_keys must be >= 1, got {max_tracked_keys!r}")
        self.seed = seed
        self.fault_rate = fault_rate
        self.faults = tuple(FaultSpec.parse(spec) for spec in faults)
        self.chunk_delay = chunk_delay
        self.chunks = chunks
        self._attempts = AttemptTable(max_tracked_keys)
        # Provider Batch APIs (files, jobs): the engine's one stateful, clocked part.
        self.batches = BatchStore(self.handle, delay=batch_delay, fault=batch_fault)

    def __repr__(self) -> str:
        return (
            f"MockEngine(seed={self.seed!r}, fault_rate={self.fault_rate!r}, "
            f"faults={[f.text for f in self.faults]!r})"
        )

    def clear(self) -> None:
        """Forget every attempt counter (the next request of any key is attempt 1 again)."""
        self._attempts.clear()

    def handle(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
    ) -> MockResponse:
        """Answer one HTTP request. `headers` keys should be lower-case."""
        method = method.upper()
        headers = {name.lower(): value for name, value in headers.items()}
        idempotency_key = headers.get("idempotency-key")
        key = idempotency_key or _body_key(method, path, body)
        attempt = sdk_attempt(headers)
        if attempt is not None:
            return self._handle(method, path, query, headers, body, key, attempt)
        response = self._handle(method, path, query, headers, body, key, self._attempts.next(key))
        if idempotency_key is None and response.header("x-mock-fault") is None:
            self._attempts.forget(key)  # the call is over: the same request again is a new call
        return response

    def _handle(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
        key: str,
        attempt: int,
    ) -> MockResponse:
        batch = self.batches.route(method, path, _hinted(headers, query, path).name)
        if batch is not None:
            return self._batch(batch, path, headers, body, key, attempt)
        wire, endpoint = _route(method, path, headers, query)
        out = _Out(wire, request_id=f"req_mock_{_digest(key, str(attempt))[:24]}", attempt=attempt)
        if endpoint is None:
            return out.error(404, f"Invalid URL ({method} {path})")
        try:
            payload = _parse_json(body) if method == "POST" else None
            chunks, delay, fault = _options(headers, self.chunks, self.chunk_delay)
            named = wire.model_of(endpoint, path, payload)
            model, model_fault = split_model_fault(named) if named else (None, None)
            if fault is None and model_fault:
                fault = _parse_fault(model_fault, "the model name")
            fault = self._pick_fault(fault, key, attempt)
            if fault is not None:
                out.headers.append(("x-mock-fault", fault.text))
                if fault.kind == "status":
                    return out.fault_status(fault)
            call = Call(model=model, response_id=_digest(key)[:24], chunks=chunks, query=query)
            answer = wire.answer(endpoint, payload, call)
        except RequestError as exc:
            return out.error(exc.status, exc.message)
        stall = fault.seconds if fault is not None and fault.kind == "stall" else 0.0
        if isinstance(answer, StreamPlan):
            steps = _stream_steps(answer, fault, delay)
            return MockResponse(
                status=200, headers=out.final(*_SSE), steps=steps, stall_before=stall
            )
        return out.body(dumps(answer), fault, stall)

    def _batch(
        self,
        route: tuple[str, Any],
        path: str,
        headers: Mapping[str, str],
        body: bytes,
        key: str,
        attempt: int,
    ) -> MockResponse:
        """Answer a Batch API request (status faults apply as to any request)."""
        family, handler = route
        out = _Out(
            _WIRES[family],
            request_id=f"req_mock_{_digest(key, str(attempt))[:24]}",
            attempt=attempt,
        )
        try:
            fault = self._pick_fault(_options(headers, None, 0.0)[2], key, attempt)
            if fault is not None and fault.kind == "status":
                out.headers.append(("x-mock-fault", fault.text))
                return out.fault_status(fault)
            status, payload, *content_type = handler(path, headers, body)
        except RequestError as exc:
            return out.error(exc.status, exc.message)
        if not content_type:
            if fault is not None and fault.in_body and status == 200:  # e.g. a lost answer
                out.headers.append(("x-mock-fault", fault.text))
                return out.body(dumps(payload), fault, 0.0)
            return out.json(status, dumps(payload))
        size = ("content-length", str(len(payload)))
        return MockResponse(
            status=status, headers=out.final(("content-type", content_type[0]), size), body=payload
        )

    def _pick_fault(self, chosen: FaultSpec | None, key: str, attempt: int) -> FaultSpec | None:
        if chosen is not None and chosen.fires(attempt):
            return chosen
        if self.fault_rate > 0:
            draw = random.Random(f"{self.seed}:{key}:{attempt}")
            if draw.random() < self.fault_rate:
                spec = draw.choice(self.faults)
                return spec if spec.fires(attempt) else None
        return None


class _Out:
    """Builds the responses of one request: shared headers, error bodies, body faults."""

    def __init__(self, wire: Wire, *, request_id: str, attempt: int) -> None:
        self.wire = wire
        self.request_id = request_id
        self.headers: list[tuple[str, str]] = [("x-mock-attempt", str(attempt))]
        if wire.request_id_header:
            self.headers.append((wire.request_id_header, request_id))

    def final(self, *extra: tuple[str, str]) -> tuple[tuple[str, str], ...]:
        return (*extra, *self.headers)

    def json(
        self,
        status: int,
        body: bytes,
        *,
        stall: float = 0.0,
        extra: tuple[tuple[str, str], ...] = (),
    ) -> MockResponse:
        headers = self.final(_JSON, ("content-length", str(len(body))), *extra)
        return MockResponse(status=status, headers=headers, body=body, stall_before=stall)

    def error(
        self,
        status: int,
        message: str,
        *,
        retry_delay: float | None = None,
        extra: tuple[tuple[str, str], ...] = (),
    ) -> MockResponse:
        body = self.wire.error_body(
            status, message, request_id=self.request_id, retry_delay=retry_delay
        )
        return self.json(status, dumps(body), extra=extra)

    def fault_status(self, fault: FaultSpec) -> MockResponse:
        extra: list[tuple[str, str]] = []
        if fault.retry_after is not None:
            extra.append(("retry-after", format_seconds(fault.retry_after)))
        if fault.retry_after_ms is not None:
            extra.append(("retry-after-ms", str(fault.retry_after_ms)))
        message = _FAULT_MESSAGES.get(fault.status, f"HTTP {fault.status}")
        return self.error(
            fault.status,
            f"{message} (mock fault)",
            retry_delay=fault.retry_delay(),
            extra=tuple(extra),
        )

    def body(self, body: bytes, fault: FaultSpec | None, stall: float) -> MockResponse:
        """A 200 JSON body, with any body fault applied to the whole of it."""
        half = len(body) // 2
        steps: tuple[Step, ...] | None = None
        if fault is None or fault.kind in ("stall", "status"):
            pass
        elif fault.kind == "stall-mid":
            steps = (Data(body[:half]), Sleep(fault.seconds), Data(body[half:]))
        elif fault.kind == "reset":
            steps = (Data(body[:half]), Reset())
        elif fault.kind == "truncate":
            body = body[:half]
        elif fault.kind == "malformed":
            body = _MALFORMED_BODY
        else:  # error-event: outside a stream, the error status real services answer with
            status = 529 if self.wire.name == "anthropic" else 503
            return self.error(status, "The server is overloaded (mock error-event)")
        if steps is None:
            return self.json(200, body, stall=stall)
        return MockResponse(status=200, headers=self.final(_JSON), steps=steps, stall_before=stall)


def _stream_steps(plan: StreamPlan, fault: FaultSpec | None, delay: float) -> tuple[Step, ...]:
    """Lay out a stream: prefix, content (with `delay` between deltas), suffix, and the fault.

    A body fault strikes after `fault.after` content events, clamped so that at least one
    terminal event (finish, usage, `[DONE]`, `message_stop`...) is always affected.
    """
    units: list[list[Step]] = [
        [Sleep(delay), Data(event)] if index and delay else [Data(event)]
        for index, event in enumerate(plan.content)
    ]
    head: list[Step] = [Data(event) for event in plan.prefix]
    tail: list[Step] = [Data(event) for event in plan.suffix]
    if fault is None or not fault.in_body:
        return (*head, *_flat(units), *tail)
    total = len(units) + len(tail)
    cut = max(0, min(fault.after, len(units), total - 1))
    before = [*head, *_flat(units[:cut])]
    after = [*_flat(units[cut:]), *tail]
    if fault.kind == "stall-mid":
        return (*before, Sleep(fault.seconds), *after)
    if fault.kind == "malformed":
        return (*before, Data(plan.malformed_event), *after)
    if fault.kind == "reset":
        return (*before, Reset())
    if fault.kind == "error-event":
        return (*before, Data(plan.error_event))
    return tuple(before)  # truncate: the stream just ends


def _flat(units: list[list[Step]]) -> list[Step]:
    return [step for unit in units for step in unit]


def _route(
    method: str, path: str, headers: Mapping[str, str], query: Mapping[str, str]
) -> tuple[Wire, str | None]:
    """The wire family and endpoint of a request; the hinted family answers unknown routes."""
    hinted = _hinted(headers, query, path)
    for wire in (hinted, _GEMINI, _ANTHROPIC, _OPENAI, _RESPONSES):
        endpoint = wire.route(method, path)
        if endpoint is not None:
            return wire, endpoint
    return hinted, None


def _hinted(headers: Mapping[str, str], query: Mapping[str, str], path: str) -> Wire:
    """The family a request's headers (or its Google-style path) point to."""
    if "anthropic-version" in headers or "x-api-key" in headers:
        return _ANTHROPIC
    if "x-goog-api-key" in headers or "key" in query or _GOOGLE_VERSION.search(path):
        return _GEMINI
    return _OPENAI


def _options(
    headers: Mapping[str, str], chunks: int | None, delay: float
) -> tuple[int | None, float, FaultSpec | None]:
    """Read the `x-mock-*` request headers; 400 on a bad value."""
    raw_chunks = headers.get("x-mock-chunks")
    if raw_chunks is not None:
        digits = raw_chunks.strip()
        if not (digits.isascii() and digits.isdigit() and 1 <= int(digits) <= MAX_CHUNKS):
            raise RequestError(
                f"x-mock-chunks must be a whole number from 1 to {MAX_CHUNKS}, got {raw_chunks!r}"
            )
        chunks = int(digits)
    raw_delay = headers.get("x-mock-chunk-delay")
    if raw_delay is not None:
        try:
            delay = float(raw_delay)
        except ValueError:
            delay = -1.0
        if not (math.isfinite(delay) and delay >= 0):
            raise RequestError(f"x-mock-chunk-delay must be seconds >= 0, got {raw_delay!r}")
    raw_fault = headers.get("x-mock-fault", "").strip()
    fault = None
    if raw_fault and raw_fault.lower() != "none":
        fault = _parse_fault(raw_fault, "x-mock-fault")
    return chunks, delay, fault


def _parse_fault(text: str, where: str) -> FaultSpec:
    try:
        return FaultSpec.parse(text)
    except ValueError as exc:
        raise RequestError(f"bad fault spec in {where}: {exc}") from None


def _parse_json(body: bytes) -> JSONObject:
    try:
        payload: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestError(f"We could not parse the JSON body of your request: {exc}") from None
    if not isinstance(payload, dict):
        raise RequestError("the request body must be a JSON object")
    return payload


def _body_key(method: str, path: str, body: bytes) -> str:
    """The logical request of a request without an idempotency key: its method, path, body."""
    return hashlib.sha256(f"{method} {path}\n".encode() + body).hexdigest()


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()
