"""The pool and its asyncio network layer at their edges (found in review): cancellations that
must not orphan a socket, a pool closed while connecting, write timeouts and TLS shutdowns that
must not wait on the peer, uvloop (stock asyncio loops only get the lean layer). SSL_CERT_FILE: tests/test_tls.py.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
import trustme

from llmrelay.senders._pool import SlotTransport
from test_pool import BOUND, serving, state


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _client_sockets() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
    return count


# -- 1. connections dropped from the books with their socket open ------------------------------


async def test_a_response_closed_in_a_cancelled_scope_does_not_orphan_its_connection() -> None:
    # The caller cancels while handling the last chunk; httpx closes the response at the end
    # of aiter_raw(), inside the cancelled scope.
    async with serving() as server:
        pool = SlotTransport()
        async with httpx.AsyncClient(transport=pool, base_url=server.url, timeout=BOUND) as http:
            for _ in range(3):
                with anyio.CancelScope() as scope:
                    async with http.stream("GET", "/ok") as response:
                        async for _part in response.aiter_raw():
                            scope.cancel()
            assert server.opened == 1
        await server.wait_closed(server.opened)


async def test_a_cancellation_just_after_connecting_does_not_orphan_the_socket() -> None:
    async with serving() as server:
        pool = SlotTransport()
        backend = pool._backend
        connect = backend.connect_tcp
        scope = anyio.CancelScope()

        async def connect_then_cancel(*args: Any, **kwargs: Any) -> Any:
            stream = await connect(*args, **kwargs)
            scope.cancel()  # e.g. the call's deadline fires now
            return stream

        backend.connect_tcp = connect_then_cancel  # type: ignore[method-assign]
        async with httpx.AsyncClient(transport=pool, base_url=server.url, timeout=BOUND) as http:
            with scope:
                await http.get("/ok")
            assert state(pool) == (0, 0)
            await server.wait_closed(1)


async def test_aclose_while_a_connection_is_being_made_closes_it() -> None:
    async with serving() as server:
        pool = SlotTransport()
        backend = pool._backend
        connect = backend.connect_tcp
        release = anyio.Event()

        async def slow_connect(*args: Any, **kwargs: Any) -> Any:
            stream = await connect(*args, **kwargs)
            await release.wait()  # still connecting (e.g. the TLS handshake) when aclose runs
            return stream

        backend.connect_tcp = slow_connect  # type: ignore[method-assign]
        http = httpx.AsyncClient(transport=pool, base_url=server.url, timeout=BOUND)
        async with anyio.create_task_group() as tg:

            async def request() -> None:
                with contextlib.suppress(httpx.HTTPError):
                    await http.get("/ok")

            tg.start_soon(request)
            await anyio.sleep(0.05)
            await http.aclose()
            release.set()
        await server.wait_closed(1)


# -- 2. asyncio transport close(): waits for the peer forever / 30 s on TLS ---------------------


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_write_timeout_closes_the_socket() -> None:
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)  # accepts (backlog) and never reads
        before = _client_sockets()
        timeout = httpx.Timeout(BOUND, write=0.2)
        async with httpx.AsyncClient(transport=SlotTransport(), timeout=timeout) as http:
            with pytest.raises(httpx.WriteTimeout):
                await http.post(
                    f"http://127.0.0.1:{listener.getsockname()[1]}/", content=b"y" * (32 << 20)
                )
            await anyio.sleep(0.1)
            assert _client_sockets() == before


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def stalled_tls_server(ca: trustme.CA) -> Iterator[int]:
    """Completes the TLS handshake, reads one request head, then reads nothing more."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: list[ssl.SSLSocket] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            try:
                tls = context.wrap_socket(conn, server_side=True)
                tls.recv(100)
            except OSError:
                continue
            held.append(tls)

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()
    for conn in held:
        conn.close()


def _trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_aclose_ends_a_tls_request_in_flight_promptly(
    ca: trustme.CA, stalled_tls_server: int
) -> None:
    http = httpx.AsyncClient(transport=SlotTransport(verify=_trusting(ca)), timeout=60)
    ended = anyio.Event()

    async def request() -> None:
        with pytest.raises(httpx.TransportError):
            await http.get(f"https://127.0.0.1:{stalled_tls_server}/")
        ended.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(request)
        await anyio.sleep(0.2)
        await http.aclose()
        with anyio.fail_after(BOUND):
            await ended.wait()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_tls_upload_to_a_stalled_peer_is_a_write_timeout(
    ca: trustme.CA, stalled_tls_server: int
) -> None:
    timeout = httpx.Timeout(BOUND, read=30, write=0.2)
    async with httpx.AsyncClient(
        transport=SlotTransport(verify=_trusting(ca)), timeout=timeout
    ) as http:
        started = time.monotonic()
        with pytest.raises(httpx.WriteTimeout):
            with anyio.fail_after(BOUND):
                await http.post(
                    f"https://127.0.0.1:{stalled_tls_server}/", content=b"y" * (16 << 20)
                )
        assert time.monotonic() - started < BOUND


# -- 3. uvloop ----------------------------------------------------------------------------------


def test_requests_work_on_uvloop() -> None:
    uvloop = pytest.importorskip("uvloop")

    async def main() -> str:
        async with serving() as server, httpx.AsyncClient(transport=SlotTransport()) as http:
            return (await http.get(f"{server.url}/ok")).text

    # happy_eyeballs_delay is asyncio's own: uvloop refuses it, and its transports differ
    assert uvloop.run(main()) == "ok"
