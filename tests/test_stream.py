"""`client.stream()`: what a user gets from recorded-style OpenAI streams, through the real
client over fake HTTP (`httpx.MockTransport`) and the embedded mock provider.

The streams are plain files in ``tests/fixtures/openai/*.sse``, written the way the services
send them (OpenAI, Azure, DeepSeek, Moonshot, OpenRouter, Groq, vLLM, llama.cpp). Lifecycle
concerns (closing, cancellation, timeouts, retries, the connection pool) are in
``test_stream_lifecycle.py``.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest

import llmrelay
from llmrelay import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AsyncClient,
    AuthenticationError,
    BadRequestError,
    ChatResponse,
    InternalServerError,
    LLMError,
    RateLimitError,
    ResponseError,
    StreamChunk,
    StreamError,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from llmrelay.providers import openai as openai_adapter

FIXTURES = Path(__file__).parent / "fixtures" / "openai"
REQUEST_ID = "req_stream_test_1"
KEY = "sk-test-stream-SECRET-0123456789"

# Marked at collection time so anyio's plugin sees parametrized async tests (asyncio backend).
pytestmark = pytest.mark.anyio

Piece = bytes | float | BaseException


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.sse").read_bytes()


def split_events(data: bytes) -> list[bytes]:
    """A fixture cut after each blank line (one network read per event, as servers flush)."""
    sep = b"\r\n\r\n" if b"\r\n" in data else b"\n\n"
    parts = data.split(sep)
    return [part + sep for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


class Body(httpx.AsyncByteStream):
    """A response body played piece by piece: bytes are sent, a float pauses that long, an
    exception is raised where it stands (a network error mid-stream)."""

    def __init__(self, pieces: Iterable[Piece]) -> None:
        self._pieces = list(pieces)
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self._pieces:
            if isinstance(piece, BaseException):
                raise piece
            if isinstance(piece, float):
                await anyio.sleep(piece)
            else:
                yield piece

    async def aclose(self) -> None:
        self.closed = True


def sse(pieces: Iterable[Piece], *, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        200,
        headers={
            "content-type": "text/event-stream",
            "x-request-id": REQUEST_ID,
            **(headers or {}),
        },
        stream=Body(pieces),
    )


class Server:
    """A `MockTransport` handler: answers with `respond(request)` and keeps the JSON bodies."""

    def __init__(self, respond: Callable[[httpx.Request], httpx.Response]) -> None:
        self.respond = respond
        self.bodies: list[Any] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(json.loads(request.content))
        return self.respond(request)


def serving(name: str) -> Server:
    return Server(lambda request: sse(split_events(fixture(name))))


@asynccontextmanager
async def openai_client(server: Server, **kwargs: Any) -> AsyncIterator[AsyncClient]:
    kwargs.setdefault("max_retries", 0)
    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(server)) as http,
        AsyncClient(
            provider="openai", api_key=KEY, model="m", http_client=http, **kwargs
        ) as client,
    ):
        yield client


async def run(client: AsyncClient, **kwargs: Any) -> tuple[list[StreamChunk], ChatResponse]:
    async with client.stream("hi", **kwargs) as stream:
        chunks = [chunk async for chunk in stream]
        final = await stream.final()
        assert stream.text == final.text
    return chunks, final


def usage(prompt: int, completion: int, **extra: int) -> Usage:
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        **extra,
    )


def reply(**fields: Any) -> ChatResponse:
    fields.setdefault("text", "")
    return ChatResponse(request_id=REQUEST_ID, provider="openai", **fields)


def call(call_id: str, name: str, arguments: str) -> ToolCall:
    return ToolCall(
        id=call_id, name=name, arguments=arguments, parsed_arguments=json.loads(arguments)
    )


# What `final()` must give for each complete fixture.
EXPECTED: dict[str, ChatResponse] = {
    "text": reply(
        text="Héllo 👋 there! How can I help?",
        finish_reason="stop",
        usage=usage(9, 8),
        model="gpt-4o-mini-2024-07-18",
        id="chatcmpl-BxT0q2u9mH4k1sLwZ",
    ),
    "tool_calls_parallel": reply(
        finish_reason="tool_calls",
        usage=usage(82, 46, cached_tokens=64),
        tool_calls=(
            call("call_Paris01", "get_weather", '{"city": "Paris"}'),
            call("call_Tokyo02", "get_weather", '{"city": "Tōkyō", "unit": "c"}'),
        ),
        model="gpt-4o-2024-08-06",
        id="chatcmpl-BxT1aToolsParallel",
    ),
    "tool_calls_whole": reply(
        finish_reason="tool_calls",
        usage=usage(120, 30),
        tool_calls=(
            call("call_a1", "add", '{"a": 1, "b": 2}'),
            call("call_b2", "mul", '{"a": 3, "b": 4}'),
        ),
        model="llama-3.3-70b-versatile",
        id="chatcmpl-groq-7f1c2a",
    ),
    "usage_in_choice": reply(
        text="你好，世界！",
        finish_reason="stop",
        usage=usage(19, 5),
        model="kimi-k2-0905-preview",
        id="chatcmpl-6853a1b2moonshot",
    ),
    "reasoning_content": reply(
        text="2 + 2 = **4**",
        reasoning="The user asks 2+2. That is 4.",
        finish_reason="stop",
        usage=usage(13, 21, reasoning_tokens=14),
        model="deepseek-reasoner",
        id="0c9a7d1e-ds-reasoner",
    ),
    "reasoning_field": reply(
        text="Hi!",
        reasoning="Greeting; reply briefly.",
        finish_reason="stop",
        usage=usage(10, 12, reasoning_tokens=9),
        model="qwen/qwen3-32b",
        id="gen-1754300400-abcDEF",
    ),
    "refusal": reply(
        refusal="I'm sorry, I can't help with that.",
        finish_reason="stop",
        usage=usage(40, 10),
        model="gpt-4o-2024-08-06",
        id="chatcmpl-BxT4refusal",
    ),
    "azure_empty_first": reply(
        text="Azure says hi.",
        finish_reason="stop",
        usage=usage(11, 4),
        model="gpt-4o-2024-11-20",
        id="chatcmpl-AzureFirstEmpty",
    ),
    "comments_keepalive": reply(
        text="one two", finish_reason="length", model="local-model", id="chatcmpl-crlf"
    ),
    "done_missing_finished": reply(
        text="Done without a marker.",
        finish_reason="stop",
        usage=usage(6, 4),
        model="qwen2.5-7b-instruct-q4_k_m.gguf",
        id="chatcmpl-llamacpp-nodone",
    ),
}


# -- complete streams ----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_a_complete_stream_assembles_the_final_reply(name: str) -> None:
    async with openai_client(serving(name)) as client:
        chunks, final = await run(client)
    assert final == EXPECTED[name]
    assert all(isinstance(chunk, StreamChunk) for chunk in chunks)
    assert "".join(chunk.text for chunk in chunks) == final.text
    assert "".join(chunk.reasoning or "" for chunk in chunks) == (final.reasoning or "")
    assert "".join(chunk.refusal or "" for chunk in chunks) == (final.refusal or "")
    assert [chunk.finish_reason for chunk in chunks if chunk.finish_reason] == [final.finish_reason]


async def test_the_chunks_of_a_plain_text_stream() -> None:
    async with openai_client(serving("text")) as client:
        chunks, _ = await run(client)
    seen = [(c.role, c.text, c.finish_reason, c.usage) for c in chunks]
    assert seen == [
        ("assistant", "", None, None),
        (None, "Héllo", None, None),
        (None, " 👋 there", None, None),
        (None, "! How can", None, None),
        (None, " I help?", None, None),
        (None, "", "stop", None),
        (None, "", None, usage(9, 8)),  # the usage chunk: `choices: []`
    ]
    assert {c.id for c in chunks} == {"chatcmpl-BxT0q2u9mH4k1sLwZ"}
    assert {c.model for c in chunks} == {"gpt-4o-mini-2024-07-18"}
    assert all(c.tool_calls is None and c.reasoning is None for c in chunks)
    assert chunks[1].raw["choices"][0]["delta"] == {"content": "Héllo"}


async def test_tool_call_fragments_arrive_as_deltas_and_are_joined_by_index() -> None:
    async with openai_client(serving("tool_calls_parallel")) as client:
        chunks, final = await run(client)
    deltas = [delta for chunk in chunks for delta in chunk.tool_calls or ()]
    assert deltas == [
        ToolCallDelta(index=0, id="call_Paris01", name="get_weather", arguments=""),
        ToolCallDelta(index=0, arguments='{"ci'),
        ToolCallDelta(index=0, arguments='ty": "Pa'),
        ToolCallDelta(index=1, id="call_Tokyo02", name="get_weather", arguments=""),
        ToolCallDelta(index=0, arguments='ris"}'),
        ToolCallDelta(index=1, arguments='{"city": '),
        ToolCallDelta(index=1, arguments='"Tōkyō", "unit": "c"}'),
    ]
    assert [c.parsed_arguments for c in final.tool_calls] == [
        {"city": "Paris"},
        {"city": "Tōkyō", "unit": "c"},
    ]
    assert final.text == "" and final.finish_reason == "tool_calls"
    # The reply can go straight back into the conversation.
    assert final.message.tool_calls == final.tool_calls


async def test_invalid_tool_arguments_are_kept_as_text() -> None:
    events = [
        {
            "index": 0,
            "id": "call_x",
            "type": "function",
            "function": {"name": "f", "arguments": ""},
        },
        {"index": 0, "function": {"arguments": '{"a": '}},
    ]
    body = b"".join(
        b"data: "
        + json.dumps({"id": "c", "choices": [{"index": 0, "delta": {"tool_calls": [e]}}]}).encode()
        + b"\n\n"
        for e in events
    )
    body += b'data: {"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}\n\n'
    async with openai_client(Server(lambda r: sse([body]))) as client:
        _, final = await run(client)
    assert final.tool_calls == (
        ToolCall(id="call_x", name="f", arguments='{"a": ', parsed_arguments=None),
    )


@pytest.mark.parametrize("name", ["text", "tool_calls_parallel"])
async def test_one_byte_per_network_read_gives_the_same_chunks(name: str) -> None:
    data = fixture(name)
    async with openai_client(serving(name)) as client:
        expected_chunks, expected_final = await run(client)
    one_byte = Server(lambda request: sse(data[i : i + 1] for i in range(len(data))))
    async with openai_client(one_byte) as client:
        chunks, final = await run(client)
    assert chunks == expected_chunks
    assert final == expected_final == EXPECTED[name]


async def test_every_two_piece_split_of_a_crlf_stream_gives_the_same_reply() -> None:
    data = fixture("comments_keepalive")
    cut = len(data)
    server = Server(lambda request: sse([data[:cut], data[cut:]]))
    async with openai_client(server) as client:
        expected_chunks, _ = await run(client)
        for cut in range(len(data) + 1):  # the server above reads the current `cut`
            chunks, final = await run(client)
            assert chunks == expected_chunks, f"split at {cut}"
            assert final == EXPECTED["comments_keepalive"]


async def test_empty_choices_and_comments_yield_no_chunks() -> None:
    async with openai_client(serving("azure_empty_first")) as client:
        chunks, _ = await run(client)
    # Azure's prompt-filter chunk (no choices, no usage) is skipped; its async content-filter
    # chunk (a choice without a delta) is an empty chunk; the usage chunk carries usage only.
    assert [(c.role, c.text, c.finish_reason) for c in chunks] == [
        ("assistant", "", None),
        (None, "Azure", None),
        (None, " says hi.", None),
        (None, "", "stop"),
        (None, "", None),
        (None, "", None),
    ]
    assert chunks[-1].usage == usage(11, 4)


# -- what is sent ----------------------------------------------------------------------------


async def test_a_stream_asks_for_usage_where_the_preset_supports_it() -> None:
    server = serving("text")
    async with openai_client(server) as client:
        await run(client, temperature=0.5, max_tokens=10)
    body = server.bodies[0]
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["temperature"] == 0.5


async def test_a_preset_without_stream_usage_does_not_send_stream_options() -> None:
    server = serving("comments_keepalive")
    provider = llmrelay.Provider(
        name="nousage",
        adapter=openai_adapter,
        base_url="https://llm.example/v1",
        key_required=False,
        stream_usage=False,
    )
    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(server)) as http,
        AsyncClient(provider, model="m", http_client=http) as client,
    ):
        _, final = await run(client)
    assert server.bodies[0]["stream"] is True
    assert "stream_options" not in server.bodies[0]
    assert final.usage is None and final.provider == "nousage"


# -- failures are typed and loud -------------------------------------------------------------

# fixture -> (cause type, status, partial text, retryable, words of the provider's message)
ERRORS: dict[str, tuple[type[APIStatusError], int, str, bool, str]] = {
    "error_event": (InternalServerError, 500, "Partial answer", True, "Sorry about that"),
    "error_openrouter": (InternalServerError, 502, "Once upon", True, "Provider disconnected"),
    "error_rate_limit": (RateLimitError, 429, "Hel", True, "Rate limit reached"),
    "error_vllm": (BadRequestError, 400, "", False, "maximum context length"),
}


@pytest.mark.parametrize("name", sorted(ERRORS))
async def test_an_error_inside_the_stream_raises_stream_error_with_a_typed_cause(
    name: str,
) -> None:
    cause_type, status, partial, retryable, words = ERRORS[name]
    errors: list[LLMError] = []
    received: list[str] = []
    async with openai_client(serving(name)) as client:
        stream = client.stream("hi", on_error=errors.append)
        with pytest.raises(StreamError) as info:
            async with stream:
                async for chunk in stream:
                    received.append(chunk.text)
        with pytest.raises(StreamError) as again:
            await stream.final()
    error = info.value
    assert type(error.__cause__) is cause_type
    assert isinstance(error.__cause__, APIStatusError)
    assert error.__cause__.status_code == status
    assert words in str(error) and words in str(error.__cause__)
    assert "openai" in str(error)
    assert error.partial == partial == "".join(received) == stream.text
    assert error.retryable is retryable
    assert error.request_id == REQUEST_ID
    assert errors == [error] and again.value is error


async def test_a_stream_without_end_marker_or_finish_reason_is_an_error_not_a_short_answer() -> (
    None
):
    completed: list[ChatResponse] = []
    async with openai_client(serving("truncated")) as client:
        stream = client.stream("hi", on_complete=completed.append)
        texts = []
        with pytest.raises(StreamError) as info:
            async for chunk in stream:
                texts.append(chunk.text)
    error = info.value
    assert error.partial == "The answer is definitely" == "".join(texts)
    assert error.retryable is True
    assert error.__cause__ is None
    assert "ended before the reply was complete" in str(error)
    assert completed == []


def _events(name: str, count: int) -> list[bytes]:
    return split_events(fixture(name))[:count]


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadError("[Errno 104] Connection reset by peer"),
        httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
        httpx.ReadTimeout("The read operation timed out"),
    ],
    ids=["reset", "protocol", "read-timeout"],
)
async def test_a_transport_error_mid_stream_is_wrapped(failure: Exception) -> None:
    server = Server(lambda request: sse([*_events("text", 3), failure]))
    async with openai_client(server) as client:
        texts = []
        with pytest.raises(StreamError) as info:
            async for chunk in client.stream("hi"):
                texts.append(chunk.text)
    error = info.value
    assert isinstance(error.__cause__, APIConnectionError)
    assert isinstance(error.__cause__, APITimeoutError) == isinstance(failure, httpx.ReadTimeout)
    assert error.__cause__.__cause__ is failure  # the httpx error stays reachable, never raised
    assert error.partial == "Héllo 👋 there" == "".join(texts)
    assert error.retryable is True


async def test_an_undecodable_body_is_wrapped_too() -> None:
    body = b"this is not gzip data"
    server = Server(lambda request: sse([body], headers={"content-encoding": "gzip"}))
    async with openai_client(server) as client:
        with pytest.raises(StreamError) as info:
            async for _ in client.stream("hi"):
                pass
    assert isinstance(info.value.__cause__, LLMError)


async def test_an_event_that_is_not_json_is_a_response_error_cause() -> None:
    body = [*_events("text", 2), b"data: {not json\n\n", *_events("text", 8)[2:]]
    async with openai_client(Server(lambda request: sse(body))) as client:
        with pytest.raises(StreamError) as info:
            async for _ in client.stream("hi"):
                pass
    assert type(info.value.__cause__) is ResponseError
    assert info.value.retryable is False
    assert info.value.partial == "Héllo"


@pytest.mark.parametrize(
    ("body", "cause_type"),
    [
        ({"error": {"message": "Quota exceeded", "type": "insufficient_quota"}}, RateLimitError),
        ({"error": {"message": "No such model", "type": "invalid_request_error"}}, BadRequestError),
        (
            {"object": "error", "message": "boom", "type": "InternalServerError", "code": 500},
            InternalServerError,
        ),
    ],
)
async def test_a_json_error_body_with_status_200_is_a_typed_stream_error(
    body: dict[str, Any], cause_type: type[APIStatusError]
) -> None:
    server = Server(
        lambda request: httpx.Response(200, json=body, headers={"x-request-id": REQUEST_ID})
    )
    async with openai_client(server) as client:
        with pytest.raises(StreamError) as info:
            async for _ in client.stream("hi"):
                pass
    assert type(info.value.__cause__) is cause_type
    assert info.value.partial == ""
    assert info.value.request_id == REQUEST_ID


async def test_a_whole_json_reply_to_a_stream_request_is_one_chunk() -> None:
    # Some servers ignore `stream: true` and answer with the complete JSON reply.
    server = Server(
        lambda request: httpx.Response(
            200, json=COMPLETIONS["text"], headers={"x-request-id": REQUEST_ID}
        )
    )
    async with openai_client(server) as client:
        chunks, final = await run(client)
        same = await client.chat("hi")
    assert [c.text for c in chunks] == [EXPECTED["text"].text]
    assert final == EXPECTED["text"] == same


async def test_an_error_status_before_the_stream_raises_the_status_error_itself() -> None:
    body = {
        "error": {
            "message": "Incorrect API key provided",
            "type": "invalid_request_error",
            "code": "invalid_api_key",
        }
    }
    server = Server(lambda request: httpx.Response(401, json=body))
    errors: list[LLMError] = []
    async with openai_client(server) as client:
        with pytest.raises(AuthenticationError) as info:
            async with client.stream("hi", on_error=errors.append) as stream:
                async for _ in stream:
                    pass
    assert errors == [info.value]
    assert "Incorrect API key provided" in str(info.value)


async def test_the_key_is_not_in_an_echoing_stream_error() -> None:
    event = {"error": {"message": f"bad key {KEY}", "type": "server_error"}}
    body = [*_events("text", 2), f"data: {json.dumps(event)}\n\n".encode()]
    async with openai_client(Server(lambda request: sse(body))) as client:
        with pytest.raises(StreamError) as info:
            async for _ in client.stream("hi"):
                pass
    assert "bad key" in str(info.value)
    seen: BaseException | None = info.value
    while seen is not None:
        assert KEY not in str(seen) and KEY not in repr(seen)
        seen = seen.__cause__ or seen.__context__


# -- callbacks -------------------------------------------------------------------------------


async def test_callbacks_see_every_piece_and_the_final_reply() -> None:
    texts: list[str] = []
    seen: list[StreamChunk] = []
    completed: list[ChatResponse] = []
    errors: list[LLMError] = []
    async with (
        openai_client(serving("text")) as client,
        client.stream(
            "hi",
            on_text=texts.append,
            on_chunk=seen.append,
            on_complete=completed.append,
            on_error=errors.append,
        ) as stream,
    ):
        chunks = [chunk async for chunk in stream]
        final = await stream.final()
    assert "".join(texts) == final.text and "" not in texts
    assert seen == chunks
    assert completed == [final] and completed[0] is final
    assert errors == []


async def test_async_callbacks_are_awaited() -> None:
    texts: list[str] = []
    completed: list[ChatResponse] = []

    async def on_text(text: str) -> None:
        await anyio.lowlevel.checkpoint()
        texts.append(text)

    async def on_complete(final: ChatResponse) -> None:
        completed.append(final)

    async with openai_client(serving("text")) as client:
        final = await client.stream("hi", on_text=on_text, on_complete=on_complete).final()
    assert "".join(texts) == final.text
    assert completed == [final]


async def test_final_alone_reads_the_whole_stream() -> None:
    async with openai_client(serving("reasoning_content")) as client:
        stream = client.stream("hi")
        final = await stream.final()
        assert await stream.final() is final
        assert [c async for c in stream] == []  # nothing left to read
    assert final == EXPECTED["reasoning_content"]
    assert stream.request_id == REQUEST_ID


async def test_usage_totals_count_a_finished_stream() -> None:
    async with openai_client(serving("text")) as client:
        await run(client)
        totals = client.usage
    assert (totals.requests, totals.prompt_tokens, totals.completion_tokens) == (1, 9, 8)
    assert totals.by_model["gpt-4o-mini-2024-07-18"].requests == 1


# -- final() equals chat() -------------------------------------------------------------------


def _completion(expected: ChatResponse, **message: Any) -> dict[str, Any]:
    usage = expected.usage
    assert usage is not None
    return {
        "id": expected.id,
        "object": "chat.completion",
        "created": 1754300000,
        "model": expected.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", **message},
                "finish_reason": expected.finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
            "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        },
    }


# The non-streamed replies the services give for the same answers as the fixtures.
COMPLETIONS: dict[str, dict[str, Any]] = {
    "text": _completion(EXPECTED["text"], content=EXPECTED["text"].text, refusal=None),
    "tool_calls_parallel": _completion(
        EXPECTED["tool_calls_parallel"],
        content=None,
        tool_calls=[c.to_dict() for c in EXPECTED["tool_calls_parallel"].tool_calls],
    ),
    "reasoning_content": _completion(
        EXPECTED["reasoning_content"],
        content=EXPECTED["reasoning_content"].text,
        reasoning_content=EXPECTED["reasoning_content"].reasoning,
    ),
    "refusal": _completion(EXPECTED["refusal"], content=None, refusal=EXPECTED["refusal"].refusal),
}


@pytest.mark.parametrize("name", sorted(COMPLETIONS))
async def test_final_equals_chat_for_the_same_reply(name: str) -> None:
    def respond(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content).get("stream"):
            return sse(split_events(fixture(name)))
        return httpx.Response(200, json=COMPLETIONS[name], headers={"x-request-id": REQUEST_ID})

    async with openai_client(Server(respond)) as client:
        _, final = await run(client)
        same = await client.chat("hi")
    assert final == same


async def test_final_equals_chat_on_the_mock() -> None:
    # The mock names a reply after its idempotency key, so the same key gives the same id.
    same_key = {"idempotency-key": "one-logical-request"}
    async with AsyncClient(provider="mock") as client:
        async with client.stream("tell me a story", extra_headers=same_key) as stream:
            final = await stream.final()
        chat = await client.chat("tell me a story", extra_headers=same_key)
        other = await client.chat("tell me a story")
    assert final.request_id and chat.request_id  # attempt 1 and 2 of that key: they differ
    assert dataclasses.replace(final, request_id=None) == dataclasses.replace(chat, request_id=None)
    assert final.text == "echo: tell me a story" and final.usage is not None
    assert other.id != chat.id  # a fresh key is a fresh reply id


# -- the sync facade -------------------------------------------------------------------------


def test_sync_and_async_streams_give_identical_chunks() -> None:
    headers = {"idempotency-key": "same-request", "x-mock-chunks": "5"}

    async def async_side() -> tuple[list[StreamChunk], ChatResponse]:
        async with (
            AsyncClient(provider="mock") as client,
            client.stream("sync or async", extra_headers=headers) as stream,
        ):
            return [c async for c in stream], await stream.final()

    async_chunks, async_final = anyio.run(async_side)
    with (
        llmrelay.Client(provider="mock") as client,
        client.stream("sync or async", extra_headers=headers) as stream,
    ):
        sync_chunks = list(stream)
        sync_final = stream.final()
        assert stream.text == sync_final.text
    assert sync_chunks == async_chunks
    assert [c.raw for c in sync_chunks] == [c.raw for c in async_chunks]
    assert sync_final == async_final
    assert len([c for c in sync_chunks if c.text]) == 5


def test_a_sync_stream_raises_the_same_typed_errors() -> None:
    with llmrelay.Client(provider="mock") as client:
        stream = client.stream(
            "one two three four", extra_headers={"x-mock-fault": "error-event;after=2"}
        )
        texts = []
        with pytest.raises(StreamError) as info, stream:
            for chunk in stream:
                texts.append(chunk.text)
        with pytest.raises(StreamError):
            stream.final()
    assert isinstance(info.value.__cause__, InternalServerError)
    assert info.value.partial == "".join(texts) == "echo: one "


def test_sync_callbacks_run_and_see_the_final_reply() -> None:
    texts: list[str] = []
    completed: list[ChatResponse] = []
    with llmrelay.Client(provider="mock") as client:
        chunks: Sequence[StreamChunk] = list(
            client.stream("callbacks", on_text=texts.append, on_complete=completed.append)
        )
    assert "".join(texts) == "".join(c.text for c in chunks) == "echo: callbacks"
    assert [c.text for c in completed] == ["echo: callbacks"]


def test_a_sync_stream_runs_on_the_clients_loop_thread() -> None:
    threads: set[int] = set()
    with llmrelay.Client(provider="mock") as client:
        stream = client.stream("where", on_chunk=lambda chunk: threads.add(threading.get_ident()))
        assert isinstance(stream, llmrelay.SyncStream)
        assert repr(stream) == "<SyncStream mock model='mock-echo' not started>"
        assert stream.final().text == "echo: where"
        assert stream.request_id is not None
    assert len(threads) == 1 and threading.get_ident() not in threads
