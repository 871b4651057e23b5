"""The mock's network face: an ASGI app over `MockEngine`, and `serve()` to run it on loopback.

The app only translates. It hands the engine the method, path, query, lower-cased headers and
body, then plays the answer back: `stall_before` is a pause before the status line, `Data` a
body chunk, `Sleep` a pause, `Reset` drops the connection mid-body (the client sees an
incomplete response: a connection error). Pauses end early when the client hangs up, so a
timed-out client does not keep the server busy.

`serve()` runs the app under uvicorn in a background thread, for tests of code that talks to
an LLM over real HTTP::

    with llmrelay.mock.serve(fault_rate=0.1, seed=7) as url:
        client = llmrelay.AsyncClient(provider="openai", base_url=url + "/v1", api_key="x")
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import anyio

from ._engine import MockEngine
from ._types import Data, Sleep

if TYPE_CHECKING:
    import uvicorn

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

DEFAULT_HOST = "127.0.0.1"
STARTUP_TIMEOUT = 10.0
SHUTDOWN_TIMEOUT = 5.0
_GRACEFUL_SHUTDOWN = 1  # seconds uvicorn lets open requests finish before cancelling them


class MockConnectionReset(Exception):
    """Raised inside the app to make the server drop the connection (a `Reset` step)."""


class MockASGIApp:
    """An ASGI 3 application answering every HTTP request from a `MockEngine`.

    Mount it in any ASGI server (uvicorn, hypercorn...), or use `serve()`. Example::

        app = MockASGIApp(MockEngine(seed=7, fault_rate=0.1))
        uvicorn.run(app, port=8000)
    """

    def __init__(self, engine: MockEngine | None = None) -> None:
        self.engine = engine if engine is not None else MockEngine()

    def __repr__(self) -> str:
        return f"MockASGIApp({self.engine!r})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await _lifespan(receive, send)
            return
        if kind != "http":  # websockets: refuse
            await send({"type": "websocket.close", "code": 1003})
            return
        body = await _read_body(receive)
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), True))
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope.get("headers", ())
        }
        answer = self.engine.handle(scope["method"], scope["path"], query, headers, body)
        client = _Client(receive)
        if await client.pause(answer.stall_before):
            return
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers],
            }
        )
        if answer.steps is None:
            await send({"type": "http.response.body", "body": answer.body, "more_body": False})
            return
        for step in answer.steps:
            if isinstance(step, Data):
                await send({"type": "http.response.body", "body": step.data, "more_body": True})
            elif isinstance(step, Sleep):
                if await client.pause(step.seconds):
                    return
            else:
                raise MockConnectionReset("mock fault: connection reset")
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class _Client:
    """Watches for the client hanging up while the app pauses."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self.gone = False

    async def pause(self, seconds: float) -> bool:
        """Wait `seconds`; return True (at once) if the client disconnected meanwhile."""
        if self.gone:
            return True
        if seconds <= 0:
            return False
        with anyio.move_on_after(seconds):
            while True:  # the body was read already: the next message is the disconnect
                message = await self._receive()
                if message["type"] == "http.disconnect":
                    self.gone = True
                    return True
        return False


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


class _QuietResets(logging.Filter):
    """Drops uvicorn's error record for a deliberate `MockConnectionReset` (it is not a bug)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, MockConnectionReset)


def quiet_reset_logs() -> None:
    """Keep uvicorn from logging a traceback for every injected connection reset."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietResets) for f in logger.filters):
        logger.addFilter(_QuietResets())


def bind_socket(host: str = DEFAULT_HOST, port: int = 0) -> socket.socket:
    """A listening TCP socket on (host, port); port 0 picks a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named explicitly: asyncio turns Nagle off (TCP_NODELAY) only on sockets whose
    # proto says TCP, and with Nagle on, every response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
    except OSError:
        sock.close()
        raise
    return sock


def socket_url(sock: socket.socket) -> str:
    """``http://host:port`` of a bound socket."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def make_server(
    app: MockASGIApp,
    *,
    log_level: str = "warning",
    access_log: bool = False,
    log_config: Any = None,
) -> uvicorn.Server:
    """A uvicorn server for `app` (h11, asyncio, no lifespan); call `.run(sockets=[...])`."""
    try:
        import uvicorn
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            'the mock HTTP server needs uvicorn: pip install "llmrelay[cli]"'
        ) from None
    config = uvicorn.Config(
        app,
        http="h11",
        loop="asyncio",
        lifespan="off",
        log_level=log_level,
        log_config=log_config,
        access_log=access_log,
        timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN,
    )
    quiet_reset_logs()
    return uvicorn.Server(config)


@contextmanager
def serve(
    engine: MockEngine | None = None,
    *,
    host: str = DEFAULT_HOST,
    port: int = 0,
    seed: int | None = None,
    fault_rate: float | None = None,
    faults: Sequence[str] | None = None,
    chunk_delay: float | None = None,
    chunks: int | None = None,
) -> Iterator[str]:
    """Run the mock server on `host`:`port` (0: a free port) in a background thread and yield
    its base URL, e.g. ``"http://127.0.0.1:54321"`` (OpenAI clients use ``url + "/v1"``).

    Give an `engine`, or the engine options (`seed`, `fault_rate`, `faults`, `chunk_delay`,
    `chunks`, as for `MockEngine`). The server stops when the block exits::

        with llmrelay.mock.serve(fault_rate=0.2, seed=7) as url:
            async with llmrelay.AsyncClient(
                provider="openai", base_url=f"{url}/v1", api_key="unused"
            ) as client:
                print((await client.chat("hi", model="mock-echo")).text)   # "echo: hi"
    """
    options: dict[str, Any] = {
        "seed": seed,
        "fault_rate": fault_rate,
        "faults": faults,
        "chunk_delay": chunk_delay,
        "chunks": chunks,
    }
    given = {name: value for name, value in options.items() if value is not None}
    if engine is not None and given:
        raise TypeError(f"give either engine= or engine options ({', '.join(given)}), not both")
    if engine is None:
        engine = MockEngine(**given)
    server = make_server(MockASGIApp(engine))
    sock = bind_socket(host, port)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # surfaced in the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=run, name="llmrelay-mock-server", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                detail = f": {errors[0]!r}" if errors else ""
                raise RuntimeError(f"the mock server did not start{detail}")
            time.sleep(0.005)
        yield socket_url(sock)
    finally:
        server.should_exit = True
        thread.join(SHUTDOWN_TIMEOUT)
        sock.close()
