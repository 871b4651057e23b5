"""llmrelay's connection pool (`SlotTransport`) against a real HTTP/1.1 server on 127.0.0.1:
keep-alive and reuse, a response holding its connection until closed, idle expiry on an
injected clock, connections the server closed, errors mapped to httpx's (and, through the
client, to llmrelay's), backpressure both ways, TLS, and `aclose()`.

Every test runs on asyncio (the pool's own network backend) and on trio (httpcore's anyio
backend), and looks at what the server sees.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import httpx
import pytest
import trustme
from anyio.streams.tls import TLSListener

import llmrelay
from llmrelay import _constants as C
from llmrelay.senders._pool import SlotTransport

BOUND = 2.0  # seconds: the longest any step here may take when things work
EXPIRY = C.KEEPALIVE_EXPIRY


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Server:
    """Answers by path: /ok, /big/N (N bytes), /echo (the request body's length), /close
    (with `connection: close`), /bye (answers, then hangs up), /hold (never answers), /cut (half
    a body, then hangs up). Counts connections opened and ended."""

    def __init__(self) -> None:
        self.port = 0
        self.scheme = "http"
        self.opened = 0
        self.closed = 0
        self._changed = anyio.Event()

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    async def wait_closed(self, count: int) -> None:
        with anyio.fail_after(BOUND):
            while self.closed < count:
                await self._changed.wait()

    async def serve(self, stream: anyio.abc.ByteStream) -> None:
        self.opened += 1
        buffer = b""
        try:
            while True:
                while b"\r\n\r\n" not in buffer:
                    buffer += await stream.receive()
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(buffer) < length:
                    buffer += await stream.receive()
                body, buffer = buffer[:length], buffer[length:]
                path = head.split(b" ")[1].decode()
                if not await self._answer(stream, path, body):
                    return
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass
        finally:
            self.closed += 1
            self._changed.set()
            self._changed = anyio.Event()
            await anyio.aclose_forcefully(stream)

    async def _answer(self, stream: anyio.abc.ByteStream, path: str, body: bytes) -> bool:
        """Send one response; False when the connection must end."""
        if path == "/hold":
            while True:  # until the client hangs up (EndOfStream)
                await stream.receive()
        if path == "/cut":
            await stream.send(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n" + b"x" * 50)
            return False
        headers = b""
        content = b"ok"
        if path.startswith("/big/"):
            content = b"x" * int(path.removeprefix("/big/"))
        elif path == "/echo":
            content = str(len(body)).encode()
        elif path == "/close":
            headers = b"connection: close\r\n"
        await stream.send(
            b"HTTP/1.1 200 OK\r\n"
            + headers
            + b"content-length: "
            + str(len(content)).encode()
            + b"\r\n\r\n"
            + content
        )
        return path not in ("/close", "/bye")


@asynccontextmanager
async def serving(tls: ssl.SSLContext | None = None) -> AsyncIterator[Server]:
    server = Server()
    tcp = await anyio.create_tcp_listener(local_host="127.0.0.1")
    server.port = tcp.extra(anyio.abc.SocketAttribute.local_port)
    listener: anyio.abc.Listener[Any] = tcp
    if tls is not None:
        server.scheme = "https"
        listener = TLSListener(tcp, tls, standard_compatible=False)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, server.serve)
        try:
            yield server
        finally:
            tg.cancel_scope.cancel()


@asynccontextmanager
async def pooled(
    server: Server, pool: SlotTransport | None = None
) -> AsyncIterator[tuple[httpx.AsyncClient, SlotTransport]]:
    pool = pool or SlotTransport()
    async with httpx.AsyncClient(transport=pool, base_url=server.url, timeout=BOUND) as http:
        yield http, pool


def state(pool: SlotTransport) -> tuple[int, int]:
    """(connections open, of which idle)."""
    return pool.connections, pool.idle


# -- keep-alive and reuse --------------------------------------------------------------------


async def test_a_connection_is_kept_alive_and_reused() -> None:
    async with serving() as server, pooled(server) as (http, pool):
        for _ in range(3):
            response = await http.get("/ok")
            assert (response.status_code, response.text) == (200, "ok")
        assert state(pool) == (1, 1)
        assert (server.opened, server.closed) == (1, 0)


async def test_a_host_name_is_resolved_and_raced() -> None:
    async with serving() as server, pooled(server) as (http, pool):
        # "localhost" may resolve to ::1 first, where nothing listens: happy eyeballs moves on.
        response = await http.get(f"http://localhost:{server.port}/ok")
        assert response.text == "ok"
        assert state(pool) == (1, 1)


async def test_a_response_holds_its_connection_until_it_is_closed() -> None:
    async with serving() as server, pooled(server) as (http, pool):
        async with http.stream("GET", "/ok") as first:
            assert state(pool) == (1, 0)
            second = await http.get("/ok")  # the first still holds its connection
            assert second.text == "ok"
            assert state(pool) == (2, 1)
            assert await first.aread() == b"ok"
        assert state(pool) == (2, 2)
        assert server.opened == 2


@pytest.mark.parametrize("at_once", [2, 5])
async def test_more_requests_at_once_than_idle_connections_open_more(at_once: int) -> None:
    async with serving() as server, pooled(server) as (http, pool):
        await http.get("/ok")  # one idle connection
        responses = [await http.send(http.build_request("GET", "/ok"), stream=True)]
        for _ in range(at_once - 1):
            responses.append(await http.send(http.build_request("GET", "/ok"), stream=True))
        assert state(pool) == (at_once, 0)
        for response in responses:
            await response.aread()  # read to the end: the connection goes back
            await response.aclose()
        assert state(pool) == (at_once, at_once)
        for _ in range(at_once):  # all kept: sequential calls open nothing new
            await http.get("/ok")
        assert server.opened == at_once


async def test_a_connection_close_reply_is_not_reused() -> None:
    async with serving() as server, pooled(server) as (http, pool):
        assert (await http.get("/close")).text == "ok"
        assert state(pool) == (0, 0)
        assert (await http.get("/ok")).text == "ok"
        assert server.opened == 2


async def test_a_connection_the_server_closed_while_idle_is_replaced() -> None:
    async with serving() as server, pooled(server) as (http, pool):
        assert (await http.get("/bye")).text == "ok"  # kept alive on our side...
        await server.wait_closed(1)  # ...but the server hangs up
        await anyio.sleep(0.02)  # a few loop turns: the client sees the end of its socket
        assert (await http.get("/ok")).text == "ok"
        assert server.opened == 2
        assert state(pool) == (1, 1)


# -- idle expiry, on an injected clock --------------------------------------------------------


@pytest.mark.parametrize(
    ("idle_for", "reused"),
    [(0.0, True), (EXPIRY - 0.5, True), (EXPIRY, False), (EXPIRY + 3600, False)],
)
async def test_an_idle_connection_expires(idle_for: float, reused: bool) -> None:
    now = [1000.0]
    pool = SlotTransport(clock=lambda: now[0])
    async with serving() as server, pooled(server, pool) as (http, _):
        await http.get("/ok")
        now[0] += idle_for
        await http.get("/ok")
        assert server.opened == (1 if reused else 2)
        assert state(pool) == (1, 1)
        if not reused:
            await server.wait_closed(1)  # the expired one was closed, not just dropped


async def test_only_expired_connections_are_closed() -> None:
    now = [1000.0]
    pool = SlotTransport(clock=lambda: now[0])
    async with serving() as server, pooled(server, pool) as (http, _):
        old = await http.send(http.build_request("GET", "/ok"), stream=True)
        await http.get("/ok")  # a second connection, idle since t=1000
        await old.aread()
        now[0] += EXPIRY / 2
        await http.get("/ok")  # reuses the most recent one; both stay
        assert state(pool) == (2, 2)
        now[0] += EXPIRY / 2 + 1  # the other has now been idle longer than EXPIRY
        await http.get("/ok")
        await server.wait_closed(1)
        assert state(pool) == (1, 1)
        assert server.opened == 2


# -- errors ------------------------------------------------------------------------------------


async def _free_port() -> int:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port: int = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()
    return port


async def test_a_refused_connection_is_an_httpx_connect_error() -> None:
    pool = SlotTransport()
    async with httpx.AsyncClient(transport=pool) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(f"http://127.0.0.1:{await _free_port()}/ok")
    assert state(pool) == (0, 0)


async def test_a_refused_connection_is_an_api_connection_error_for_the_client() -> None:
    client = llmrelay.AsyncClient(
        provider="openai",
        api_key="sk-pool",
        base_url=f"http://127.0.0.1:{await _free_port()}/v1",
        model="m",
        max_retries=0,
    )
    async with client:
        with pytest.raises(llmrelay.APIConnectionError, match="connection failed"):
            await client.chat("hi")


Failing = Callable[[httpx.AsyncClient], Awaitable[object]]


async def _read_timeout(http: httpx.AsyncClient) -> object:
    return await http.get("/hold", timeout=httpx.Timeout(BOUND, read=0.05))


async def _cut_body(http: httpx.AsyncClient) -> object:
    return await http.get("/cut")


@pytest.mark.parametrize(
    ("fail", "error"),
    [
        (_read_timeout, httpx.ReadTimeout),
        (_cut_body, httpx.RemoteProtocolError),
    ],
)
async def test_a_failed_exchange_raises_httpx_errors_and_drops_its_connection(
    fail: Failing, error: type[Exception]
) -> None:
    async with serving() as server, pooled(server) as (http, pool):
        await http.get("/ok")
        with pytest.raises(error):
            await fail(http)
        assert state(pool) == (0, 0)
        await server.wait_closed(1)
        assert (await http.get("/ok")).text == "ok"  # a fresh connection
        assert server.opened == 2


async def test_a_cancelled_request_drops_its_connection() -> None:
    async with serving() as server, pooled(server) as (http, pool):
        await http.get("/ok")
        with anyio.move_on_after(0.05) as scope:  # e.g. a total deadline running out
            await http.get("/hold")
        assert scope.cancelled_caught
        assert state(pool) == (0, 0)
        await server.wait_closed(1)
        assert (await http.get("/ok")).text == "ok"


async def test_an_unsupported_scheme_is_refused() -> None:
    async with SlotTransport() as pool:
        with pytest.raises(httpx.UnsupportedProtocol):
            await pool.handle_async_request(httpx.Request("GET", "ftp://127.0.0.1/x"))


# -- backpressure ------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, C.SOCKET_READ_BUFFER + 1, 4 * C.SOCKET_READ_BUFFER])
async def test_a_large_body_read_slowly_arrives_whole(size: int) -> None:
    async with serving() as server, pooled(server) as (http, pool):
        received = 0
        async with http.stream("GET", f"/big/{size}") as response:
            async for chunk in response.aiter_raw():
                received += len(chunk)
                await anyio.sleep(0.001)  # a slow reader: the buffer fills, reading pauses
        assert received == size
        assert (await http.get("/ok")).text == "ok"  # and the connection is still good
        assert (server.opened, state(pool)) == (1, (1, 1))


@pytest.mark.parametrize("size", [0, 10, 8 * 1024 * 1024])
async def test_a_large_request_body_is_sent_whole(size: int) -> None:
    async with serving() as server, pooled(server) as (http, _):
        response = await http.post("/echo", content=b"y" * size)
        assert response.text == str(size)


# -- TLS ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


async def test_https_with_a_trusted_certificate_is_kept_alive(ca: trustme.CA) -> None:
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    async with (
        serving(server_tls(ca)) as server,
        pooled(server, SlotTransport(verify=trusting)) as (
            http,
            pool,
        ),
    ):
        for _ in range(2):
            assert (await http.get("/ok")).text == "ok"
        assert (await http.post("/echo", content=b"z" * 300_000)).text == "300000"
        async with http.stream("GET", f"/big/{4 * C.SOCKET_READ_BUFFER}") as response:
            received = 0
            async for chunk in response.aiter_raw():
                received += len(chunk)
                await anyio.sleep(0.001)
        assert received == 4 * C.SOCKET_READ_BUFFER
        assert server.opened == 1
        assert state(pool) == (1, 1)


@pytest.mark.parametrize(("verify", "works"), [(True, False), (False, True)])
async def test_https_certificate_checking(ca: trustme.CA, verify: bool, works: bool) -> None:
    async with (
        serving(server_tls(ca)) as server,
        pooled(server, SlotTransport(verify=verify)) as (
            http,
            pool,
        ),
    ):
        if works:
            assert (await http.get("/ok")).text == "ok"
        else:  # the throwaway CA is not in the default trust store
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await http.get("/ok")
            assert state(pool) == (0, 0)


# -- closing the pool --------------------------------------------------------------------------


async def test_aclose_closes_idle_and_busy_connections() -> None:
    async with serving() as server:
        pool = SlotTransport()
        http = httpx.AsyncClient(transport=pool, base_url=server.url, timeout=BOUND)
        busy = await http.send(http.build_request("GET", "/big/1000000"), stream=True)
        await http.get("/ok")  # a second connection, now idle
        assert state(pool) == (2, 1)
        await http.aclose()
        assert state(pool) == (0, 0)
        await server.wait_closed(2)
        await busy.aclose()  # closing a response after the pool is harmless
        assert state(pool) == (0, 0)
