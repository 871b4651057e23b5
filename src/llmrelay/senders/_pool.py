"""llmrelay's own HTTP/1.1 connection pool: httpcore connections, O(1) checkout.

Why not httpx's default transport: httpcore's pool scans every pooled connection on each
request (a poll syscall per connection), so with many connections that scan dominates the
client's CPU. Here each origin has a free list of idle connections; checkout pops the most
recently used one and checks only that one.

Why one `httpcore.AsyncHTTPConnection` per connection rather than one single-connection
`httpx.AsyncHTTPTransport` per slot (the previous design), measured as peak RSS with 1,000
requests in flight (benchmarks/bench_memory.py): each of those transports built its own
`ssl.SSLContext`, about 12 KiB resident even for plain http. Now one context serves the process,
built only when an https origin is first dialled, and the httpx <-> httpcore request, response
and error mapping is done once, here. The connections run on `_net.Backend`, the next largest
cost (see there). respx and other tools that patch httpcore's connection class still see every
request.
"""

from __future__ import annotations

import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from functools import lru_cache
from typing import Protocol, cast

import anyio
import httpcore
import httpx

from .. import _constants as C
from .._exceptions import ConfigError
from .._settings import TRUSTSTORE_HINT, CABundle, Verify
from ._net import Backend

# The free lists are keyed by what the URL says: (scheme, host, port or None).
_Key = tuple[bytes, bytes, int | None]
_Idle = tuple[float, httpcore.AsyncHTTPConnection]  # (idle since, connection)

# httpcore's exceptions and the httpx ones users (and our sender) catch; looked up along the
# raised type's MRO, so the most specific match wins.
_HTTPX_FOR: dict[type[Exception], type[httpx.TransportError]] = {
    httpcore.TimeoutException: httpx.TimeoutException,
    httpcore.ConnectTimeout: httpx.ConnectTimeout,
    httpcore.ReadTimeout: httpx.ReadTimeout,
    httpcore.WriteTimeout: httpx.WriteTimeout,
    httpcore.PoolTimeout: httpx.PoolTimeout,
    httpcore.NetworkError: httpx.NetworkError,
    httpcore.ConnectError: httpx.ConnectError,
    httpcore.ReadError: httpx.ReadError,
    httpcore.WriteError: httpx.WriteError,
    httpcore.ProxyError: httpx.ProxyError,
    httpcore.UnsupportedProtocol: httpx.UnsupportedProtocol,
    httpcore.ProtocolError: httpx.ProtocolError,
    httpcore.LocalProtocolError: httpx.LocalProtocolError,
    httpcore.RemoteProtocolError: httpx.RemoteProtocolError,
}


class _Body(Protocol):
    """What httpcore hands back as an HTTP/1.1 response body."""

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


def _as_httpx(exc: Exception, request: httpx.Request | None) -> httpx.TransportError | None:
    for cls in type(exc).__mro__:
        mapped = _HTTPX_FOR.get(cls)
        if mapped is not None:
            return mapped(str(exc), request=request)
    return None


class _PooledStream(httpx.AsyncByteStream):
    """A response body; closing it hands the connection back to the pool."""

    __slots__ = ("_conn", "_inner", "_key", "_pool")

    def __init__(
        self,
        inner: _Body,
        pool: SlotTransport,
        key: _Key,
        conn: httpcore.AsyncHTTPConnection,
    ) -> None:
        self._inner = inner
        self._pool = pool
        self._key = key
        self._conn: httpcore.AsyncHTTPConnection | None = conn

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for part in self._inner:
                yield part
        except Exception as exc:
            mapped = _as_httpx(exc, None)
            if mapped is None:
                raise
            raise mapped from exc

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            with anyio.CancelScope(shield=True):  # as httpcore's own pool: a cancelled caller
                await self._inner.aclose()  # must not leave the connection half-closed
        finally:
            await self._pool._release(self._key, conn)


class SlotTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 connections with keep-alive and O(1) checkout.

    It never blocks: if every connection to an origin is busy (more requests than the client's
    concurrency slots), it opens another. The client's semaphore keeps the count at
    `max_concurrency` in normal use. An idle connection older than `keepalive_expiry` seconds,
    or one the server has closed, is closed instead of reused.
    """

    def __init__(
        self,
        *,
        verify: Verify = True,
        keepalive_expiry: float = C.KEEPALIVE_EXPIRY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._verify = verify
        self._ssl: ssl.SSLContext | None = None  # built on the first https connection
        self._expiry = keepalive_expiry
        self._clock = clock
        self._backend = Backend()
        self._free: dict[_Key, deque[_Idle]] = {}
        self._all: set[httpcore.AsyncHTTPConnection] = set()  # open, idle or in use
        self._closed = False

    @property
    def connections(self) -> int:
        """How many connections are open (idle or in use)."""
        return len(self._all)

    @property
    def idle(self) -> int:
        """How many open connections wait in the free lists."""
        return sum(len(free) for free in self._free.values())

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        key = (url.raw_scheme, url.raw_host, url.port)
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=key[0], host=key[1], port=key[2], target=url.raw_path),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        conn = await self._checkout(key) or self._connect(core)
        try:
            response = await conn.handle_async_request(core)
        except BaseException as exc:
            await self._release(key, conn)
            if isinstance(exc, Exception):
                mapped = _as_httpx(exc, request)
                if mapped is not None:
                    raise mapped from exc
            raise
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_PooledStream(cast(_Body, response.stream), self, key, conn),
            extensions=response.extensions,
        )

    async def _checkout(self, key: _Key) -> httpcore.AsyncHTTPConnection | None:
        free = self._free.get(key)
        if free is None:
            self._free[key] = deque()
            return None
        if not free:
            return None
        # Most recently used first; the oldest idle ones sit at the left end, so the expired
        # ones are found there without a scan.
        stale_after = self._clock() - self._expiry
        stale: list[httpcore.AsyncHTTPConnection] = []
        while free and free[0][0] <= stale_after:
            stale.append(free.popleft()[1])
        found = None
        while free:
            conn = free.pop()[1]
            if conn.is_available() and not conn.has_expired():  # has_expired: closed by the server
                found = conn
                break
            stale.append(conn)
        if stale:
            await self._close(stale)
        return found

    def _connect(self, request: httpcore.Request) -> httpcore.AsyncHTTPConnection:
        scheme = request.url.scheme
        if scheme not in (b"http", b"https"):
            raise httpx.UnsupportedProtocol(
                f"unsupported URL scheme {scheme.decode('ascii', 'replace')!r}"
            )
        origin = request.url.origin
        conn = httpcore.AsyncHTTPConnection(
            origin=origin,
            ssl_context=self._ssl_context() if scheme == b"https" else None,
            keepalive_expiry=None,
            network_backend=self._backend,
        )
        self._all.add(conn)
        return conn

    async def _release(self, key: _Key, conn: httpcore.AsyncHTTPConnection) -> None:
        if conn.is_available() and not self._closed:
            free = self._free.get(key)
            if free is not None:
                free.append((self._clock(), conn))
                return
        # Not reusable: closed already, or still NEW/ACTIVE (a cancellation between connecting
        # and sending), or the pool was closed meanwhile. Close it; closing twice is harmless.
        await self._close([conn])

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = tls_context(self._verify)
        return self._ssl  # httpcore sets the ALPN protocols (http/1.1) on each connect

    async def _close(self, conns: list[httpcore.AsyncHTTPConnection]) -> None:
        with anyio.CancelScope(shield=True):
            for conn in conns:
                self._all.discard(conn)
                await conn.aclose()

    async def aclose(self) -> None:
        """Close every connection, idle or in use."""
        self._closed = True
        conns = list(self._all)
        self._free.clear()
        await self._close(conns)


def tls_context(verify: Verify) -> ssl.SSLContext:
    """The TLS context `verify` names (a resolved `ClientConfig.verify`): the user's own context
    as given; else one context per distinct value per process, since loading a CA bundle costs
    tens of ms and each context holds about 12 KiB. A bundle that cannot be loaded, or
    ``"system"`` without the truststore package, is a `ConfigError`."""
    if isinstance(verify, ssl.SSLContext):
        return verify
    return _shared_context(verify)


@lru_cache(maxsize=C.TLS_CONTEXTS_KEPT)
def _shared_context(verify: bool | str | CABundle) -> ssl.SSLContext:
    if verify is True:
        import certifi  # httpx's own dependency; imported late because it is only needed for TLS

        return ssl.create_default_context(cafile=certifi.where())
    if verify is False:  # encrypts, checks nothing
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if isinstance(verify, CABundle):
        try:
            if verify.directory:
                return ssl.create_default_context(capath=verify.path)
            return ssl.create_default_context(cafile=verify.path)
        except (OSError, ssl.SSLError) as exc:  # SSLError: a file with no certificate in it
            raise ConfigError(
                f"{verify.source}: cannot load CA certificates from {verify.path}: {exc}"
            ) from None
    try:  # "system": the OS trust store (Windows, macOS; OpenSSL's own paths on Linux)
        import truststore
    except ImportError:
        raise ConfigError(TRUSTSTORE_HINT) from None
    return truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
