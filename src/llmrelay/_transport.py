"""The HTTP layer: the connection pool llmrelay builds for itself, and the one place where
httpx's exceptions become llmrelay errors.

Why a pool of its own: httpcore's pool scans every pooled connection on each request (a poll
syscall per connection), so with many connections that scan dominates the client's CPU. Giving
each concurrency slot its own single-connection transport makes checkout O(1): a free list.
All transports share one SSL context, built once. A user-supplied `httpx.AsyncClient` is used
as it is.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache

import httpx

from . import _constants as C
from ._config import Timeout
from ._exceptions import APIConnectionError, APITimeoutError


class _ReleasingStream(httpx.AsyncByteStream):
    """Hands the connection's transport back to the free list once the response is closed."""

    __slots__ = ("_inner", "_release")

    def __init__(self, inner: httpx.AsyncByteStream, release: Callable[[], None] | None) -> None:
        self._inner = inner
        self._release = release

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._inner.__aiter__()

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()


class SlotTransport(httpx.AsyncBaseTransport):
    """A set of single-connection transports with O(1) checkout.

    It never blocks: if every transport is busy (more requests than slots), it opens another.
    The client's semaphore keeps the count at `max_concurrency` in normal use.
    """

    def __init__(self, *, http2: bool = False, verify: ssl.SSLContext | bool = True) -> None:
        # Separate free lists for http and https: plain-http connections need no TLS context,
        # so a loopback or local-model client never pays for loading the CA bundle.
        self._free_http: list[httpx.AsyncHTTPTransport] = []
        self._free_https: list[httpx.AsyncHTTPTransport] = []
        self._all: list[httpx.AsyncHTTPTransport] = []
        self._http2 = http2
        self._verify = verify
        self._limits = httpx.Limits(
            max_connections=1, max_keepalive_connections=1, keepalive_expiry=C.KEEPALIVE_EXPIRY
        )

    def _open(self, tls: bool) -> httpx.AsyncHTTPTransport:
        if not tls:
            verify: ssl.SSLContext | bool = False  # never used: this one only sees http URLs
        elif self._verify is True:
            verify = default_ssl_context()
        else:
            verify = self._verify
        transport = httpx.AsyncHTTPTransport(verify=verify, http2=self._http2, limits=self._limits)
        self._all.append(transport)
        return transport

    @property
    def connections(self) -> int:
        """How many transports (each at most one connection) exist."""
        return len(self._all)

    @property
    def idle(self) -> int:
        return len(self._free_http) + len(self._free_https)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        free = self._free_http if request.url.scheme == "http" else self._free_https
        transport = free.pop() if free else self._open(free is self._free_https)
        try:
            response = await transport.handle_async_request(request)
        except BaseException:
            free.append(transport)
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _ReleasingStream(response.stream, lambda: free.append(transport))
        return response

    async def aclose(self) -> None:
        transports, self._all = self._all, []
        self._free_http.clear()
        self._free_https.clear()
        for transport in transports:
            await transport.aclose()


@lru_cache(maxsize=1)
def default_ssl_context() -> ssl.SSLContext:
    """One verifying TLS context per process: loading the CA bundle costs tens of ms."""
    import certifi  # httpx's own dependency; imported late because it is only needed for TLS

    return ssl.create_default_context(cafile=certifi.where())


@lru_cache(maxsize=64)
def httpx_timeout(timeout: Timeout) -> httpx.Timeout:
    """httpx's per-phase timeouts for ours (cached: built once per distinct value)."""
    return httpx.Timeout(
        connect=timeout.connect,
        read=timeout.read,
        write=C.DEFAULT_WRITE_TIMEOUT,
        pool=C.DEFAULT_POOL_TIMEOUT,
    )


# What httpx raises for network trouble; everything else is a bug and propagates as is.
HTTPX_ERRORS = (httpx.TransportError, httpx.StreamError, httpx.DecodingError)


def transport_error(exc: Exception, provider: str) -> APIConnectionError:
    """The single place where httpx's exceptions become llmrelay's."""
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"{provider}: {_timeout_phase(exc)} timed out", provider=provider)
    detail = str(exc) or type(exc).__name__
    return APIConnectionError(f"{provider}: connection failed: {detail}", provider=provider)


@contextmanager
def mapped_transport_errors(provider: str) -> Iterator[None]:
    """`transport_error` as a context manager."""
    try:
        yield
    except HTTPX_ERRORS as exc:
        raise transport_error(exc, provider) from exc


def _timeout_phase(exc: httpx.TimeoutException) -> str:
    return {
        httpx.ConnectTimeout: "connecting",
        httpx.ReadTimeout: "reading (no data within the read timeout)",
        httpx.WriteTimeout: "sending",
        httpx.PoolTimeout: "waiting for a connection",
    }.get(type(exc), "the request")
