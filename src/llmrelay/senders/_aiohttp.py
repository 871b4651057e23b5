"""``http="aiohttp"``: the sender over aiohttp's own client (``pip install "llmrelay[aiohttp]"``).

Why aiohttp directly, not httpx over `httpx-aiohttp` (openai's aiohttp option): measured on the
loopback benchmark server against raw httpx (issue 17), aiohttp used raw costs 0.04× httpx's
CPU per request, the httpx shim over it 0.11×: the shim keeps httpx's request and response
objects and its transport layers, which is most of what a request costs. Streaming is the other
way round (raw 0.56×, shim 0.35× per chunk), so the body is read with `StreamReader.iter_any()`
(one call per network read, no per-line splitting) and the opener's own SSE decoder does the
rest. Measured here (benchmarks/, same run, vs raw httpx): 0.07× CPU per request (raw aiohttp
0.06×), 0.48× CPU per streamed chunk (0.51× with 8 streams at once; raw 0.60×), 0.79× peak RSS
per request held open (raw 0.62×; the difference is llmrelay's own per-call state, the same on
every engine). The table is in docs/guides/engines.md.

How it maps llmrelay's settings:

- One `aiohttp.ClientSession` per client, made on the first request (a session belongs to the
  running loop), with no cookie jar and no connection limit (the client's concurrency slots bound
  the connections); idle connections live `KEEPALIVE_EXPIRY` seconds.
- `Timeout.connect` is aiohttp's ``sock_connect``, `Timeout.read` its ``sock_read`` (the longest
  silence between two reads, as httpx's); `Timeout.total` is the retry stage's deadline, as on
  every engine.
- TLS: the same `ssl.SSLContext` the httpx pool uses (`_pool.tls_context`): certifi, a CA bundle
  (``SSL_CERT_FILE``...), ``"system"``, the user's context or no checks.
- A proxy from the environment (resolved by `_settings.env_proxy`) is passed per request: an
  ``http://`` or ``https://`` proxy, for http and https (CONNECT) targets. aiohttp has no SOCKS
  support: a ``socks5://`` proxy is a `ConfigError` when the client is made.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from functools import lru_cache
from typing import TYPE_CHECKING

import aiohttp
import anyio

from .. import _constants as C
from .._config import Timeout
from .._exceptions import APIConnectionError, APITimeoutError, ClientStateError
from .._request import encode_body
from ..stages._base import Call, Reply
from ._engines import (
    env_proxy_url,
    log_attempt,
    logger,
    move_credentials,
    request_error,
    require_asyncio,
)

if TYPE_CHECKING:
    from .._exceptions import LLMError
    from .._keymask import KeyMask
    from .._settings import ClientConfig

# What aiohttp raises for network trouble; everything else is a bug and propagates as is. Its
# connect and read timeouts are `ClientError`s too. A bare `TimeoutError` is left out on purpose:
# aiohttp raises one only for its own total timeout (never set: the retry stage keeps the
# deadline), and catching it here would take the retry stage's and the stream deadline's own
# `TimeoutError` (anyio's `fail_after`) for a network failure.
AIOHTTP_ERRORS = (aiohttp.ClientError,)


def aiohttp_error(exc: BaseException, provider: str) -> APIConnectionError:
    """The typed llmrelay error for an aiohttp exception."""
    if isinstance(exc, TimeoutError):
        phase = (
            "connecting"
            if isinstance(exc, aiohttp.ConnectionTimeoutError)
            else "reading (no data within the read timeout)"
            if isinstance(exc, aiohttp.ServerTimeoutError)
            else "the request"
        )
        return APITimeoutError(f"{provider}: {phase} timed out", provider=provider)
    if isinstance(exc, aiohttp.ClientResponseError):  # a response aiohttp could not parse
        detail = f"bad response: {exc.message}".partition("\n")[0]
    else:
        detail = str(exc) or type(exc).__name__
    return APIConnectionError(f"{provider}: connection failed: {detail}", provider=provider)


@lru_cache(maxsize=64)
def client_timeout(timeout: Timeout) -> aiohttp.ClientTimeout:
    """aiohttp's timeouts for ours (cached: built once per distinct value)."""
    return aiohttp.ClientTimeout(total=None, sock_connect=timeout.connect, sock_read=timeout.read)


class AiohttpReply(Reply):
    """A reply whose body is (or was) an aiohttp response."""

    __slots__ = ("_mask", "_provider", "_response")

    errors = AIOHTTP_ERRORS

    def __init__(
        self,
        response: aiohttp.ClientResponse,
        request_id: str | None,
        provider: str,
        mask: KeyMask,
        content: bytes | None,
        body: AsyncIterator[bytes] | None,
    ) -> None:
        super().__init__(response.status, response.headers, request_id, content, body)
        self._response = response
        self._provider = provider
        self._mask = mask

    def map_error(self, exc: BaseException) -> LLMError:
        error = self._mask.error(aiohttp_error(exc, self._provider))
        error.__cause__ = exc
        return error

    async def read(self) -> bytes:
        if self.content is None:
            try:
                self.content = await self._response.read()
            except AIOHTTP_ERRORS as exc:
                raise self.map_error(exc) from exc
        return self.content

    async def _close_body(self) -> None:
        # A body read to its end has already given its connection back to the pool (and
        # close() is then a no-op); one left half-read is closed, never reused.
        self.body = None
        self._response.close()


class AiohttpSender:
    """Sends a `Call` with aiohttp: read whole unless it is an open stream with a success status
    (error bodies are always read whole, for the error message)."""

    def __init__(self, config: ClientConfig, mask: KeyMask) -> None:
        from ._pool import tls_context

        self._provider = config.provider.name
        self._request_id_header = config.provider.adapter.request_id_header
        self._mask = mask
        self._keepalive = max(1, config.max_concurrency)
        verify = config.verify
        # Built now, so that a CA bundle that cannot be loaded is a ConfigError at once.
        self._ssl = tls_context(verify) if verify is not True else None
        self._proxy = env_proxy_url(config, "aiohttp", ("http", "https"))
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    def _start(self) -> aiohttp.ClientSession:
        require_asyncio("aiohttp")
        from ._pool import tls_context

        connector = aiohttp.TCPConnector(
            limit=0,  # the concurrency slots bound the connections
            keepalive_timeout=C.KEEPALIVE_EXPIRY,
            ssl=self._ssl if self._ssl is not None else tls_context(True),
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=True,
            trust_env=False,  # the proxy, if any, was resolved with the client's settings
            skip_auto_headers=("User-Agent", "Accept"),
        )
        return self._session

    async def send(self, call: Call) -> Reply:
        if self._closed:  # e.g. a stream made before aclose(), or a retry after it
            raise ClientStateError("this AsyncClient is closed; create a new one")
        session = self._session or self._start()
        if "@" in call.url:
            move_credentials(call)
        content = call.content
        if content is None and call.json is not None:  # encoded once, for every attempt
            content = call.content = encode_body(call.json, self._provider)
            call.headers["content-type"] = "application/json"
        started = time.perf_counter()
        try:
            response = await session.request(
                call.method,
                call.url,
                params=call.params,
                headers=call.headers,
                data=content,
                timeout=client_timeout(call.timeout),
                allow_redirects=False,
                proxy=self._proxy,
            )
            try:
                if response.status >= 400 or not call.stream:
                    content = await response.read()  # gives the connection back when done
                else:
                    content = None
            except BaseException:
                response.close()
                raise
        except AIOHTTP_ERRORS as exc:
            error = self._mask.error(aiohttp_error(exc, self._provider))
            if logger.isEnabledFor(logging.DEBUG):
                log_attempt(call, f"{type(error).__name__}, no response", started)
            raise error from exc
        except (ValueError, UnicodeError) as exc:  # refused before sending: a header, a host
            raise request_error(self._provider, call, exc) from None
        request_id = response.headers.get(self._request_id_header)
        if logger.isEnabledFor(logging.DEBUG):
            log_attempt(call, f"{response.status}, request id {request_id}", started)
        body = None if content is not None else response.content.iter_any()
        return AiohttpReply(response, request_id, self._provider, self._mask, content, body)

    async def aclose(self) -> None:
        """Close every connection this sender opened."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            with anyio.CancelScope(shield=True):
                await session.close()
