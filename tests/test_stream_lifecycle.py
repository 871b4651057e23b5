"""A stream's life: it closes its response and frees its concurrency slot however it ends
(finished, failed, broken out of, cancelled, left by `async with`), its timeouts hold between
chunks and over the whole stream, and it is retried only before its first chunk.

The connection tests use a real HTTP/1.1 server on 127.0.0.1 (`_loopback.py`, on anyio's TCP
listener) and the client's own connection pool, and look at what the server sees; the fault
tests use the embedded mock provider's `x-mock-fault` header.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import anyio
import httpx
import pytest

import llmrelay
from _loopback import (
    CUT,
    HOLD,
    LoopbackServer,
    Request,
    Response,
    Step,
    chat_completion,
    json_response,
    sse,
    sse_events,
)
from _loopback import loopback as serve_loopback
from llmrelay import (
    APIConnectionError,
    APITimeoutError,
    AsyncClient,
    InternalServerError,
    RetryPolicy,
    StreamChunk,
    StreamError,
    Timeout,
)
from llmrelay.senders._pool import SlotTransport

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("engine")]

PROMPT = "one two three four five six"  # the mock echoes it: "echo: one two three ..."
BOUND = 2.0  # seconds: the longest any step here may take when things work


def events(name: str) -> list[bytes]:
    return sse_events(f"openai/{name}")


TEXT = events("text")  # role, 4 text deltas, finish, usage, [DONE]
TEXT_REPLY = "Héllo 👋 there! How can I help?"

Script = Callable[[dict[str, Any]], list[Step]]


def slow(steps: list[bytes], gap: float = 0.005) -> list[Step]:
    out: list[Step] = []
    for piece in steps:
        out += [piece, gap]
    return out


def loopback(script: Script) -> AbstractAsyncContextManager[LoopbackServer]:
    """The loopback server: streamed requests get `script(body)` as their event stream, other
    requests a JSON chat completion."""

    def respond(request: Request) -> Response:
        body = request.json
        if not body.get("stream"):
            return json_response(chat_completion(TEXT_REPLY))
        return sse(script(body))

    return serve_loopback(respond)


def loop_client(server: LoopbackServer, **kwargs: Any) -> AsyncClient:
    """The client with its own connection pool (no `http_client`), one slot, no retries."""
    kwargs.setdefault("max_concurrency", 1)
    kwargs.setdefault("max_retries", 0)
    return AsyncClient(
        provider="openai", api_key="sk-loop", base_url=server.base_url, model="m", **kwargs
    )


async def assert_slot_is_free(client: AsyncClient) -> None:
    """With max_concurrency=1, a call completes only if the stream gave its slot back."""
    with anyio.fail_after(BOUND):
        reply = await client.chat("next")
    assert reply.text == TEXT_REPLY


# -- closing: the connection and the slot ----------------------------------------------------


async def test_a_finished_stream_keeps_its_connection_for_the_next_call() -> None:
    async with loopback(lambda body: TEXT) as server, loop_client(server) as client:
        async with client.stream("hi") as stream:
            assert "".join([c.text async for c in stream]) == TEXT_REPLY
        await assert_slot_is_free(client)
        assert (server.opened, server.closed) == (1, 0)  # one kept-alive connection, reused
    with anyio.fail_after(BOUND):
        await server.wait_closed(1)  # closing the client closes it


async def test_breaking_out_inside_async_with_closes_the_connection_and_frees_the_slot() -> None:
    script = lambda body: [*slow(TEXT[:3]), HOLD]  # noqa: E731
    async with loopback(script) as server, loop_client(server) as client:
        received: list[StreamChunk] = []
        async with client.stream("hi") as stream:
            async for chunk in stream:
                received.append(chunk)
                if len(received) == 2:
                    break
        with anyio.fail_after(BOUND):
            await server.wait_closed(1)  # the server saw the client hang up
        assert stream.text == "Héllo"
        await assert_slot_is_free(client)
        assert server.opened == 2  # the cut connection was not reused


async def test_breaking_out_without_async_with_closes_at_once_with_no_gc_pass() -> None:
    script = lambda body: [*slow(TEXT[:3]), HOLD]  # noqa: E731
    async with loopback(script) as server, loop_client(server) as client:
        gc.disable()  # prove it: the stream must not wait for the cycle collector
        try:
            count = 0
            async for _chunk in client.stream("hi"):
                count += 1
                if count == 2:
                    break
            with anyio.fail_after(BOUND):
                await server.wait_closed(1)
        finally:
            gc.enable()
        await assert_slot_is_free(client)


async def test_a_stream_kept_in_a_variable_can_be_read_on_after_a_break() -> None:
    script = lambda body: slow(TEXT)  # noqa: E731
    async with loopback(script) as server, loop_client(server) as client:
        stream = client.stream("hi")
        assert repr(stream) == "<ChatStream openai model='m' not started>"
        async for chunk in stream:
            if chunk.text:
                break
        assert repr(stream) == "<ChatStream openai model='m' open>"
        rest = [chunk.text async for chunk in stream]  # the same response, read on
        assert stream.text == "Héllo" + "".join(rest) == TEXT_REPLY
        assert (await stream.final()).text == TEXT_REPLY
        await stream.aclose()
        assert repr(stream) == "<ChatStream openai model='m' closed>"
        assert len(server.requests) == 1


async def test_leaving_async_with_by_an_exception_closes_and_keeps_the_exception() -> None:
    script = lambda body: [*slow(TEXT[:3]), HOLD]  # noqa: E731
    async with loopback(script) as server, loop_client(server) as client:
        with pytest.raises(KeyError):
            async with client.stream("hi") as stream:
                async for _ in stream:
                    raise KeyError("the caller's own error")
        with anyio.fail_after(BOUND):
            await server.wait_closed(1)
        await assert_slot_is_free(client)


async def test_cancelling_the_reading_task_closes_the_connection_and_frees_the_slot() -> None:
    script = lambda body: [*slow(TEXT[:3]), HOLD]  # noqa: E731
    async with loopback(script) as server, loop_client(server) as client:
        got_two = anyio.Event()

        async def reader() -> None:
            count = 0
            async for _ in client.stream("hi"):
                count += 1
                if count == 2:
                    got_two.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(reader)
            with anyio.fail_after(BOUND):
                await got_two.wait()
            tg.cancel_scope.cancel()  # the reader is waiting for a chunk that never comes
        with anyio.fail_after(BOUND):
            await server.wait_closed(1)
        await assert_slot_is_free(client)


async def test_a_timeout_around_the_loop_closes_the_stream() -> None:
    script = lambda body: [*slow(TEXT[:3]), HOLD]  # noqa: E731
    async with loopback(script) as server, loop_client(server) as client:
        with anyio.move_on_after(0.1):
            async with client.stream("hi") as stream:
                async for _ in stream:
                    pass
        assert stream.text == "Héllo 👋 there"
        with anyio.fail_after(BOUND):
            await server.wait_closed(1)
        await assert_slot_is_free(client)


async def test_aclose_from_another_task_ends_the_readers_loop_quietly() -> None:
    script = lambda body: [*slow(TEXT[:3]), HOLD]  # noqa: E731
    async with loopback(script) as server, loop_client(server) as client:
        stream = client.stream("hi")
        texts: list[str] = []
        two_texts = anyio.Event()

        async def reader() -> None:
            async for chunk in stream:
                texts.append(chunk.text)
                if len(texts) == 3:  # role, "Héllo", " 👋 there"; then the server holds
                    two_texts.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(reader)
            with anyio.fail_after(BOUND):
                await two_texts.wait()
            await stream.aclose()  # e.g. a "stop" button
        with anyio.fail_after(BOUND):
            await server.wait_closed(1)
        with pytest.raises(StreamError, match="closed"):
            await stream.final()
        await assert_slot_is_free(client)


async def test_the_pool_has_nothing_left_open_after_an_abandoned_stream() -> None:
    script = lambda body: [*slow(TEXT[:3]), HOLD]  # noqa: E731
    transport = SlotTransport()
    async with (
        loopback(script) as server,
        httpx.AsyncClient(transport=transport) as http,
        loop_client(server, http_client=http) as client,
    ):
        async with client.stream("hi") as stream:
            async for _ in stream:
                break
        # The connection was closed (it was mid-body), not put back for reuse.
        assert (transport.connections, transport.idle) == (0, 0)
        with anyio.fail_after(BOUND):
            await server.wait_closed(1)
        await assert_slot_is_free(client)
        assert (transport.connections, transport.idle) == (1, 1)  # reconnected, then kept
        assert server.opened == 2


# -- failures on a real connection -----------------------------------------------------------


async def test_a_connection_cut_mid_stream_is_a_stream_error_and_frees_the_slot() -> None:
    script = lambda body: [*TEXT[:3], CUT]  # noqa: E731
    async with loopback(script) as server, loop_client(server) as client:
        with pytest.raises(StreamError) as info:
            async for _ in client.stream("hi"):
                pass
        assert isinstance(info.value.__cause__, APIConnectionError)
        assert info.value.partial == "Héllo 👋 there" and info.value.retryable
        await assert_slot_is_free(client)
        assert len(server.requests) == 2  # not retried: chunks had been delivered


async def test_the_read_timeout_applies_between_chunks_on_a_real_socket() -> None:
    script = lambda body: [*slow(TEXT[:3]), HOLD]  # noqa: E731
    async with loopback(script) as server, loop_client(server, timeout=Timeout(read=0.1)) as client:
        with anyio.fail_after(BOUND), pytest.raises(StreamError) as info:
            async for _ in client.stream("hi"):
                pass
        assert type(info.value.__cause__) is APITimeoutError
        assert "read" in str(info.value.__cause__)
        assert info.value.partial == "Héllo 👋 there" and info.value.retryable
        await assert_slot_is_free(client)


async def test_slow_chunks_within_the_read_timeout_are_fine() -> None:
    script = lambda body: slow(TEXT, gap=0.02)  # noqa: E731
    async with loopback(script) as server, loop_client(server, timeout=Timeout(read=0.1)) as client:
        final = await client.stream("hi").final()
        assert final.text == TEXT_REPLY and final.usage is not None
        assert len(server.requests) == 1


async def test_the_total_timeout_covers_the_whole_stream_on_a_real_socket() -> None:
    # Every gap is well inside the read timeout; only the total deadline can stop it. The text
    # deltas repeat with no finish and no [DONE] (which would end the stream at once).
    script = lambda body: slow(TEXT[:5] * 20, gap=0.02)  # noqa: E731
    timeout = Timeout(read=1.0, total=0.15)
    async with loopback(script) as server, loop_client(server, timeout=timeout) as client:
        started = anyio.current_time()
        with anyio.fail_after(BOUND), pytest.raises(StreamError) as info:
            async for _ in client.stream("hi"):
                pass
        assert anyio.current_time() - started < 0.15 + 0.25
        assert type(info.value.__cause__) is APITimeoutError
        assert "total" in str(info.value.__cause__)
        await assert_slot_is_free(client)


# -- the embedded mock: faults, retries, timeouts --------------------------------------------


def mock_client(**kwargs: Any) -> AsyncClient:
    kwargs.setdefault("retry", RetryPolicy(max_retries=2, backoff_base=0.0))
    return AsyncClient(provider="mock", **kwargs)


async def test_a_failure_before_the_first_chunk_is_retried_and_chunks_come_once() -> None:
    async with mock_client() as client:
        async with client.stream(PROMPT, extra_headers={"x-mock-fault": "503;times=1"}) as s:
            texts = [c.text async for c in s if c.text]
            final = await s.final()
        assert client.usage.retries == 1
    assert "".join(texts) == final.text == f"echo: {PROMPT}"
    assert len(texts) == len(PROMPT.split()) + 1  # one delta per word piece, none repeated


async def test_a_reset_after_the_first_chunk_is_not_retried_and_text_is_not_repeated() -> None:
    async with mock_client(max_concurrency=1, retry=None, max_retries=2) as client:
        texts: list[str] = []
        with pytest.raises(StreamError) as info:
            async for chunk in client.stream(
                PROMPT, extra_headers={"x-mock-fault": "reset;after=2"}
            ):
                texts.append(chunk.text)
        assert client.usage.retries == 0
        assert client.usage.failures == 1
        with anyio.fail_after(BOUND):
            assert (await client.chat("free?")).text == "echo: free?"
    error = info.value
    assert isinstance(error.__cause__, APIConnectionError)
    assert error.partial == "".join(texts) == "echo: one "
    assert error.retryable is True


@pytest.mark.parametrize(
    ("fault", "cause"),
    [
        ("error-event;after=2", InternalServerError),
        ("truncate;after=2", type(None)),
        ("malformed;after=2", llmrelay.ResponseError),
    ],
)
async def test_mock_faults_mid_stream_are_typed_and_free_the_slot(
    fault: str, cause: type[BaseException]
) -> None:
    async with mock_client(max_concurrency=1) as client:
        with pytest.raises(StreamError) as info:
            async for _ in client.stream(PROMPT, extra_headers={"x-mock-fault": fault}):
                pass
        assert type(info.value.__cause__) is cause
        assert info.value.partial == "echo: one "
        assert client.usage.retries == 0
        with anyio.fail_after(BOUND):
            await client.chat("free?")


async def test_a_stall_longer_than_the_read_timeout_is_a_timeout_stream_error() -> None:
    async with mock_client(timeout=Timeout(read=0.05)) as client:
        started = anyio.current_time()
        with pytest.raises(StreamError) as info:
            async for _ in client.stream(
                PROMPT, extra_headers={"x-mock-fault": "stall-mid;seconds=1;after=1"}
            ):
                pass
        assert anyio.current_time() - started < 0.5
    assert type(info.value.__cause__) is APITimeoutError
    assert info.value.partial == "echo: "


async def test_the_total_timeout_stops_a_stalled_mock_stream() -> None:
    async with mock_client(timeout=Timeout(total=0.1)) as client:
        started = anyio.current_time()
        with pytest.raises(StreamError) as info:
            async for _ in client.stream(
                PROMPT, extra_headers={"x-mock-fault": "stall-mid;seconds=5;after=1"}
            ):
                pass
        assert anyio.current_time() - started < 0.1 + 0.25
    assert type(info.value.__cause__) is APITimeoutError


async def test_a_slow_stream_inside_its_timeouts_finishes() -> None:
    headers = {"x-mock-chunk-delay": "0.01"}
    async with mock_client(timeout=Timeout(read=0.2, total=2.0)) as client:
        final = await client.stream(PROMPT, extra_headers=headers).final()
    assert final.text == f"echo: {PROMPT}" and final.finish_reason == "stop"


async def test_a_closed_stream_cannot_be_read_again() -> None:
    async with mock_client() as client:
        stream = client.stream(PROMPT)
        await stream.aclose()
        await stream.aclose()  # twice is fine
        with pytest.raises(StreamError, match="closed"):
            async for _ in stream:
                pass


# -- the sync facade -------------------------------------------------------------------------


def test_breaking_out_of_a_sync_stream_inside_with_frees_the_slot() -> None:
    with llmrelay.Client(
        provider="mock", max_concurrency=1, timeout=Timeout(total=BOUND)
    ) as client:
        with client.stream(PROMPT) as stream:
            for chunk in stream:
                if chunk.text:
                    break
        assert stream.text == "echo: "
        assert client.chat("free?").text == "echo: free?"  # would time out if the slot leaked


def test_breaking_out_of_a_sync_stream_without_with_frees_the_slot() -> None:
    with llmrelay.Client(
        provider="mock", max_concurrency=1, timeout=Timeout(total=BOUND)
    ) as client:
        gc.disable()
        try:
            for chunk in client.stream(PROMPT):
                if chunk.text:
                    break
            assert client.chat("free?").text == "echo: free?"
        finally:
            gc.enable()


def test_a_sync_stream_error_frees_the_slot() -> None:
    with llmrelay.Client(
        provider="mock", max_concurrency=1, timeout=Timeout(total=BOUND)
    ) as client:
        with pytest.raises(StreamError):
            for _ in client.stream(PROMPT, extra_headers={"x-mock-fault": "reset;after=1"}):
                pass
        assert client.chat("free?").text == "echo: free?"


# -- trio too --------------------------------------------------------------------------------


@pytest.mark.parametrize("anyio_backend", ["trio"])
@pytest.mark.filterwarnings(
    # httpx and httpcore read a body through nested async generators that nothing can close
    # from outside (encode/httpx#3686); trio warns when they are collected. Ours are closed.
    r"ignore:Async generator 'http(x|core)\._:ResourceWarning",
)
async def test_on_trio_breaking_out_and_cancelling_free_the_slot_and_connection(
    anyio_backend: str, engine: str
) -> None:
    if engine != "httpx":
        pytest.skip("aiohttp and reqwest run on asyncio only (test_engines: a ConfigError)")
    script = lambda body: [*slow(TEXT[:3]), HOLD]  # noqa: E731
    async with loopback(script) as server, loop_client(server) as client:
        async with client.stream("hi") as stream:
            async for _ in stream:
                break
        with anyio.move_on_after(0.1):
            async for _ in client.stream("hi"):
                pass
        with anyio.fail_after(BOUND):
            await server.wait_closed(2)
        await assert_slot_is_free(client)


@pytest.mark.parametrize(
    "fault", ["reset;after=0;times=1", "error-event;after=0;times=1", "503;times=1"]
)
async def test_a_failure_before_the_first_chunk_is_retried_and_the_reply_arrives_once(
    fault: str,
) -> None:
    """Before anything reached the caller, a cut connection or an error event is retried like
    a failed request; the caller sees one complete reply, no duplicated text."""
    policy = llmrelay.RetryPolicy(max_retries=2, backoff_base=0.001, backoff_cap=0.001)
    async with llmrelay.AsyncClient(provider="mock", retry=policy) as client:
        stream = client.stream("a b c", extra_headers={"x-mock-fault": fault})
        texts = [chunk.text async for chunk in stream]
        assert "".join(texts) == "echo: a b c"
        assert (await stream.final()).finish_reason == "stop"
        assert client.usage.retries == 1


async def test_a_failure_before_the_first_chunk_that_persists_is_a_stream_error() -> None:
    policy = llmrelay.RetryPolicy(max_retries=1, backoff_base=0.001, backoff_cap=0.001)
    async with llmrelay.AsyncClient(provider="mock", retry=policy) as client:
        with pytest.raises(llmrelay.StreamError) as caught:
            async for _ in client.stream("a b c", extra_headers={"x-mock-fault": "reset;after=0"}):
                pass
        assert isinstance(caught.value.__cause__, llmrelay.APIConnectionError)
        assert caught.value.partial == ""
        assert client.usage.retries == 1
