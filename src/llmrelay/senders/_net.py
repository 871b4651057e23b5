"""A lean asyncio network backend for httpcore's connections.

Why not httpcore's own (anyio) backend: measured with 1,000 requests held open, it is the
largest cost after the TLS contexts. Each `anyio.connect_tcp` runs a happy-eyeballs task group
(a task, an event, cancel scopes: ~6 KiB while connecting, and a client opens all its connections
at once when a burst starts), and each anyio socket stream keeps a read queue and two
`asyncio.Event`s (~2.5 KiB per connection for its lifetime); each read also pauses and resumes
the transport and opens a cancel scope. Here a connection is one `asyncio.Protocol` holding the
bytes received so far and at most one waiting future; a read timeout is a timer on that future,
not a task cancellation. Connecting is `loop.create_connection` (which does happy eyeballs itself
when a name resolves to several addresses).

Under trio (no asyncio loop) httpcore's anyio backend is used instead.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from typing import Any, cast

import anyio
import httpcore

from .. import _constants as C


class _Protocol(asyncio.Protocol):
    """Collects received bytes; wakes the one reader or writer that may be waiting."""

    __slots__ = ("data", "drained", "eof", "error", "reading_paused", "transport", "waiter")

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.data = b""
        self.eof = False  # no more bytes will arrive
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[bool] | None = None  # a reader waiting for bytes or EOF
        self.drained: asyncio.Future[bool] | None = None  # a writer waiting for resume_writing
        self.reading_paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.data = self.data + data if self.data else data
        if len(self.data) > C.SOCKET_READ_BUFFER and self.transport is not None:
            self.transport.pause_reading()  # resumed once the reader has taken the bytes
            self.reading_paused = True
        _wake(self.waiter)

    def eof_received(self) -> bool:
        self.eof = True
        _wake(self.waiter)
        return False  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.error = exc
        _wake(self.waiter)
        _wake(self.drained)

    def pause_writing(self) -> None:
        if self.drained is None:
            self.drained = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        drained, self.drained = self.drained, None
        _wake(drained)


def _wake(waiter: asyncio.Future[bool] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(True)


def _time_out(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)


async def _wait(waiter: asyncio.Future[bool], timeout: float | None) -> bool:
    """False if `timeout` seconds passed first. A timer, not a cancellation, so the task's
    cancel state (anyio's scopes rely on it) is never touched."""
    if timeout is None:
        return await waiter
    timer = asyncio.get_running_loop().call_later(timeout, _time_out, waiter)
    try:
        return await waiter
    finally:
        timer.cancel()


class AsyncioStream(httpcore.AsyncNetworkStream):
    """httpcore's view of one connection (plain TCP, or TLS after `start_tls`)."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: _Protocol) -> None:
        self._protocol = protocol

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        p = self._protocol
        if not p.data and not p.eof:
            waiter = p.waiter = asyncio.get_running_loop().create_future()
            try:
                await _wait(waiter, timeout)
            finally:
                p.waiter = None
            if not p.data and not p.eof:
                raise httpcore.ReadTimeout("timed out waiting for data")
        data = p.data
        if data:
            if len(data) <= max_bytes:
                p.data = b""
            else:
                data, p.data = data[:max_bytes], data[max_bytes:]
            if p.reading_paused and len(p.data) <= C.SOCKET_READ_BUFFER and p.transport:
                p.reading_paused = False
                p.transport.resume_reading()
            return data
        if p.error is not None:
            raise httpcore.ReadError(_describe(p.error))
        return b""  # the peer closed the connection

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        p = self._protocol
        transport = p.transport
        if transport is None or p.eof or transport.is_closing():
            raise httpcore.WriteError(_describe(p.error) if p.error else "connection closed")
        # In pieces: asyncio's TLS transport takes one write whole into the socket's buffer and
        # reports no backpressure for it, so a stalled peer would only show as a read timeout.
        view = memoryview(buffer)
        for start in range(0, len(view), C.SOCKET_WRITE_PIECE):
            if p.eof or transport.is_closing():
                raise httpcore.WriteError(_describe(p.error) if p.error else "connection closed")
            transport.write(view[start : start + C.SOCKET_WRITE_PIECE])
            drained = p.drained
            if drained is not None and not await _wait(drained, timeout):
                raise httpcore.WriteTimeout("timed out sending")
            if p.error is not None:
                raise httpcore.WriteError(_describe(p.error))

    async def aclose(self) -> None:
        transport = self._protocol.transport
        if transport is not None:
            # abort, not close: close() waits for the write buffer to drain (forever if the
            # peer stopped reading) and, on TLS, for the peer's close_notify (up to 30 s)
            transport.abort()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        p = self._protocol
        assert p.transport is not None
        try:
            with anyio.fail_after(timeout):
                transport = await asyncio.get_running_loop().start_tls(
                    p.transport, p, ssl_context, server_hostname=server_hostname
                )
        except BaseException as exc:
            p.transport.abort()
            if isinstance(exc, TimeoutError):
                raise httpcore.ConnectTimeout("timed out during the TLS handshake") from exc
            if isinstance(exc, OSError):
                raise httpcore.ConnectError(_describe(exc)) from exc
            raise
        p.transport = cast(asyncio.Transport, transport)
        return self

    def get_extra_info(self, info: str) -> Any:
        p = self._protocol
        if info == "is_readable":
            # Received bytes or an EOF on an idle connection: the server closed it. asyncio
            # reads eagerly, so this needs no poll syscall.
            return bool(p.data) or p.eof
        if p.transport is None:
            return None
        name = {"client_addr": "sockname", "server_addr": "peername"}.get(info, info)
        if name in ("ssl_object", "sockname", "peername", "socket"):
            return p.transport.get_extra_info(name)
        return None


class Backend(httpcore.AsyncNetworkBackend):
    """`AsyncioStream`s on asyncio; httpcore's anyio backend elsewhere (trio)."""

    def __init__(self) -> None:
        self._fallback: httpcore.AsyncNetworkBackend | None = None

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if not isinstance(loop, asyncio.BaseEventLoop):  # trio, uvloop, ...: the anyio backend
            return await self._other().connect_tcp(
                host, port, timeout, local_address, socket_options
            )
        try:
            with anyio.fail_after(timeout):
                _, protocol = await loop.create_connection(
                    _Protocol,
                    host,
                    port,
                    local_addr=(local_address, 0) if local_address else None,
                    # An address has nothing to race (and asyncio would still start tasks).
                    happy_eyeballs_delay=None if _is_address(host) else C.HAPPY_EYEBALLS_DELAY,
                )
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout("timed out connecting") from exc
        except OSError as exc:
            raise httpcore.ConnectError(_describe(exc)) from exc
        if socket_options and protocol.transport is not None:
            sock = protocol.transport.get_extra_info("socket")
            for option in socket_options:
                sock.setsockopt(*option)
        return AsyncioStream(protocol)

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)

    def _other(self) -> httpcore.AsyncNetworkBackend:
        if self._fallback is None:
            self._fallback = httpcore.AnyIOBackend()
        return self._fallback


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
