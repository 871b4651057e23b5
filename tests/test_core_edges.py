"""Edges of the core found in review, through the real client: closing a stream from another
task at every point, a client closed under its streams, keys that must never show, broken
callbacks and listeners, the batch tracker's hooks, unparsable settings."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import anyio
import httpx
import pytest

import llmrelay
from _loopback import HOLD, LoopbackServer, Request, chat_completion, json_response, loopback, sse
from llmrelay.stages._base import Reply
from llmrelay.stages._slot import ConcurrencySlot

pytestmark = pytest.mark.anyio

KEY = "sk-SECRET-abcdef123456"
DONE = b"data: [DONE]\n\n"
BOUND = 5.0


def chunk(text: str | None = None, finish: str | None = None, role: str | None = None) -> bytes:
    delta: dict[str, Any] = {}
    if role:
        delta["role"] = role
    if text is not None:
        delta["content"] = text
    data = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(data).encode() + b"\n\n"


def client_for(server: LoopbackServer, **kwargs: Any) -> llmrelay.AsyncClient:
    kwargs.setdefault("api_key", "sk-x")
    return llmrelay.AsyncClient(provider="openai", base_url=server.base_url, model="m", **kwargs)


async def test_aclose_while_the_stream_waits_for_its_first_chunk_ends_it_quietly() -> None:
    # The "stop" button pressed before the first token of a slow model.
    def respond(request: Request) -> Any:
        return sse([0.5, chunk(role="assistant"), chunk("a"), chunk("b", "stop"), DONE])

    async with loopback(respond) as server, client_for(server, max_concurrency=1) as client:
        stream = client.stream("hi")
        got: list[str] = []

        async def reader() -> None:
            async for item in stream:
                got.append(item.text)

        with anyio.fail_after(BOUND):
            async with anyio.create_task_group() as tg:
                tg.start_soon(reader)
                await anyio.sleep(0.1)
                await stream.aclose()
        assert got == []
        assert stream.state.value == "closed"
    assert server.opened == server.closed  # the connection was given up, not left open


@pytest.mark.parametrize("blocking_text", ["a", "b"])
async def test_aclose_while_the_reader_awaits_a_callback_ends_quietly(blocking_text: str) -> None:
    def respond(request: Request) -> Any:
        return sse(
            [chunk(role="assistant"), chunk("a"), 0.05, chunk("b"), 0.05, chunk("c", "stop"), DONE]
        )

    async with loopback(respond) as server, client_for(server) as client:
        entered = anyio.Event()
        errors: list[object] = []

        async def on_chunk(item: llmrelay.StreamChunk) -> None:
            if item.text == blocking_text:
                entered.set()
                await anyio.sleep(0.2)

        stream = client.stream("hi", on_chunk=on_chunk, on_error=errors.append)
        outcome: list[BaseException] = []

        async def reader() -> None:
            try:
                async for _ in stream:
                    pass
            except BaseException as exc:
                outcome.append(exc)

        with anyio.fail_after(BOUND):
            async with anyio.create_task_group() as tg:
                tg.start_soon(reader)
                await entered.wait()
                await stream.aclose()
        assert outcome == [] and errors == []
        assert client.usage.failures == 0


async def test_a_stream_read_after_its_client_closed_is_a_client_state_error() -> None:
    async with loopback(lambda request: sse([chunk("a", "stop"), DONE])) as server:
        async with client_for(server) as client:
            stream = client.stream("hi")
        with pytest.raises(llmrelay.ClientStateError):
            async for _ in stream:
                pass
        assert server.opened == 0


@pytest.mark.parametrize("key", [KEY + "\n", KEY + "\r\n", " " + KEY + " "])
async def test_a_key_with_surrounding_whitespace_is_sent_without_it(key: str) -> None:
    async with (
        loopback(lambda request: json_response(chat_completion("hi"))) as server,
        client_for(server, api_key=key) as client,
    ):
        assert (await client.chat("hi")).text == "hi"
    assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize("key", [KEY + "\u2019", KEY[:6] + "\n" + KEY[6:], KEY + "\x00"])
def test_a_key_a_header_cannot_carry_is_a_config_error_that_never_shows_it(key: str) -> None:
    with pytest.raises(llmrelay.ConfigError) as info:
        llmrelay.AsyncClient(provider="openai", api_key=key)
    assert "SECRET" not in str(info.value)


def test_a_key_from_the_environment_is_named_by_its_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY + "\u00e9")
    with pytest.raises(llmrelay.ConfigError, match="OPENAI_API_KEY") as info:
        llmrelay.AsyncClient(provider="openai")
    assert "SECRET" not in str(info.value)


async def test_a_header_value_httpx_cannot_encode_is_a_config_error() -> None:
    async with loopback(lambda request: json_response(chat_completion("hi"))) as server:
        async with client_for(server, api_key=KEY) as client:
            with pytest.raises(llmrelay.ConfigError, match="header"):
                await client.chat("hi", extra_headers={"x-note": "caf\u00e9 \u2603"})
        assert server.requests == []


async def test_an_error_event_echoing_the_key_keeps_it_out_of_the_error_and_its_body() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        error = {"error": {"message": f"Incorrect API key: {KEY}", "code": "invalid_api_key"}}
        body = b"data: " + json.dumps(error).encode() + b"\n\n"
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    async with llmrelay.AsyncClient(
        provider="openai",
        api_key=KEY,
        base_url="https://x.example/v1",
        model="m",
        http_client=http,
        max_retries=0,
    ) as client:
        with pytest.raises(llmrelay.StreamError) as info:
            async for _ in client.stream("hi"):
                pass
    cause = info.value.__cause__
    assert isinstance(cause, llmrelay.APIStatusError)
    assert KEY not in str(info.value) and KEY not in str(cause) and KEY not in repr(cause.body)


async def test_an_error_in_a_200_body_echoing_the_key_keeps_it_out_of_the_body() -> None:
    error = {"error": {"message": f"bad key {KEY}", "code": 401}}
    http = httpx.AsyncClient(
        transport=httpx.MockTransport(lambda r: httpx.Response(200, json=error))
    )
    async with llmrelay.AsyncClient(
        provider="openai", api_key=KEY, base_url="https://x.example/v1", model="m", http_client=http
    ) as client:
        with pytest.raises(llmrelay.AuthenticationError) as info:
            await client.chat("hi")
    assert KEY not in str(info.value) and KEY not in repr(info.value.body)


async def test_a_failing_finish_listener_still_frees_the_slot() -> None:
    class Inner:
        async def send(self, call: object) -> Reply:
            reply = Reply(200, {}, None)
            reply.on_finish(lambda usage, error: 1 / 0)  # a broken listener, e.g. a hook
            return reply

    slot = ConcurrencySlot(Inner(), limit=1)  # type: ignore[arg-type]
    reply = await slot.send(None)  # type: ignore[arg-type]
    with pytest.raises(ZeroDivisionError):
        await reply.aclose()
    assert slot.free == 1


async def test_a_raising_callback_ends_the_stream_and_frees_the_slot() -> None:
    async with llmrelay.AsyncClient(provider="mock", max_concurrency=1) as client:

        def on_text(text: str) -> None:
            raise ValueError("a bug in the UI code")

        stream = client.stream("hello there", on_text=on_text)
        with pytest.raises(ValueError, match="UI"):
            async for _ in stream:
                pass
        assert stream.state.value == "closed"
        with pytest.raises(llmrelay.StreamError, match="closed before it finished"):
            await stream.final()
        with anyio.fail_after(BOUND):
            assert (await client.chat("next")).text


def test_a_sync_stream_after_its_client_closed() -> None:
    with llmrelay.Client(provider="mock") as client:
        stream = client.stream("hi")
    stream.close()  # nothing left to close: no error
    with pytest.raises(llmrelay.ClientStateError):
        next(stream)


async def test_the_batch_tracker_hears_about_an_attempt_the_total_deadline_cut() -> None:
    from llmrelay.cli._batch import AttemptTracker

    async with (
        loopback(lambda request: sse([HOLD], content_type="application/json")) as server,
        client_for(server, timeout=0.2) as client,
    ):
        tracker = AttemptTracker()
        client._add_hooks(tracker.hooks)
        token = tracker.current.set("item-1")
        try:
            with pytest.raises(llmrelay.APITimeoutError):
                await client.chat("hi")
        finally:
            tracker.current.reset(token)
        assert dict(tracker.failures) == {"timeout": 1}
        assert tracker.outcomes["item-1"][0] == 1


@pytest.mark.parametrize("url", ["http://[::1/v1", "http:///v1", "http://host:port/v1"])
def test_an_unparsable_base_url_is_a_config_error(url: str) -> None:
    with pytest.raises(llmrelay.ConfigError, match="base_url"):
        llmrelay.AsyncClient(provider="openai", api_key="k", base_url=url)


def test_reprs_hide_credentials_in_the_base_url() -> None:
    client = llmrelay.AsyncClient(
        provider="openai", api_key=KEY, base_url="https://user:hunter2@proxy.example/v1"
    )
    assert "hunter2" not in repr(client) and KEY not in repr(client)


def test_the_stream_deadline_leaves_the_task_uncancelled() -> None:
    # The one-timer deadline cancels the read it interrupts and takes that back
    # (`Task.uncancel`): the caller's task must not stay marked as cancelling.
    async def main() -> None:
        async with llmrelay.AsyncClient(provider="mock", max_retries=0) as client:
            with pytest.raises(llmrelay.StreamError):
                async for _ in client.stream(
                    "one two three",
                    timeout=llmrelay.Timeout(total=0.2, read=30),
                    extra_headers={"x-mock-fault": "stall-mid;seconds=5;after=1"},
                ):
                    pass
            task = asyncio.current_task()
            assert task is not None and task.cancelling() == 0

    asyncio.run(main())
