"""A cheap loopback HTTP/1.1 server for the benchmarks: raw asyncio, keep-alive, pre-built
responses, run in its own process so the client's CPU time is measured alone.

Paths: ``/v1/chat/completions`` answers a fixed chat completion (or, when the body asks for
``"stream": true``, a pre-built stream of N chunks, one write per event); ``/hold/...`` answers
only once `hold` requests are waiting, or (with ``hold=0``) when ``/release`` is requested;
``/held`` answers how many are waiting (for the memory benchmarks).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import socket
from typing import Any

CHAT_BODY = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "bench-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello! How can I help you today?"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21},
    }
).encode()


def _response(body: bytes, content_type: bytes = b"application/json") -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: "
        + content_type
        + b"\r\ncontent-length: "
        + str(len(body)).encode()
        + b"\r\nx-request-id: req_bench\r\n\r\n"
        + body
    )


CHAT_RESPONSE = _response(CHAT_BODY)


def stream_events(chunks: int) -> list[bytes]:
    events = []
    for i in range(chunks):
        chunk = {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": "bench-model",
            "choices": [{"index": 0, "delta": {"content": f"tok{i} "}, "finish_reason": None}],
        }
        events.append(b"data: " + json.dumps(chunk).encode() + b"\n\n")
    last = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "bench-model",
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": chunks, "total_tokens": chunks + 5},
    }
    events.append(b"data: " + json.dumps(last).encode() + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return events


class _Protocol(asyncio.Protocol):
    def __init__(self, server: _State) -> None:
        self.server = server
        self.buffer = b""
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            path = head.split(" ", 2)[1]
            self.server.handle(self, path, body)


class _State:
    def __init__(self, stream_chunks: int, hold: int) -> None:
        self.events = stream_events(stream_chunks)
        self.stream_head = (
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
        )
        self.hold = hold
        self.held: list[_Protocol] = []

    def handle(self, proto: _Protocol, path: str, body: bytes) -> None:
        if path.startswith("/hold"):
            self.held.append(proto)
            if self.hold and len(self.held) >= self.hold:
                self.release()
            return
        if path == "/held":
            proto.transport.write(_response(str(len(self.held)).encode(), b"text/plain"))
            return
        if path == "/release":
            proto.transport.write(_response(str(self.release()).encode(), b"text/plain"))
            return
        if b'"stream":true' in body or b'"stream": true' in body:
            asyncio.get_running_loop().create_task(self.stream(proto))
            return
        proto.transport.write(CHAT_RESPONSE)

    def release(self) -> int:
        held, self.held = self.held, []
        for waiting in held:
            waiting.transport.write(CHAT_RESPONSE)
        return len(held)

    async def stream(self, proto: _Protocol) -> None:
        write = proto.transport.write
        write(self.stream_head)
        for i, event in enumerate(self.events):
            write(b"%x\r\n%s\r\n" % (len(event), event))
            if i % 4 == 3:
                await asyncio.sleep(0)  # let events leave as separate segments, like a real stream
        write(b"0\r\n\r\n")


def _serve(port_queue: Any, stream_chunks: int, hold: int) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        state = _State(stream_chunks, hold)
        server = await loop.create_server(lambda: _Protocol(state), "127.0.0.1", 0, backlog=2048)
        port_queue.put(server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    asyncio.run(main())


class ServerProcess:
    """Start the server in a child process; `.url` is its base URL. `hold=0`: held requests
    wait for ``/release``."""

    def __init__(self, *, stream_chunks: int = 2000, hold: int = 1000) -> None:
        ctx = multiprocessing.get_context("spawn")
        queue = ctx.Queue()
        self.process = ctx.Process(target=_serve, args=(queue, stream_chunks, hold), daemon=True)
        self.process.start()
        self.port = queue.get(timeout=30)
        self.url = f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.process.terminate()
        self.process.join(5)
