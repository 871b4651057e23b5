"""The default sender: one send path over httpx, and the one place where httpx's exceptions
become llmrelay errors (body iteration included: `HttpxReply.errors`/`map_error`).

Requests go straight to a transport of our own (the connection pool in `_pool.py`, or the mock
provider's in-process transport) when we built it: httpx.AsyncClient.send adds auth flows,
redirects, cookies and event hooks, none of which an API call uses. A user's `http_client`, and
a client that must honour proxy environment variables, go through `AsyncClient.send` as is.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import AsyncIterator
from functools import lru_cache, partial
from typing import TYPE_CHECKING

import anyio
import httpx

from .. import _constants as C
from .._config import Timeout
from .._exceptions import (
    APIConnectionError,
    APITimeoutError,
    ClientStateError,
    ConfigError,
    LLMError,
)
from .._request import encode_body
from ..stages._base import Call, Reply

if TYPE_CHECKING:
    from .._keymask import KeyMask
    from .._settings import Verify
    from ..providers._base import Provider

logger = logging.getLogger("llmrelay")

# What httpx raises for network trouble; everything else is a bug and propagates as is.
HTTPX_ERRORS = (httpx.TransportError, httpx.StreamError, httpx.DecodingError)


def transport_error(exc: BaseException, provider: str) -> APIConnectionError:
    """The typed llmrelay error for an httpx exception."""
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"{provider}: {_timeout_phase(exc)} timed out", provider=provider)
    detail = str(exc) or type(exc).__name__
    return APIConnectionError(f"{provider}: connection failed: {detail}", provider=provider)


def _timeout_phase(exc: httpx.TimeoutException) -> str:
    return {
        httpx.ConnectTimeout: "connecting",
        httpx.ReadTimeout: "reading (no data within the read timeout)",
        httpx.WriteTimeout: "sending",
        httpx.PoolTimeout: "waiting for a connection",
    }.get(type(exc), "the request")


@lru_cache(maxsize=64)
def httpx_timeout(timeout: Timeout) -> dict[str, float | None]:
    """httpcore's per-phase timeouts for ours (cached: built once per distinct value)."""
    return httpx.Timeout(
        connect=timeout.connect,
        read=timeout.read,
        write=C.DEFAULT_WRITE_TIMEOUT,
        pool=C.DEFAULT_POOL_TIMEOUT,
    ).as_dict()


class HttpxReply(Reply):
    """A reply whose body is (or was) an httpx response."""

    __slots__ = ("_mask", "_provider", "_response")

    errors = HTTPX_ERRORS

    def __init__(
        self,
        response: httpx.Response,
        request_id: str | None,
        provider: str,
        mask: KeyMask,
        content: bytes | None,
        body: AsyncIterator[bytes] | None,
    ) -> None:
        super().__init__(response.status_code, response.headers, request_id, content, body)
        self._response = response
        self._provider = provider
        self._mask = mask

    def map_error(self, exc: BaseException) -> LLMError:
        error = self._mask.error(transport_error(exc, self._provider))
        error.__cause__ = exc
        return error

    async def read(self) -> bytes:
        if self.content is None:
            try:
                self.content = await self._response.aread()
            except HTTPX_ERRORS as exc:
                raise self.map_error(exc) from exc
        return self.content

    async def _close_body(self) -> None:
        # The started body iterator is closed here, in the reading task, not left to the
        # garbage collector (which would close it from another task, or warn).
        # A body being read by another task (aclose() from a "stop" button) is left to that
        # task: closing the response makes its read fail, and its own cleanup closes the rest.
        body = self.body
        if body is not None and not getattr(body, "ag_running", False):
            self.body = None
            close = getattr(body, "aclose", None)
            if close is not None:
                await close()
        await self._response.aclose()


class HttpxSender:
    """Sends a `Call` with httpx and returns the reply: read whole unless it is an open stream
    with a success status (error bodies are always read whole, for the error message)."""

    def __init__(
        self,
        *,
        provider: str,
        request_id_header: str,
        mask: KeyMask,
        http: httpx.AsyncClient,
        transport: httpx.AsyncBaseTransport | None = None,
        owns_http: bool = True,
    ) -> None:
        self._http = http
        self._transport = transport  # requests skip `http.send` when set
        self._owns_http = owns_http
        self._provider = provider
        self._request_id_header = request_id_header
        self._mask = mask  # httpx quotes what it refused to send, key included
        self._closed = False

    def _request(self, call: Call) -> httpx.Request:
        content = call.content
        if content is None and call.json is not None:  # encoded once, for every attempt
            content = call.content = encode_body(call.json, self._provider)
            call.headers["content-type"] = "application/json"
        try:
            request = httpx.Request(
                call.method,
                call.url,
                params=call.params,
                headers=call.headers,
                content=content,
                extensions={"timeout": httpx_timeout(call.timeout)},  # read by httpcore
            )
        except UnicodeEncodeError:
            raise self._header_error(call) from None
        if "@" in call.url and request.url.userinfo:
            _credentials_to_header(request)
        return request

    def _header_error(self, call: Call) -> ConfigError:
        """The error for a header httpx or h11 refused, naming it but never its value (theirs
        quote it whole). The client's own headers were checked when it was made, so the one
        found here came with the call."""
        from ._engines import header_error

        return header_error(self._provider, call)

    async def send(self, call: Call) -> Reply:
        if self._closed:  # e.g. a stream made before aclose(), or a retry after it
            raise ClientStateError("this AsyncClient is closed; create a new one")
        request = self._request(call)
        started = time.perf_counter()
        try:
            if self._transport is not None:
                response = await self._transport.handle_async_request(request)
                response.request = request
            else:
                response = await self._http.send(request, stream=True)
            try:
                content = None
                if response.status_code >= 400 or not call.stream:
                    content = await response.aread()  # closes the response when done
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await response.aclose()
                raise
        except HTTPX_ERRORS as exc:
            if isinstance(exc, httpx.LocalProtocolError) and "header" in str(exc):
                raise self._header_error(call) from None  # h11 refused it: nothing was sent
            error = self._mask.error(transport_error(exc, self._provider))
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug(
                    "%s %s -> %s in %.3fs (attempt %d, no response)",
                    call.method,
                    request.url.path,
                    type(error).__name__,
                    time.perf_counter() - started,
                    call.attempt + 1,
                )
            raise error from exc
        request_id = response.headers.get(self._request_id_header)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s %s -> %d in %.3fs (attempt %d, request id %s)",
                call.method,
                request.url.path,
                response.status_code,
                time.perf_counter() - started,
                call.attempt + 1,
                request_id,
            )
        body = None if content is not None else _body_pieces(response)
        return HttpxReply(response, request_id, self._provider, self._mask, content, body)

    async def aclose(self) -> None:
        """Close the connections this sender opened (a user's `http_client` stays open)."""
        self._closed = True
        if self._owns_http:
            await self._http.aclose()


def build_sender(
    *,
    provider: Provider,
    http_client: httpx.AsyncClient | None,
    proxy: bool,
    max_concurrency: int,
    mask: KeyMask,
    verify: Verify = True,
) -> HttpxSender:
    """The sender for a client: over the user's `http_client` as it is (its own TLS settings
    too); over httpx's own pools when a proxy from the environment applies (`proxy`: httpx
    mounts the proxies itself, and ignores them when given a transport); else over a transport
    of our own (the provider's, e.g. the mock's, or the connection pool), reached without
    `httpx.AsyncClient.send`. Both of ours trust what `verify` names."""
    sender = partial(
        HttpxSender,
        provider=provider.name,
        request_id_header=provider.adapter.request_id_header,
        mask=mask,
    )
    if http_client is not None:
        return sender(http=http_client, owns_http=False)
    if provider.transport_factory is None and proxy:
        return sender(http=_proxied_http_client(max_concurrency, verify))
    transport = default_transport(provider, verify)
    return sender(
        http=httpx.AsyncClient(transport=transport, follow_redirects=False),
        transport=transport,
    )


def default_transport(provider: Provider, verify: Verify = True) -> httpx.AsyncBaseTransport:
    """The provider's own transport (e.g. the mock's), else our connection pool. Certifi's
    context is built on the first https connection; any other is built now, so that a CA
    bundle that cannot be loaded is a `ConfigError` when the client is made."""
    if provider.transport_factory is not None:
        return provider.transport_factory()
    from ._pool import SlotTransport, tls_context

    return SlotTransport(verify=verify if verify is True else tls_context(verify))


def _proxied_http_client(max_concurrency: int, verify: Verify) -> httpx.AsyncClient:
    """httpx's own pools, which mount the env proxies. Like our pool, it never makes a request
    wait for a connection (the concurrency slots bound them). `verify` applies to the TLS
    with the server (through a CONNECT tunnel); an https:// proxy's own certificate is checked
    by httpcore's default context (OpenSSL's default locations, then certifi)."""
    from ._pool import tls_context

    limits = httpx.Limits(
        max_connections=None,
        max_keepalive_connections=max_concurrency,
        keepalive_expiry=C.KEEPALIVE_EXPIRY,
    )
    # httpx builds the proxy transports here: a SOCKS proxy without socksio installed, or an
    # unknown scheme, fails now (its messages hide a password in the URL).
    try:
        return httpx.AsyncClient(
            trust_env=True, verify=tls_context(verify), limits=limits, follow_redirects=False
        )
    except (ImportError, ValueError, httpx.InvalidURL) as exc:
        raise ConfigError(f"the proxy set in the environment cannot be used: {exc}") from exc


def _credentials_to_header(request: httpx.Request) -> None:
    """Move ``user:password@`` out of the URL into basic auth, as `httpx.AsyncClient.send`
    does: so our pool sends them too, and no logger (httpx's logs each URL) ever sees them."""
    url = request.url
    pair = f"{url.username}:{url.password}".encode()
    request.headers["authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
    request.url = url.copy_with(username=None, password=None)


def _body_pieces(response: httpx.Response) -> AsyncIterator[bytes]:
    """The response body as it arrives. An uncompressed body is read straight from the
    transport's stream: httpx's `aiter_bytes()` adds three generator layers per network read
    (raw, decoded, re-chunked), a tenth of a chunk's whole cost."""
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    stream = response.stream
    if encoding in ("", "identity") and isinstance(stream, httpx.AsyncByteStream):
        return stream.__aiter__()
    return response.aiter_bytes()
