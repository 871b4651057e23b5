"""Anthropic streaming: recorded-style event streams (``fixtures/anthropic/*.sse``) through the
real `AsyncClient`, the parser on single events, and end to end against the embedded mock's
Anthropic face."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import llmrelay
from llmrelay import (
    AsyncClient,
    Message,
    ReasoningBlock,
    StreamChunk,
    StreamError,
    ToolCallDelta,
    Usage,
)
from llmrelay._request import ChatRequest
from llmrelay._sse import ServerSentEvent
from llmrelay.mock import MockTransport
from llmrelay.providers import anthropic

from ._helpers import client_over

# Marked at collection time so anyio's plugin uses conftest's `anyio_backend` fixture (asyncio).
pytestmark = pytest.mark.anyio

FIXTURES = Path(__file__).parent / "fixtures" / "anthropic"
KEY = "sk-ant-test"
MODEL = "claude-sonnet-4-5"


class Recorded:
    """Serves `<name>.sse` to a streamed request (in small pieces, as a network would) and
    `<name>.json` to a plain one; records what was sent."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.bodies: list[dict[str, Any]] = []
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        body = json.loads(request.content)
        self.bodies.append(body)
        headers = {"request-id": f"req_{self.name}"}
        if body.get("stream"):
            data = (FIXTURES / f"{self.name}.sse").read_bytes()
            headers["content-type"] = "text/event-stream"
            return httpx.Response(200, content=_pieces(data, 37), headers=headers)
        reply = json.loads((FIXTURES / f"{self.name}.json").read_text(encoding="utf-8"))
        return httpx.Response(200, json=reply, headers=headers)

    def client(self) -> AsyncClient:
        return client_over(self, provider="anthropic", api_key=KEY, model=MODEL, max_retries=0)


async def _pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def collect(
    name: str, messages: Any = "Hi"
) -> tuple[list[StreamChunk], llmrelay.ChatResponse, Recorded]:
    fake = Recorded(name)
    async with fake.client() as client, client.stream(messages) as stream:
        chunks = [chunk async for chunk in stream]
        final = await stream.final()
    return chunks, final, fake


@pytest.mark.parametrize("name", ["text", "tool_use", "thinking", "thinking_blocks"])
async def test_the_streamed_reply_equals_the_plain_reply(name: str) -> None:
    fake = Recorded(name)
    async with fake.client() as client:
        async with client.stream("Hi") as stream:
            final = await stream.final()
        plain = await client.chat("Hi")
    assert final == plain
    assert final.request_id == f"req_{name}"


async def test_text_stream_chunks_and_the_wire_request() -> None:
    messages = [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"}]
    chunks, final, fake = await collect("text", messages)
    first, *middle, last = chunks
    assert first.role == "assistant"
    assert (first.id, first.model) == ("msg_01XFDUDYJgAACzvnptvVoYEL", "claude-sonnet-4-5-20250929")
    assert [c.text for c in middle] == ["Hello", ", wörld! ", "How can I help?"]
    assert all(c.finish_reason is None and c.usage is None for c in middle)
    assert last.finish_reason == "stop"
    # Input-side counts from message_start, cumulative output count from message_delta.
    assert last.usage == Usage(
        prompt_tokens=2121,
        completion_tokens=12,
        total_tokens=2133,
        cached_tokens=2000,
        cache_write_tokens=100,
    )
    assert final.text == "Hello, wörld! How can I help?"

    sent = fake.requests[0]
    assert sent.headers["x-api-key"] == KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    body = fake.bodies[0]
    assert body["stream"] is True
    assert body["system"] == "Be kind."
    assert body["max_tokens"] == anthropic.ANTHROPIC_DEFAULT_MAX_TOKENS
    assert [m["role"] for m in body["messages"]] == ["user"]
    assert "stream_options" not in body


async def test_tool_use_stream_gives_indexed_tool_call_deltas() -> None:
    chunks, final, _ = await collect("tool_use")
    deltas = [d for c in chunks if c.tool_calls for d in c.tool_calls]
    assert deltas == [
        ToolCallDelta(
            index=0, id="toolu_01T1x1fJ34qAmk2tNTrN7Up6", name="get_weather", arguments=""
        ),
        ToolCallDelta(index=0, arguments='{"location": "San'),
        ToolCallDelta(index=0, arguments=' Francisco, CA"'),
        ToolCallDelta(index=0, arguments=', "unit": "cel'),
        ToolCallDelta(index=0, arguments='sius"}'),
        ToolCallDelta(index=1, id="toolu_01Bx2yQc7Zp9rUvWq3sTn4Ke", name="get_time", arguments=""),
        ToolCallDelta(index=1, arguments='{"timezone": '),
        ToolCallDelta(index=1, arguments='"America/Los_Angeles"}'),
    ]
    assert final.text == "Let me check both for you."
    assert final.finish_reason == "tool_calls"
    assert [(c.name, c.parsed_arguments) for c in final.tool_calls] == [
        ("get_weather", {"location": "San Francisco, CA", "unit": "celsius"}),
        ("get_time", {"timezone": "America/Los_Angeles"}),
    ]
    assert final.usage == Usage(prompt_tokens=472, completion_tokens=89, total_tokens=561)


async def test_thinking_stream_gives_reasoning_and_its_signature() -> None:
    chunks, final, _ = await collect("thinking")
    assert [c.reasoning for c in chunks if c.reasoning] == [
        "The user asks for 27 * 453.\n",
        "27 * 453 = 12231.",
    ]
    signatures = [c.reasoning_signature for c in chunks if c.reasoning_signature]
    assert signatures == [
        "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds0P1v+0cD1lHQ3wTbSg0GIoH"
    ]
    assert final.reasoning == "The user asks for 27 * 453.\n27 * 453 = 12231."
    assert final.reasoning_signature == signatures[0]
    assert final.text == "27 * 453 = **12,231**"
    # The reply goes back with its signed thinking block first.
    body = anthropic.build_chat(
        anthropic.preset(),
        ChatRequest(
            model=MODEL,
            messages=[{"role": "user", "content": "Q"}, final.message.to_dict()],
            params={},
        ),
    ).json
    assert body["messages"][1]["content"][0] == {
        "type": "thinking",
        "thinking": final.reasoning,
        "signature": final.reasoning_signature,
    }


# Two signed thinking blocks with a redacted one between them (`thinking_blocks.sse`/`.json`).
FIRST_SIGNATURE = "EuYBCkQYAiJAg1tZfirstSignatureAAAA=="
SECOND_SIGNATURE = "EuYBCkQYAiJAsecondSignatureBBBB=="
REDACTED = (
    "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpPkNRj2YfWXGmKDxH4mPnZ5sQ7vB5URj"
)
BLOCKS = (
    ReasoningBlock(
        text="The user wants the weather in Oslo and in Bergen.", signature=FIRST_SIGNATURE
    ),
    ReasoningBlock(redacted=REDACTED),
    ReasoningBlock(text="One call per city.", signature=SECOND_SIGNATURE),
)


@pytest.mark.parametrize("streamed", [True, False], ids=["stream", "chat"])
async def test_several_thinking_blocks_are_kept_apart_and_replayed_exactly(
    streamed: bool,
) -> None:
    fake = Recorded("thinking_blocks")
    async with fake.client() as client:
        if streamed:
            async with client.stream("Weather in Oslo and Bergen?") as stream:
                reply = await stream.final()
        else:
            reply = await client.chat("Weather in Oslo and Bergen?")
        assert reply.reasoning_blocks == BLOCKS
        # The single-block view is unchanged: all the text, the last signature.
        assert reply.reasoning == (
            "The user wants the weather in Oslo and in Bergen.One call per city."
        )
        assert reply.reasoning_signature == SECOND_SIGNATURE
        assert reply.message.reasoning_blocks == BLOCKS
        await client.chat(
            [
                Message(role="user", content="Weather in Oslo and Bergen?"),
                reply.message,
                Message(role="tool", tool_call_id="toolu_01Oslo", content="-3C"),
            ]
        )
    sent = json.loads(fake.requests[-1].content)
    assert sent["messages"] == [
        {"role": "user", "content": "Weather in Oslo and Bergen?"},
        {
            "role": "assistant",
            "content": [
                {
                    "type": "thinking",
                    "thinking": "The user wants the weather in Oslo and in Bergen.",
                    "signature": FIRST_SIGNATURE,
                },
                {"type": "redacted_thinking", "data": REDACTED},
                {
                    "type": "thinking",
                    "thinking": "One call per city.",
                    "signature": SECOND_SIGNATURE,
                },
                {"type": "text", "text": "Checking both."},
                {
                    "type": "tool_use",
                    "id": "toolu_01Oslo",
                    "name": "get_weather",
                    "input": {"city": "Oslo"},
                },
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_01Oslo", "content": "-3C"}],
        },
    ]


async def test_a_redacted_block_streams_as_one_chunk_between_the_signatures() -> None:
    chunks, _, _ = await collect("thinking_blocks")
    pieces = [
        (c.reasoning, c.reasoning_signature, c.reasoning_redacted)
        for c in chunks
        if c.reasoning or c.reasoning_signature or c.reasoning_redacted
    ]
    assert pieces == [
        ("The user wants the weather in Oslo", None, None),
        (" and in Bergen.", None, None),
        (None, FIRST_SIGNATURE, None),
        (None, None, REDACTED),
        ("One call per city.", None, None),
        (None, SECOND_SIGNATURE, None),
    ]


async def test_a_whole_json_reply_to_a_stream_request_keeps_its_blocks() -> None:
    # A proxy that ignores `stream` answers with the whole message: the blocks stay exact.
    reply = (FIXTURES / "thinking_blocks.json").read_bytes()

    def whole(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=reply, headers={"content-type": "application/json"})

    async with (
        client_over(whole, provider="anthropic", api_key=KEY, model=MODEL) as client,
        client.stream("Hi") as stream,
    ):
        final = await stream.final()
    assert final.reasoning_blocks == BLOCKS


async def test_an_error_event_raises_stream_error_caused_by_overloaded() -> None:
    fake = Recorded("error_overloaded")
    seen: list[str] = []
    async with fake.client() as client, client.stream("Hi") as stream:
        with pytest.raises(StreamError) as info:
            async for chunk in stream:
                seen.append(chunk.text)
    error = info.value
    assert "".join(seen) == "Partial answer"
    assert error.partial == "Partial answer"
    assert error.retryable is True
    assert isinstance(error.__cause__, llmrelay.OverloadedError)
    assert error.__cause__.status_code == 529
    assert error.__cause__.code == "overloaded_error"
    assert error.__cause__.request_id == "req_011CSHoEeqs5C35K2UUqR7Fy"
    assert "Overloaded" in str(error)
    with pytest.raises(StreamError):
        await stream.final()


async def test_a_stream_without_message_stop_is_truncated() -> None:
    fake = Recorded("truncated")
    async with fake.client() as client, client.stream("Hi") as stream:
        with pytest.raises(StreamError, match="ended before the reply was complete") as info:
            await stream.final()
    assert info.value.partial == "Cut short"
    assert info.value.retryable is True


# -- the parser on single events ---------------------------------------------------------------


def parser() -> anthropic.StreamParser:
    return anthropic.new_stream_parser(
        anthropic.preset(), ChatRequest(model=MODEL, messages=[], params={})
    )


def event(kind: str, **data: Any) -> ServerSentEvent:
    return ServerSentEvent(event=kind, data=json.dumps({"type": kind, **data}))


def test_pings_unknown_events_and_block_stops_carry_nothing() -> None:
    p = parser()
    for e in (
        event("ping"),
        event("content_block_stop", index=0),
        event("brand_new_event", payload=1),
        ServerSentEvent(event="ping", data=""),
        event("content_block_delta", index=0, delta={"type": "citations_delta", "citation": {}}),
    ):
        assert p.parse(e) is None
    assert not p.finished()
    assert p.parse(event("message_stop")) is None
    assert p.finished()


def test_done_turns_true_at_message_stop_and_later_events_are_ignored() -> None:
    p = parser()
    text = event("content_block_delta", index=0, delta={"type": "text_delta", "text": "hi"})
    assert p.done is False
    assert p.parse(text) is not None
    assert p.done is False
    assert p.parse(event("message_stop")) is None
    assert p.done is True
    # After the end nothing counts, not even an error event.
    assert p.parse(text) is None
    assert p.parse(event("error", error={"type": "overloaded_error", "message": "x"})) is None
    assert p.done is True and p.finished()


@pytest.mark.parametrize(
    "block",
    [{"type": "redacted_thinking"}, {"type": "redacted_thinking", "data": ""}],
    ids=["missing", "empty"],
)
def test_a_redacted_thinking_block_without_data_is_a_response_error(
    block: dict[str, Any],
) -> None:
    with pytest.raises(llmrelay.ResponseError, match="redacted_thinking block has no 'data'"):
        parser().parse(event("content_block_start", index=0, content_block=block))


def test_an_event_without_a_type_field_is_read_by_its_event_name() -> None:
    p = parser()
    got = p.parse(
        ServerSentEvent(
            event="content_block_delta",
            data='{"index": 0, "delta": {"type": "text_delta", "text": "hi"}}',
        )
    )
    assert got is not None and got.text == "hi"


@pytest.mark.parametrize(
    "data",
    ["not json", "[1]", '{"type": "message_start"}', '{"type": "content_block_delta", "index": 0}'],
)
def test_unreadable_events_are_response_errors(data: str) -> None:
    with pytest.raises(llmrelay.ResponseError, match="anthropic returned an unexpected response"):
        parser().parse(ServerSentEvent(event="message", data=data))


def test_tool_input_for_a_block_that_never_started_is_a_response_error() -> None:
    delta = {"type": "input_json_delta", "partial_json": '{"a": 1}'}
    with pytest.raises(llmrelay.ResponseError, match="never started"):
        parser().parse(event("content_block_delta", index=3, delta=delta))


@pytest.mark.parametrize(
    ("kind", "cls", "status"),
    [
        ("overloaded_error", llmrelay.OverloadedError, 529),
        ("rate_limit_error", llmrelay.RateLimitError, 429),
        ("api_error", llmrelay.InternalServerError, 500),
        ("invalid_request_error", llmrelay.BadRequestError, 400),
        ("something_new", llmrelay.InternalServerError, 500),
    ],
)
def test_error_events_raise_the_matching_status_error(
    kind: str, cls: type[llmrelay.APIStatusError], status: int
) -> None:
    with pytest.raises(cls) as info:
        parser().parse(event("error", error={"type": kind, "message": "went wrong"}))
    assert type(info.value) is cls
    assert info.value.status_code == status
    assert "went wrong" in str(info.value)


def test_message_delta_usage_combines_with_message_start() -> None:
    p = parser()
    start = {
        "id": "msg_1",
        "model": "m",
        "usage": {"input_tokens": 5, "cache_read_input_tokens": 7, "output_tokens": 1},
    }
    first = p.parse(event("message_start", message=start))
    assert first is not None and first.usage is None
    done = p.parse(
        event("message_delta", delta={"stop_reason": "max_tokens"}, usage={"output_tokens": 30})
    )
    assert done is not None
    assert done.finish_reason == "length"
    assert done.usage == Usage(
        prompt_tokens=12, completion_tokens=30, total_tokens=42, cached_tokens=7
    )


# -- end to end against the embedded mock's Anthropic face -------------------------------------


def mock_client(**kwargs: Any) -> AsyncClient:
    return AsyncClient(
        provider=anthropic.preset(base_url="http://mock.test/v1"),
        api_key="x",
        model="mock-echo",
        http_client=httpx.AsyncClient(transport=MockTransport()),
        **kwargs,
    )


def _without_ids(reply: llmrelay.ChatResponse) -> llmrelay.ChatResponse:
    return dataclasses.replace(reply, id=None, request_id=None)


async def test_mock_chat_and_stream() -> None:
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "hello there friend"},
    ]
    async with mock_client() as client:
        plain = await client.chat(messages)
        async with client.stream(messages, extra_headers={"x-mock-chunks": "3"}) as stream:
            texts = [chunk.text async for chunk in stream if chunk.text]
            final = await stream.final()
    assert plain.text == "echo: hello there friend"
    assert plain.finish_reason == "stop"
    assert plain.request_id is not None and plain.id is not None
    assert len(texts) == 3
    assert "".join(texts) == plain.text
    assert _without_ids(final) == _without_ids(plain)
    assert client.usage.retries == 0


async def test_mock_overloaded_529_then_ok_is_retried() -> None:
    policy = llmrelay.RetryPolicy(max_retries=2, backoff_base=0.001, backoff_cap=0.01)
    async with mock_client(retry=policy) as client:
        got = await client.chat("hi", extra_headers={"x-mock-fault": "529;times=1"})
        async with client.stream("hi", extra_headers={"x-mock-fault": "529;times=1"}) as stream:
            final = await stream.final()
    assert got.text == final.text == "echo: hi"
    assert client.usage.retries == 2


async def test_mock_in_stream_overloaded_error() -> None:
    async with (
        mock_client(max_retries=0) as client,
        client.stream(
            "one two three four", extra_headers={"x-mock-fault": "error-event;after=2"}
        ) as stream,
    ):
        with pytest.raises(StreamError) as info:
            await stream.final()
    assert isinstance(info.value.__cause__, llmrelay.OverloadedError)
    assert info.value.partial == "echo: one "
