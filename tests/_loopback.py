"""A real HTTP/1.1 server on 127.0.0.1 that answers with exact bytes, for tests that drive the
real client (its own connection pool, httpx, the whole stage chain) and look at what the server
saw: each request (method, path, headers, body), and how many connections opened and closed.

Each request is answered by `respond(request) -> Response`. A response's body is a list of
steps: bytes are sent (as one HTTP chunk when the body is chunked), a float pauses that many
seconds, `HOLD` sends nothing more and waits until the client hangs up, `CUT` drops the
connection there. A chunked body that runs out of steps ends properly (`0\\r\\n\\r\\n`, sent in
the same write as its last bytes, so the client sees the end together with them).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc

HOLD = "hold"  # send nothing more; wait until the client hangs up
CUT = "cut"  # drop the connection here

Step = bytes | float | str

FIXTURES = Path(__file__).parent / "fixtures"


class Request:
    """One request as the server received it (header names lowercased)."""

    __slots__ = ("body", "headers", "method", "path")

    def __init__(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.path} {len(self.body)} bytes>"


class Response:
    """What to answer: status, content type, body steps. `chunked=False` sends a
    content-length (`length`, default the body's size); `close` ends the connection after it."""

    __slots__ = ("chunked", "close", "content_type", "length", "status", "steps")

    def __init__(
        self,
        steps: list[Step],
        *,
        status: int = 200,
        content_type: str = "text/event-stream",
        chunked: bool = True,
        length: int | None = None,
        close: bool = False,
    ) -> None:
        self.steps = steps
        self.status = status
        self.content_type = content_type
        self.chunked = chunked
        self.length = length
        self.close = close


Respond = Callable[[Request], Response]


def sse(steps: list[Step], **options: Any) -> Response:
    """An event stream (chunked)."""
    return Response(steps, **options)


def json_response(data: Any, *, status: int = 200, **options: Any) -> Response:
    """A whole JSON body with a content-length."""
    content = json.dumps(data).encode()
    return Response(
        [content], status=status, content_type="application/json", chunked=False, **options
    )


def sse_events(name: str) -> list[bytes]:
    """A fixture file's events (``fixtures/<name>.sse``), each with its blank line."""
    data = (FIXTURES / f"{name}.sse").read_bytes()
    return [part + b"\n\n" for part in data.split(b"\n\n") if part]


def chat_completion(text: str) -> dict[str, Any]:
    """An OpenAI chat completion whose reply is `text`."""
    return {
        "id": "chatcmpl-loop",
        "object": "chat.completion",
        "model": "loop-model",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8},
    }


class LoopbackServer:
    """The server's side: what it received, and its connections (`opened`, `closed`)."""

    def __init__(self, respond: Respond) -> None:
        self.respond = respond
        self.port = 0
        self.opened = 0
        self.closed = 0
        self.requests: list[Request] = []
        self._changed = anyio.Event()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def wait_closed(self, count: int) -> None:
        """Until the server has seen `count` connections end."""
        while self.closed < count:
            await self._changed.wait()

    async def serve(self, stream: anyio.abc.SocketStream) -> None:
        self.opened += 1
        buffer = b""
        try:
            while True:
                while b"\r\n\r\n" not in buffer:
                    buffer += await stream.receive()
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                request_line, *lines = head.decode("latin-1").split("\r\n")
                method, path, _ = request_line.split(" ", 2)
                headers: dict[str, str] = {}
                for line in lines:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0"))
                while len(buffer) < length:
                    buffer += await stream.receive()
                body, buffer = buffer[:length], buffer[length:]
                request = Request(method, path, headers, body)
                self.requests.append(request)
                if not await self._answer(stream, self.respond(request)):
                    return
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass
        finally:
            self.closed += 1
            self._changed.set()
            self._changed = anyio.Event()
            await stream.aclose()

    async def _answer(self, stream: anyio.abc.SocketStream, response: Response) -> bool:
        """Send one response; False when the connection must end."""
        head = [
            f"HTTP/1.1 {response.status} X",
            f"content-type: {response.content_type}",
            f"x-request-id: req_loop_{len(self.requests)}",
        ]
        if response.chunked:
            head.append("transfer-encoding: chunked")
        else:
            length = response.length
            if length is None:
                length = sum(len(s) for s in response.steps if isinstance(s, bytes))
            head.append(f"content-length: {length}")
        if response.close:
            head.append("connection: close")
        await stream.send("\r\n".join(head).encode() + b"\r\n\r\n")
        pending = b""  # the last bytes, held back to go out with the end of a chunked body
        for step in response.steps:
            if not isinstance(step, bytes) and pending:
                await stream.send(pending)
                pending = b""
            if isinstance(step, float):
                await anyio.sleep(step)
            elif step == HOLD:
                while True:  # until the client hangs up (EndOfStream)
                    await stream.receive()
            elif step == CUT:
                return False
            else:
                assert isinstance(step, bytes)
                if pending:
                    await stream.send(pending)
                pending = b"%x\r\n%s\r\n" % (len(step), step) if response.chunked else step
        if response.chunked:
            pending += b"0\r\n\r\n"
        if pending:
            await stream.send(pending)
        return not response.close


@asynccontextmanager
async def loopback(respond: Respond) -> AsyncIterator[LoopbackServer]:
    """A running `LoopbackServer` on a free port; it stops when the block ends."""
    server = LoopbackServer(respond)
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    server.port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, server.serve)
        try:
            yield server
        finally:
            tg.cancel_scope.cancel()
