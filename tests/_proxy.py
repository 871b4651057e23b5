"""A loopback HTTP forward proxy for tests: it runs on its own thread and event loop (so sync
and async clients alike can use it), forwards absolute-form requests (``POST http://host/path``)
and tunnels ``CONNECT host:port``, and records the method and target of each request it saw.

It only forwards to loopback hosts, so a test can never reach the network through it. Each
client connection carries one request (the proxy answers with the target's ``connection: close``).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
# Hop-by-hop headers a proxy consumes instead of forwarding (RFC 9110, section 7.6.1).
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "upgrade"}
)


@dataclass(frozen=True)
class Seen:
    """One request as the proxy saw it: its method, its target (a URL, or host:port for
    CONNECT) and whether it carried proxy credentials. Header values are not kept: a record
    must never hold a credential."""

    method: str
    target: str
    proxy_auth: bool = False


class ForwardProxy:
    def __init__(self) -> None:
        self.url = ""
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._handlers: set[asyncio.Task[None]] = set()

    def records(self) -> list[Seen]:
        with self._lock:
            return list(self.seen)

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # asyncio keeps only weak references to tasks: a handler waiting on two idle pipes (a
        # tunnel whose sockets are both out of the selector) would be collected mid-flight.
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *lines = head.decode("latin-1").split("\r\n")[:-2]
            method, target, _version = request_line.split(" ", 2)
            headers = [(n.strip(), v.strip()) for n, _, v in (x.partition(":") for x in lines)]
            names = {name.lower() for name, _ in headers}
            self._record(Seen(method, target, "proxy-authorization" in names))
            if method == "CONNECT":
                await self._tunnel(target, reader, writer)
            else:
                await self._forward(method, target, headers, reader, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass  # the client went away or sent garbage: nothing to relay
        finally:
            # No await here: a handler cancelled at shutdown must end at once, not wait on a
            # peer (the loop below runs the transport's own closing callbacks).
            writer.close()

    async def _forward(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        url = urlsplit(target)
        if url.scheme != "http" or url.hostname not in LOOPBACK:
            writer.write(_status(403, "only absolute http URLs on loopback are forwarded"))
            return
        lengths = [int(v) for n, v in headers if n.lower() == "content-length"]
        if any(n.lower() == "transfer-encoding" for n, _ in headers):
            writer.write(_status(501, "chunked request bodies are not supported here"))
            return
        body = await reader.readexactly(lengths[0]) if lengths else b""
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        kept = [(n, v) for n, v in headers if n.lower() not in HOP_BY_HOP]
        upstream_reader, upstream = await asyncio.open_connection(url.hostname, url.port or 80)
        try:
            lines = [f"{method} {path} HTTP/1.1", *(f"{n}: {v}" for n, v in kept)]
            upstream.write(("\r\n".join([*lines, "connection: close", "", ""])).encode("latin-1"))
            upstream.write(body)
            await upstream.drain()
            await _pipe(upstream_reader, writer)  # the target closes after its reply
        finally:
            upstream.close()

    async def _tunnel(
        self, target: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        host, _, port = target.rpartition(":")
        host = host.strip("[]")
        if host not in LOOPBACK:
            writer.write(_status(403, "only loopback hosts are tunnelled"))
            return
        upstream_reader, upstream = await asyncio.open_connection(host, int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        try:
            await asyncio.gather(_pipe(reader, upstream), _pipe(upstream_reader, writer))
        finally:
            upstream.close()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    while chunk := await source.read(65536):
        sink.write(chunk)
        await sink.drain()
    if sink.can_write_eof():
        with contextlib.suppress(OSError):
            sink.write_eof()


async def _finish_handlers() -> None:
    """Let every connection handler end (the clients are gone by now, so they see EOF); cancel
    what still runs after a grace period. Until none is left: a handler starting late (a
    connection accepted just before the server closed) is finished too, so that none is
    destroyed pending with the loop (its writer unclosed, its coroutine never finished)."""
    while others := [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]:
        _, running = await asyncio.wait(others, timeout=1.0)
        for task in running:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)


def _status(code: int, reason: str) -> bytes:
    body = reason.encode()
    return (
        f"HTTP/1.1 {code} {reason}\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode() + body


@contextlib.contextmanager
def forward_proxy() -> Iterator[ForwardProxy]:
    """Run a `ForwardProxy` on 127.0.0.1 (a free port) for the duration of the block; its
    ``url`` is ``http://127.0.0.1:PORT``."""
    proxy = ForwardProxy()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop: asyncio.Event | None = None

    async def main() -> None:
        nonlocal stop
        stop = asyncio.Event()
        server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        proxy.url = f"http://127.0.0.1:{port}"
        ready.set()
        await stop.wait()
        server.close()
        # Connections still open (a kept-alive tunnel) end with the proxy; only then can the
        # server finish closing (Python 3.12+ waits for them).
        # Until none is left: a connection accepted while the first ones were being cancelled
        # starts a new handler, which would otherwise be destroyed pending with the loop.
        await _finish_handlers()
        await server.wait_closed()

    def run() -> None:
        loop.run_until_complete(main())
        # A connection accepted just before the server closed may start its handler in the
        # loop's last turn: cancel and finish those too, or they die pending with the loop.
        loop.run_until_complete(_finish_handlers())
        loop.run_until_complete(asyncio.sleep(0.01))  # closed transports finish closing

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    if not ready.wait(5):
        raise RuntimeError("the test proxy did not start")
    try:
        yield proxy
    finally:
        assert stop is not None
        loop.call_soon_threadsafe(stop.set)
        thread.join(5)
        loop.close()
