"""The mock's in-process face: an httpx transport (async and sync) over `MockEngine`.

No sockets: a request goes straight to the engine and its answer is played back with real waits
(`anyio.sleep` / `time.sleep`), so timeouts behave as they would against a network. A wait longer
than the request's read timeout lasts only the timeout and then raises `httpx.ReadTimeout`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass

import anyio
import httpx

from ._engine import MockEngine
from ._types import Data, MockResponse, Reset, Sleep, Step


@dataclass(frozen=True, slots=True)
class _TimedOut:
    """The reader gave up: it waited its whole read timeout for the next byte."""


def _paced(steps: Iterable[Step], read_timeout: float | None) -> Iterator[Step | _TimedOut]:
    """The steps as a reader with `read_timeout` lives them: silence adds up between data."""
    silence = 0.0
    for step in steps:
        if isinstance(step, Sleep):
            if read_timeout is not None and silence + step.seconds > read_timeout:
                yield Sleep(max(0.0, read_timeout - silence))
                yield _TimedOut()
                return
            silence += step.seconds
        elif isinstance(step, Data):
            silence = 0.0
        yield step


def _stall(seconds: float, read_timeout: float | None) -> list[Sleep | _TimedOut]:
    """The wait before the headers: nothing, a sleep, or a sleep cut short by the timeout."""
    if seconds <= 0:
        return []
    if read_timeout is not None and seconds > read_timeout:
        return [Sleep(read_timeout), _TimedOut()]
    return [Sleep(seconds)]


def _failure(step: Reset | _TimedOut, request: httpx.Request) -> httpx.TransportError:
    if isinstance(step, Reset):
        return httpx.ReadError("connection reset by mock", request=request)
    return httpx.ReadTimeout("timed out reading from the mock", request=request)


class _AsyncSteps(httpx.AsyncByteStream):
    def __init__(
        self, steps: Iterable[Step], read_timeout: float | None, request: httpx.Request
    ) -> None:
        self._steps = steps
        self._read_timeout = read_timeout
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for step in _paced(self._steps, self._read_timeout):
            if isinstance(step, Data):
                yield step.data
            elif isinstance(step, Sleep):
                await anyio.sleep(step.seconds)
            else:
                raise _failure(step, self._request)


class _SyncSteps(httpx.SyncByteStream):
    def __init__(
        self, steps: Iterable[Step], read_timeout: float | None, request: httpx.Request
    ) -> None:
        self._steps = steps
        self._read_timeout = read_timeout
        self._request = request

    def __iter__(self) -> Iterator[bytes]:
        for step in _paced(self._steps, self._read_timeout):
            if isinstance(step, Data):
                yield step.data
            elif isinstance(step, Sleep):
                time.sleep(step.seconds)
            else:
                raise _failure(step, self._request)


class MockTransport(httpx.AsyncBaseTransport, httpx.BaseTransport):
    """An httpx transport answering every request from a `MockEngine`, with no sockets.

    Works with both `httpx.AsyncClient` and `httpx.Client`. Example::

        client = httpx.AsyncClient(transport=MockTransport(), base_url="http://mock/v1")
        response = await client.post("/chat/completions", json={...})
    """

    def __init__(self, engine: MockEngine | None = None) -> None:
        self.engine = engine if engine is not None else MockEngine()

    def __repr__(self) -> str:
        return f"MockTransport({self.engine!r})"

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        answer = self._answer(request, await request.aread())
        read_timeout = _read_timeout(request)
        for step in _stall(answer.stall_before, read_timeout):
            if isinstance(step, Sleep):
                await anyio.sleep(step.seconds)
            else:
                raise _failure(step, request)
        stream: httpx.AsyncByteStream = (
            httpx.ByteStream(answer.body)
            if answer.steps is None
            else _AsyncSteps(answer.steps, read_timeout, request)
        )
        return _response(answer, stream, request)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        answer = self._answer(request, request.read())
        read_timeout = _read_timeout(request)
        for step in _stall(answer.stall_before, read_timeout):
            if isinstance(step, Sleep):
                time.sleep(step.seconds)
            else:
                raise _failure(step, request)
        stream: httpx.SyncByteStream = (
            httpx.ByteStream(answer.body)
            if answer.steps is None
            else _SyncSteps(answer.steps, read_timeout, request)
        )
        return _response(answer, stream, request)

    def _answer(self, request: httpx.Request, body: bytes) -> MockResponse:
        return self.engine.handle(
            request.method,
            request.url.path,
            dict(request.url.params),
            dict(request.headers),
            body,
        )


def _response(
    answer: MockResponse,
    stream: httpx.AsyncByteStream | httpx.SyncByteStream,
    request: httpx.Request,
) -> httpx.Response:
    return httpx.Response(
        answer.status,
        headers=list(answer.headers),
        stream=stream,
        request=request,
        extensions={"http_version": b"HTTP/1.1"},
    )


def _read_timeout(request: httpx.Request) -> float | None:
    timeouts = request.extensions.get("timeout") or {}
    value = timeouts.get("read")
    return float(value) if value is not None else None
