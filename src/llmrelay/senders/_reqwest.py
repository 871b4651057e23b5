"""``http="reqwest"``: the sender over pyreqwest's async client (Rust reqwest/hyper on a tokio
runtime; ``pip install "llmrelay[reqwest]"``).

Why pyreqwest's own client, not httpx over pyreqwest's httpx transport: measured on the loopback
benchmark server against raw httpx (issue 17), pyreqwest used raw costs 0.02× httpx's CPU per
request, the httpx shim 0.11× (httpx's request/response objects and transport layers cost more
than the whole request in Rust). A stream's body is read with `read_chunk()` (what arrived, one
call per network read) and decoded by the opener's own SSE decoder. Measured here (benchmarks/,
same run, vs raw httpx): 0.12× CPU per request (raw pyreqwest 0.07–0.10×), 1.2× CPU per
streamed chunk (raw pyreqwest with the read-ahead off, as here, 1.2×; with its 64 KiB default
0.4×, see below), 2.2× peak RSS per request held open (raw 2.0×). The table is in docs/guides/engines.md.

How it maps llmrelay's settings:

- reqwest sets connect and read timeouts per client, not per request: one pyreqwest client per
  distinct (`Timeout.connect`, `Timeout.read`) pair a call asks for (nearly always one). `read`
  is the longest silence between two reads, as httpx's; `Timeout.total` is the retry stage's
  deadline, as on every engine (cancelling the awaiting task drops the Rust future).
- Connections: no limit (the concurrency slots bound them), idle ones kept `KEEPALIVE_EXPIRY`
  seconds, HTTP/1.1, no redirects, no cookies, gzip/deflate/brotli/zstd decoded.
- TLS is rustls with the platform verifier: ``verify=True`` and ``"system"`` trust the OS store
  (not certifi's bundle); a CA bundle (``verify=path``, ``SSL_CERT_FILE``, ``SSL_CERT_DIR``) is
  trusted in addition to it; ``False`` checks nothing. An `ssl.SSLContext` cannot configure
  rustls: it is a `ConfigError` when the client is made.
- A proxy from the environment (resolved by `_settings.env_proxy`; reqwest's own reading of
  the environment is turned off) is passed as is: http, https and socks5 proxies all work.
- The tokio thread wakes a task through a Python call; `aclose()` and an `atexit` hook wait
  until it has left it, so that the interpreter never starts exiting under it (an abort on
  CPython before 3.14; see `_reqwest_exit`).
- A streamed request is built with ``streamed_read_buffer_limit(0)``. pyreqwest's default (64 KiB)
  is a read-ahead: entering the response waits until that many body bytes arrived or the body
  ended, so the first event of a slow stream would wait for the whole reply (and a server that
  holds the connection after ``[DONE]`` would hang it); it is also 64 KiB held per stream. With 0
  the response is handed over with its headers and each `read_chunk()` returns what arrived.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import anyio
from pyreqwest.client import Client, ClientBuilder
from pyreqwest.exceptions import (
    BuilderError,
    ConnectTimeoutError,
    PoolTimeoutError,
    PyreqwestError,
    ReadTimeoutError,
    RequestTimeoutError,
    WriteTimeoutError,
)
from pyreqwest.proxy import ProxyBuilder

from .. import _constants as C
from .._exceptions import APIConnectionError, APITimeoutError, ClientStateError, ConfigError
from .._request import encode_body
from ..stages._base import Call, Reply
from ._engines import (
    env_proxy_url,
    header_error,
    log_attempt,
    logger,
    move_credentials,
    require_asyncio,
)
from ._reqwest_exit import asettle, hook_exit

if TYPE_CHECKING:
    from pyreqwest.http import HeaderMap
    from pyreqwest.request import StreamRequest
    from pyreqwest.response import Response, ResponseBodyReader

    from .._exceptions import LLMError
    from .._keymask import KeyMask
    from .._settings import ClientConfig, Verify


class BodyClosed(Exception):
    """A stream's body was closed by another task while this one was reading it."""


REQWEST_ERRORS = (PyreqwestError, BodyClosed)
PROXY_SCHEMES = ("http", "https", "socks4", "socks4a", "socks5", "socks5h")

_PHASES: tuple[tuple[type[Exception], str], ...] = (
    (ConnectTimeoutError, "connecting"),
    (ReadTimeoutError, "reading (no data within the read timeout)"),
    (WriteTimeoutError, "sending"),
    (PoolTimeoutError, "waiting for a connection"),
)


def reqwest_error(exc: BaseException, provider: str) -> APIConnectionError:
    """The typed llmrelay error for a pyreqwest exception."""
    if isinstance(exc, RequestTimeoutError):
        phase = next((name for cls, name in _PHASES if isinstance(exc, cls)), "the request")
        return APITimeoutError(f"{provider}: {phase} timed out", provider=provider)
    return APIConnectionError(f"{provider}: connection failed: {_describe(exc)}", provider=provider)


def _describe(exc: BaseException) -> str:
    """pyreqwest's message and its causes, innermost last, without the request's URL."""
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    details = getattr(exc, "details", None)
    causes = details.get("causes") if isinstance(details, dict) else None
    parts = [message]
    for cause in causes or ():
        text = cause.get("message", "") if isinstance(cause, dict) else ""
        if text and "for url (" not in text and text not in parts:
            parts.append(text)
    return ": ".join(parts)


class ReqwestReply(Reply):
    """A reply whose body is (or was) a pyreqwest response."""

    __slots__ = ("_closing", "_mask", "_provider", "_reader", "_request", "_response")

    errors = REQWEST_ERRORS

    def __init__(
        self,
        response: Response,
        headers: HeaderMap,
        request: StreamRequest | None,
        request_id: str | None,
        provider: str,
        mask: KeyMask,
        content: bytes | None,
        body: AsyncIterator[bytes] | None,
    ) -> None:
        # `response.headers` builds a new Python view of the map on each access: read once.
        super().__init__(response.status, headers, request_id, content, body)
        self._response = response
        self._request = request  # an open streamed request, closed by _close_body
        self._provider = provider
        self._mask = mask
        self._reader: asyncio.Task[Any] | None = None  # the task reading the body right now
        self._closing = False

    def map_error(self, exc: BaseException) -> LLMError:
        error = self._mask.error(reqwest_error(exc, self._provider))
        error.__cause__ = exc
        return error

    async def read(self) -> bytes:
        if self.content is None:
            try:
                self.content = (await self._response.bytes()).to_bytes()
            except asyncio.CancelledError:
                await _recancel()
                raise
            except REQWEST_ERRORS as exc:
                raise self.map_error(exc) from exc
        return self.content

    async def _close_body(self) -> None:
        # The started body generator is closed here, in the reading task (see HttpxReply).
        body = self.body
        if body is not None and getattr(body, "ag_running", False):
            # Another task is reading (aclose() from a "stop" button). pyreqwest's close waits
            # for a pending read, which may never end: that read is interrupted instead, it
            # fails with `BodyClosed`, and the reading task's own cleanup closes the rest.
            self._closing = True
            reader = self._reader
            if reader is not None and reader is not asyncio.current_task():
                reader.cancel()
            return
        if body is not None:
            self.body = None
            close = getattr(body, "aclose", None)
            if close is not None:
                await close()
        request, self._request = self._request, None
        if request is not None:
            await request.__aexit__(None, None, None)

    async def pieces(self, reader: ResponseBodyReader) -> AsyncIterator[bytes]:
        """The streamed body as it arrives, one piece per network read."""
        read = reader.read_chunk
        while True:
            self._reader = task = asyncio.current_task()
            try:
                piece = await read()
            except asyncio.CancelledError:
                if self._closing and task is not None:  # the interruption _close_body made
                    task.uncancel()
                    request, self._request = self._request, None
                    if request is not None:  # no read pending now: closing cannot wait
                        with anyio.CancelScope(shield=True):
                            await request.__aexit__(None, None, None)
                    raise BodyClosed("the stream was closed") from None
                await _recancel()
                raise
            finally:
                self._reader = None
            if piece is None:
                return
            yield piece.to_bytes()


async def _recancel() -> None:
    """pyreqwest answers a cancelled await with a CancelledError of its own ("Read was
    cancelled"), which drops the message anyio's cancel scopes recognise theirs by: raised as
    is, `move_on_after`/`fail_after` (the drain after [DONE], a total deadline) would not stop
    it. One checkpoint lets a cancelling anyio scope deliver its own CancelledError (it keeps
    retrying while the task is inside the scope); a plain `Task.cancel()` has nothing more to
    deliver, and the caller re-raises pyreqwest's."""
    await asyncio.sleep(0)


class ReqwestSender:
    """Sends a `Call` with pyreqwest: read whole unless it is an open stream with a success
    status (error bodies are always read whole, for the error message)."""

    def __init__(self, config: ClientConfig, mask: KeyMask) -> None:
        self._provider = config.provider.name
        self._request_id_header = config.provider.adapter.request_id_header
        self._mask = mask
        self._idle = max(1, config.max_concurrency)
        self._roots = _roots(config.verify)  # read now: a bad bundle fails when the client is made
        self._verify = config.verify
        self._proxy = env_proxy_url(config, "reqwest", PROXY_SCHEMES)
        self._clients: dict[tuple[float | None, float | None], Client] = {}
        # Built now (it needs no loop): a proxy URL reqwest cannot use fails here.
        timeout = config.timeout
        self._build((timeout.connect, timeout.read))
        self._closed = False
        self._checked = False
        hook_exit()  # a client never closed: the last wake-up is waited for at exit

    def _build(self, key: tuple[float | None, float | None]) -> Client:
        builder = (
            ClientBuilder()
            .follow_redirects(False)
            .max_connections(None)
            .pool_idle_timeout(timedelta(seconds=C.KEEPALIVE_EXPIRY))
            .pool_max_idle_per_host(self._idle)
            .http1_lower_case_headers()
        )
        connect, read = key
        if connect is not None:
            builder = builder.connect_timeout(timedelta(seconds=connect))
        if read is not None:
            builder = builder.read_timeout(timedelta(seconds=read))
        if self._verify is False:
            builder = builder.danger_accept_invalid_certs(True)
        for pem in self._roots:
            builder = builder.add_root_certificate_pem(pem)
        if self._proxy:
            try:
                builder = builder.proxy(ProxyBuilder.all(self._proxy))
            except (BuilderError, ValueError) as exc:
                raise ConfigError(
                    f"the proxy set in the environment cannot be used: {_describe(exc)}"
                ) from None
        else:
            builder = builder.no_proxy()
        client = self._clients[key] = builder.build()
        return client

    async def send(self, call: Call) -> Reply:
        if self._closed:  # e.g. a stream made before aclose(), or a retry after it
            raise ClientStateError("this AsyncClient is closed; create a new one")
        if not self._checked:
            require_asyncio("reqwest")
            self._checked = True
        timeout = call.timeout
        key = (timeout.connect, timeout.read)
        client = self._clients.get(key) or self._build(key)
        if "@" in call.url:
            move_credentials(call)
        content = call.content
        if content is None and call.json is not None:  # encoded once, for every attempt
            content = call.content = encode_body(call.json, self._provider)
            call.headers["content-type"] = "application/json"
        started = time.perf_counter()
        stream: StreamRequest | None = None
        try:
            builder = client.request(call.method, call.url).headers(call.headers)
            if call.params:
                builder = builder.query(dict(call.params))
            if content is not None:
                # A str is copied into Rust; `body_bytes` would keep our bytes object as a
                # buffer, which the tokio thread releases (taking the interpreter lock) whenever
                # hyper drops the body, possibly while the interpreter exits. The body is JSON,
                # so UTF-8, and the copy is small. (The other way the tokio thread enters Python,
                # waking a task, is waited for at close and exit: _reqwest_exit.py.)
                builder = builder.body_text(content.decode())
            if call.stream:
                builder = builder.streamed_read_buffer_limit(C.REQWEST_READ_AHEAD)
                stream = builder.build_streamed()
                response = await stream.__aenter__()
                if response.status >= 400:
                    request, stream = stream, None
                    try:
                        content = (await response.bytes()).to_bytes()
                    finally:
                        with anyio.CancelScope(shield=True):
                            await request.__aexit__(None, None, None)
                else:
                    content = None
            else:
                response = await builder.build().send()
                content = (await response.bytes()).to_bytes()
        except asyncio.CancelledError:
            await _recancel()
            raise
        except BuilderError:  # a header reqwest refused: nothing was sent
            raise header_error(self._provider, call) from None
        except REQWEST_ERRORS as exc:
            error = self._mask.error(reqwest_error(exc, self._provider))
            if logger.isEnabledFor(logging.DEBUG):
                log_attempt(call, f"{type(error).__name__}, no response", started)
            raise error from exc
        headers = response.headers
        request_id = headers.get(self._request_id_header)
        if logger.isEnabledFor(logging.DEBUG):
            log_attempt(call, f"{response.status}, request id {request_id}", started)
        reply = ReqwestReply(
            response, headers, stream, request_id, self._provider, self._mask, content, None
        )
        if content is None:
            reply.body = reply.pieces(response.body_reader)
        return reply

    async def aclose(self) -> None:
        """Close every connection this sender opened."""
        self._closed = True
        clients, self._clients = list(self._clients.values()), {}
        with anyio.CancelScope(shield=True):
            for client in clients:
                await client.close()
            # The tokio thread may still be inside the call that woke this task (the close's,
            # or a last read's): returning now could let the program exit under it.
            await asettle()


def _roots(verify: Verify) -> list[bytes]:
    """The PEM certificates to trust besides the OS store (a CA bundle's), checked now."""
    from .._settings import CABundle

    if isinstance(verify, ssl.SSLContext):
        raise ConfigError(
            'http="reqwest" cannot use an ssl.SSLContext (reqwest uses rustls): pass the path '
            "of a CA bundle as verify=, or use the default engine, httpx"
        )
    if not isinstance(verify, CABundle):
        return []
    paths = [verify.path]
    if verify.directory:
        paths = sorted(entry.path for entry in os.scandir(verify.path) if entry.is_file())
    pems: list[bytes] = []
    for path in paths:
        try:
            with open(path, "rb") as file:
                data = file.read()
        except OSError as exc:
            raise ConfigError(
                f"{verify.source}: cannot load CA certificates from {path}: {exc}"
            ) from None
        pems += [_pem(block) for block in data.split(b"-----END CERTIFICATE-----")[:-1]]
    if not pems and not verify.directory:
        raise ConfigError(
            f"{verify.source}: cannot load CA certificates from {verify.path}: "
            "no PEM certificate in it"
        )
    return pems


def _pem(block: bytes) -> bytes:
    start = block.find(b"-----BEGIN CERTIFICATE-----")
    return block[max(start, 0) :] + b"-----END CERTIFICATE-----\n"
