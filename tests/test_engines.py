"""The HTTP engines (`http="httpx" | "aiohttp" | "reqwest"`): how one is chosen, and what a user
sees on each over real sockets: network failures mapped to llmrelay's errors, timeouts,
Retry-After, gzip, keep-alive, the concurrency bound, the sync client, trio. The transport tests
of other modules (test_wire_fixes, test_stream_lifecycle, test_tls, test_proxy, test_secrets) run
on every engine too, through the `engine` fixture.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import struct
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import anyio
import pytest

import llmrelay
from _loopback import HOLD, chat_completion, json_response, loopback, sse
from llmrelay import (
    APIConnectionError,
    APITimeoutError,
    AsyncClient,
    ConfigError,
    RateLimitError,
    RetryPolicy,
    Timeout,
)

KEY = "sk-engine-test-0123456789abcdef"
BOUND = 5.0  # no test here may take this long; a hang fails instead

ENGINE_PARAM = pytest.mark.usefixtures("engine")


def client_at(base_url: str, **kwargs: Any) -> AsyncClient:
    if "retry" not in kwargs:
        kwargs.setdefault("max_retries", 0)
    return AsyncClient(provider="openai", api_key=KEY, base_url=base_url, model="m", **kwargs)


# -- a raw server for the replies the loopback server does not make ----------------------------

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def raw_server(handle: Handler) -> AsyncIterator[str]:
    """A server on 127.0.0.1 that runs `handle` for each connection; yields its base URL. Every
    connection is closed, and every handler finished, when the block ends."""
    tasks: set[asyncio.Task[None]] = set()

    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handle(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.transport.abort()
            tasks.discard(task)

    server = await asyncio.start_server(run, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return await reader.readexactly(length)


def reply(body: bytes, *extra: str, status: str = "200 OK") -> bytes:
    head = [f"HTTP/1.1 {status}", "content-type: application/json", *extra]
    head.append(f"content-length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


COMPLETION = json.dumps(chat_completion("hi")).encode()


# -- choosing an engine ---------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["httpx", "aiohttp", "reqwest"])
def test_an_engine_is_chosen_by_argument_variable_or_profile(
    engine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmrelay._settings import resolve_config, resolve_profile_config

    assert resolve_config("openai", api_key=KEY).http == "httpx"  # the default
    config = resolve_config("openai", api_key=KEY, http=engine)
    assert (config.http, config.sources["http"]) == (engine, "argument")
    monkeypatch.setenv("LLMRELAY_HTTP", engine)
    config = resolve_config("openai", api_key=KEY)
    assert (config.http, config.sources["http"]) == (engine, "environment (LLMRELAY_HTTP)")
    monkeypatch.delenv("LLMRELAY_HTTP")
    (tmp_path / "llmrelay.toml").write_text(f'[profiles.fast]\nhttp = "{engine}"\n')
    config = resolve_profile_config("fast", cwd=tmp_path, environ={"OPENAI_API_KEY": KEY})
    assert (config.http, config.sources["http"]) == (engine, "llmrelay.toml: profiles.fast.http")


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("argument", r"http must be 'httpx' or 'aiohttp' or 'reqwest', got 'curl'"),
        ("variable", r"environment \(LLMRELAY_HTTP\): expected 'httpx' or 'aiohttp' or 'reqwest'"),
    ],
)
def test_an_unknown_engine_is_a_config_error(
    where: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    kwargs: dict[str, Any] = {}
    if where == "argument":
        kwargs["http"] = "curl"
    else:
        monkeypatch.setenv("LLMRELAY_HTTP", "curl")
    with pytest.raises(ConfigError, match=message):
        AsyncClient(provider="openai", api_key=KEY, **kwargs)


@pytest.mark.parametrize(("engine", "module"), [("aiohttp", "aiohttp"), ("reqwest", "pyreqwest")])
def test_an_engine_whose_extra_is_missing_names_it(
    engine: str, module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(sys.modules):
        if name == module or name.startswith(module + ".") or name.endswith(f"_{engine}"):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, module, None)  # as if it were not installed
    with pytest.raises(ConfigError, match=rf'pip install "llmrelay\[{engine}\]"'):
        AsyncClient(provider="openai", api_key=KEY, http=engine)  # type: ignore[arg-type]


async def test_an_engine_and_your_own_http_client_together_are_a_config_error() -> None:
    import httpx

    async with httpx.AsyncClient() as http:
        with pytest.raises(ConfigError, match="cannot send through your http_client"):
            AsyncClient(provider="openai", api_key=KEY, http="reqwest", http_client=http)


def test_importing_llmrelay_imports_no_engine() -> None:
    code = (
        "import sys, llmrelay\n"
        "llmrelay.AsyncClient(provider='openai', api_key='sk-x')\n"
        "print(sorted(m for m in ('aiohttp', 'pyreqwest', 'httpx_aiohttp') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("anyio_backend", ["trio"])
@pytest.mark.parametrize("engine", ["aiohttp", "reqwest"])
async def test_under_trio_an_asyncio_engine_is_a_config_error(
    anyio_backend: str, engine: str
) -> None:
    respond = lambda request: json_response(chat_completion("hi"))  # noqa: E731
    async with loopback(respond) as server, client_at(server.base_url, http=engine) as client:
        with pytest.raises(ConfigError, match=f'http="{engine}" runs on asyncio only'):
            await client.chat("hi")


def test_the_mock_provider_answers_in_process_whatever_the_engine(engine: str) -> None:
    with llmrelay.Client(provider="mock") as client:
        assert client.chat("hi").text == "echo: hi"


# -- what a user sees, on every engine -------------------------------------------------------------


@ENGINE_PARAM
def test_the_sync_client_chats_and_streams() -> None:
    from llmrelay._sync import Client

    chunks = [
        b'data: {"id":"x","choices":[{"index":0,"delta":{"content":"sy"}}]}\n\n',
        b'data: {"id":"x","choices":[{"index":0,"delta":{"content":"nc"},'
        b'"finish_reason":"stop"}]}\n\n',
        b"data: [DONE]\n\n",
    ]

    async def serve() -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while True:
                try:
                    body = json.loads(await read_request(reader))
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                if body.get("stream"):
                    payload = b"".join(chunks)
                    writer.write(
                        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                        b"content-length: %d\r\n\r\n%s" % (len(payload), payload)
                    )
                else:
                    writer.write(reply(COMPLETION))
                await writer.drain()

        async with raw_server(handle) as url:
            urls.put_nowait(url)
            await stop.wait()

    import queue
    import threading

    urls: queue.Queue[str] = queue.Queue()
    stop_loop: list[asyncio.AbstractEventLoop] = []
    stop = asyncio.Event()

    def run() -> None:
        async def main() -> None:
            stop_loop.append(asyncio.get_running_loop())
            await serve()

        asyncio.run(main())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    url = urls.get(timeout=BOUND)
    try:
        with Client(provider="openai", api_key=KEY, base_url=url, model="m") as client:
            assert client.chat("hi").text == "hi"
            assert "".join(chunk.text for chunk in client.stream("hi")) == "sync"
    finally:
        stop_loop[0].call_soon_threadsafe(stop.set)
        thread.join(BOUND)


@ENGINE_PARAM
async def test_a_refused_connection_is_a_connection_error() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with client_at(f"http://127.0.0.1:{port}/v1") as client:
        with pytest.raises(APIConnectionError, match="connection failed") as info:
            await client.chat("hi")
    assert type(info.value) is APIConnectionError
    assert KEY not in str(info.value)


@ENGINE_PARAM
async def test_a_name_that_does_not_resolve_is_a_connection_error() -> None:
    async with client_at("http://llmrelay-no-such-host.invalid/v1") as client:
        with anyio.fail_after(BOUND), pytest.raises(APIConnectionError) as info:
            await client.chat("hi")
    assert type(info.value) is APIConnectionError


async def _reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()  # an RST, not a FIN


async def _bad_status_line(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"HTTP/1.1 abc\r\n\r\n")
    await writer.drain()
    writer.close()


async def _chunked_cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        b'transfer-encoding: chunked\r\n\r\n10\r\n{"id": "chatcmp'
    )
    await writer.drain()
    writer.transport.abort()


@ENGINE_PARAM
@pytest.mark.parametrize(
    "handle", [_reset, _bad_status_line, _chunked_cut], ids=["reset", "status line", "cut"]
)
async def test_a_broken_exchange_is_a_connection_error_retried_then_raised(
    handle: Handler,
) -> None:
    calls = 0

    async def counted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal calls
        calls += 1
        await handle(reader, writer)

    async with raw_server(counted) as url:
        retry = RetryPolicy(max_retries=1, backoff_base=0.0)
        async with client_at(url, retry=retry) as client:
            with anyio.fail_after(BOUND), pytest.raises(APIConnectionError) as info:
                await client.chat("hi")
            assert client.usage.retries == 1
    assert calls == 2
    assert type(info.value) is APIConnectionError
    assert KEY not in str(info.value)


@ENGINE_PARAM
async def test_a_connect_timeout_is_a_timeout_error() -> None:
    # A listener whose backlog is full: the kernel drops further SYNs, so connecting hangs.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = []
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            with suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
            fillers.append(filler)
        try:
            timeout = Timeout(connect=0.2, read=5.0)
            async with client_at(f"http://127.0.0.1:{port}/v1", timeout=timeout) as client:
                with anyio.fail_after(BOUND), pytest.raises(APITimeoutError, match="connecting"):
                    await client.chat("hi")
        finally:
            for filler in fillers:
                filler.close()


@ENGINE_PARAM
async def test_a_silent_server_is_a_read_timeout_for_a_call() -> None:
    # `sse([HOLD])` sends the head, then nothing: the body never comes
    async with (
        loopback(lambda request: sse([HOLD])) as server,
        client_at(server.base_url, timeout=Timeout(read=0.2)) as client,
    ):
        with anyio.fail_after(BOUND), pytest.raises(APITimeoutError, match="reading"):
            await client.chat("hi")


@ENGINE_PARAM
async def test_the_total_timeout_stops_a_call() -> None:
    async with (
        loopback(lambda request: sse([HOLD])) as server,
        client_at(server.base_url, timeout=Timeout(read=5.0, total=0.2)) as client,
    ):
        started = anyio.current_time()
        with anyio.fail_after(BOUND), pytest.raises(APITimeoutError, match="total"):
            await client.chat("hi")
        assert anyio.current_time() - started < 1.0


def answering(*answers: bytes) -> Handler:
    """A connection handler that answers requests with `answers` in turn, one each."""
    left = list(answers)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while left:
            try:
                await read_request(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            writer.write(left.pop(0))
            await writer.drain()

    return handle


def too_many(retry_after: str) -> bytes:
    error = {"error": {"message": f"slow down, {KEY}", "type": "rate"}}
    return reply(
        json.dumps(error).encode(),
        f"retry-after: {retry_after}",
        status="429 Too Many Requests",
    )


@ENGINE_PARAM
async def test_retry_after_is_honoured() -> None:
    async with (
        raw_server(answering(too_many("0.2"), reply(COMPLETION))) as url,
        client_at(url, retry=RetryPolicy(max_retries=1)) as client,
    ):
        started = anyio.current_time()
        assert (await client.chat("hi")).text == "hi"
        assert anyio.current_time() - started >= 0.2
        assert client.usage.retries == 1


@ENGINE_PARAM
async def test_a_key_echoed_by_the_server_never_shows_in_the_error() -> None:
    async with raw_server(answering(too_many("0"))) as url, client_at(url) as client:
        with pytest.raises(RateLimitError) as info:
            await client.chat("hi")
    assert info.value.retry_after == 0
    for shown in (str(info.value), repr(info.value), repr(info.value.body)):
        assert KEY not in shown


@ENGINE_PARAM
@pytest.mark.parametrize("stream", [False, True])
async def test_a_gzip_body_is_decoded(stream: bool) -> None:
    sse_body = (
        b'data: {"id":"x","choices":[{"index":0,"delta":{"content":"zip"},'
        b'"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
    )

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        body = json.loads(await read_request(reader))
        packed = gzip.compress(sse_body if body.get("stream") else COMPLETION)
        kind = "text/event-stream" if body.get("stream") else "application/json"
        writer.write(
            f"HTTP/1.1 200 OK\r\ncontent-type: {kind}\r\ncontent-encoding: gzip\r\n"
            f"content-length: {len(packed)}\r\nconnection: close\r\n\r\n".encode()
            + packed
        )
        await writer.drain()
        writer.close()

    async with raw_server(handle) as url, client_at(url) as client:
        if stream:
            assert (await client.stream("hi").final()).text == "zip"
        else:
            assert (await client.chat("hi")).text == "hi"


@ENGINE_PARAM
async def test_connections_are_kept_alive_and_bounded_by_max_concurrency() -> None:
    respond = lambda request: json_response(chat_completion("ok"))  # noqa: E731 - keep-alive
    async with loopback(respond) as server:
        async with client_at(server.base_url, max_concurrency=3) as client:
            for _ in range(3):  # rounds: the connections are reused between them
                async with anyio.create_task_group() as tg:
                    for _ in range(12):
                        tg.start_soon(client.chat, "hi")
        assert len(server.requests) == 36
        # never more connections than slots (one per request in flight), each one reused
        assert server.opened <= 3


@ENGINE_PARAM
async def test_a_broken_stream_frees_its_slot_and_a_closed_client_refuses() -> None:
    events = [
        b'data: {"id":"x","choices":[{"index":0,"delta":{"content":"a"}}]}\n\n',
        HOLD,
    ]
    async with loopback(lambda request: sse(events)) as server:
        client = client_at(server.base_url, max_concurrency=1)
        async with client:
            for _ in range(3):  # one slot: each break must give it back
                with anyio.fail_after(BOUND):
                    async for chunk in client.stream("hi"):
                        assert chunk.text == "a"
                        break
            with anyio.fail_after(BOUND):
                await server.wait_closed(3)  # each abandoned stream's connection was closed
        with pytest.raises(llmrelay.ClientStateError):
            await client.chat("hi")
