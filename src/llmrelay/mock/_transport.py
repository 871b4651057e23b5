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


def _stall(seconds: float, read_timeout: float | None) -> tuple[float, bool]:
    """The wait before the headers, and whether the reader gives up at its end."""
    if read_timeout is not None and seconds > read_timeout:
        return read_timeout, True
    return max(0.0, seconds), False


def _failure(step: Reset | _TimedOut, request: httpx.Request) -> httpx.TransportError:
    if isinstance(step, Reset):
        return httpx.ReadError("connection reset by mock", request=request)
    return httpx.ReadTimeout("timed out reading from the mock", request=request)


class _Steps(httpx.AsyncByteStream, httpx.SyncByteStream):
    """A body played step by step, for `httpx.AsyncClient` and `httpx.Client` alike."""

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
        wait, timed_out = _stall(answer.stall_before, _read_timeout(request))
        if wait:
            await anyio.sleep(wait)
        if timed_out:
            raise _failure(_TimedOut(), request)
        return _response(answer, request)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        answer = self._answer(request, request.read())
        wait, timed_out = _stall(answer.stall_before, _read_timeout(request))
        if wait:
            time.sleep(wait)
        if timed_out:
            raise _failure(_TimedOut(), request)
        return _response(answer, request)

    def _answer(self, request: httpx.Request, body: bytes) -> MockResponse:
        return self.engine.handle(
            request.method,
            request.url.path,
            dict(request.url.params),
            dict(request.headers),
            body,
        )


def _response(answer: MockResponse, request: httpx.Request) -> httpx.Response:
    stream = (
        httpx.ByteStream(answer.body)
        if answer.steps is None
        else _Steps(answer.steps, _read_timeout(request), request)
    )
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
