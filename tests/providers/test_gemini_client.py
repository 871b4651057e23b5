"""The Gemini adapter through the real `AsyncClient`: recorded-style SSE fixtures, the error
table with RetryInfo, and an end-to-end run against the embedded mock's Gemini face.

Tests run on trio's MockClock, so `anyio.current_time()` is virtual: a retry that waits the
server's `retryDelay` is measured exactly and costs no real time.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

import llmrelay
from llmrelay import (
    APIStatusError,
    BadRequestError,
    ChatResponse,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    StreamChunk,
    StreamError,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from llmrelay.mock import MockTransport as MockEngineTransport

pytestmark = pytest.mark.anyio

FIXTURES = Path(__file__).parent / "fixtures" / "gemini"
KEY = "g-test"
MODEL = "gemini-2.5-flash"
BASE = "https://generativelanguage.googleapis.com/v1beta"
Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    import trio.testing

    return ("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})


def fixture_events(name: str) -> list[dict[str, Any]]:
    raw = (FIXTURES / name).read_text("utf-8").replace("\r\n", "\n")
    return [json.loads(block.removeprefix("data: ")) for block in raw.split("\n\n") if block]


def merged_reply(name: str) -> dict[str, Any]:
    """The non-streamed `generateContent` reply for the same answer as a stream fixture: the
    parts of every chunk in order, the last finish reason and the last (cumulative) usage."""
    events = fixture_events(name)
    parts: list[Any] = []
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    out: dict[str, Any] = {}
    for event in events:
        for key in ("promptFeedback", "usageMetadata", "modelVersion", "responseId"):
            if key in event:
                out[key] = event[key]
        for cand in event.get("candidates", []):
            out["candidates"] = [candidate]
            parts.extend(cand["content"]["parts"])
            if "finishReason" in cand:
                candidate["finishReason"] = cand["finishReason"]
    return out


async def trickle(data: bytes, size: int = 7) -> AsyncIterator[bytes]:
    """The body in small pieces, split anywhere (inside JSON, inside CRLF pairs)."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


class FakeGemini:
    """Serves one fixture: the SSE file to `:streamGenerateContent`, its merged reply to
    `:generateContent`. Keeps the requests so tests can check the URL and headers sent."""

    def __init__(self, fixture: str) -> None:
        self.fixture = fixture
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path.endswith(":streamGenerateContent"):
            body = (FIXTURES / self.fixture).read_bytes()
            return httpx.Response(
                200, headers={"content-type": "text/event-stream"}, content=trickle(body)
            )
        if request.url.path.endswith(":generateContent"):
            return httpx.Response(200, json=merged_reply(self.fixture))
        return httpx.Response(404, json={"error": {"code": 404, "message": "no route"}})


@asynccontextmanager
async def gemini_client(handler: Handler, **options: Any) -> AsyncIterator[llmrelay.AsyncClient]:
    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http,
        llmrelay.AsyncClient(provider="gemini", api_key=KEY, http_client=http, **options) as client,
    ):
        yield client


async def stream_and_chat(fixture: str) -> tuple[list[StreamChunk], ChatResponse, ChatResponse]:
    """(chunks, stream.final(), chat()) for one fixture, after checking what went on the wire."""
    server = FakeGemini(fixture)
    async with gemini_client(server) as client:
        async with client.stream("Why is the sky blue?", model=MODEL) as stream:
            chunks = [chunk async for chunk in stream]
            final = await stream.final()
        reply = await client.chat("Why is the sky blue?", model=MODEL)
    streamed, plain = server.requests
    assert str(streamed.url) == f"{BASE}/models/{MODEL}:streamGenerateContent?alt=sse"
    assert str(plain.url) == f"{BASE}/models/{MODEL}:generateContent"
    for sent in server.requests:
        assert sent.headers["x-goog-api-key"] == KEY
        assert "authorization" not in sent.headers
        assert KEY not in str(sent.url) and "key=" not in str(sent.url)
        assert json.loads(sent.content)["contents"] == [
            {"role": "user", "parts": [{"text": "Why is the sky blue?"}]}
        ]
    assert final == reply
    return chunks, final, reply


# -- streams from recorded-style fixtures --------------------------------------------------------


async def test_text_stream_with_cumulative_usage() -> None:
    chunks, final, _ = await stream_and_chat("text.sse")
    assert [c.text for c in chunks] == ["The sky ", "is blue because of ", "Rayleigh scattering."]
    assert [c.finish_reason for c in chunks] == [None, None, "stop"]
    assert [c.usage.total_tokens if c.usage else None for c in chunks] == [11, 15, 19]
    assert final.text == "The sky is blue because of Rayleigh scattering."
    assert final.usage == Usage(prompt_tokens=9, completion_tokens=10, total_tokens=19)
    assert (final.id, final.model, final.provider) == ("resp-text-1", MODEL, "gemini")


async def test_function_call_stream() -> None:
    chunks, final, _ = await stream_and_chat("function_call.sse")
    assert chunks[0].text == "Let me check both cities."
    assert chunks[1].tool_calls == (
        ToolCallDelta(
            index=0,
            id="call_0",
            name="get_weather",
            arguments='{"city": "Paris", "unit": "celsius"}',
        ),
        ToolCallDelta(
            index=1, id="fc-server-7", name="get_weather", arguments='{"city": "Zürich"}'
        ),
    )
    assert chunks[1].reasoning_signature == "c2lnLWZjLTE="
    assert final.finish_reason == "tool_calls"
    assert final.tool_calls == (
        ToolCall(
            id="call_0",
            name="get_weather",
            arguments='{"city": "Paris", "unit": "celsius"}',
            parsed_arguments={"city": "Paris", "unit": "celsius"},
        ),
        ToolCall(
            id="fc-server-7",
            name="get_weather",
            arguments='{"city": "Zürich"}',
            parsed_arguments={"city": "Zürich"},
        ),
    )
    assert final.usage == Usage(
        prompt_tokens=40, completion_tokens=55, total_tokens=95, reasoning_tokens=25
    )


async def test_thought_parts_and_signature() -> None:
    chunks, final, _ = await stream_and_chat("thoughts.sse")
    assert [c.reasoning for c in chunks] == [
        "**Weighing the options**\nThe user wants a prime.",
        " Seven fits.",
        None,
        None,
    ]
    assert [c.text for c in chunks] == ["", "", "7 is prime.", ""]
    assert chunks[-1].reasoning_signature == "dGhvdWdodC1zaWctOTk="
    assert final.reasoning == "**Weighing the options**\nThe user wants a prime. Seven fits."
    assert final.reasoning_signature == "dGhvdWdodC1zaWctOTk="
    assert final.usage == Usage(
        prompt_tokens=12,
        completion_tokens=62,
        total_tokens=74,
        cached_tokens=8,
        reasoning_tokens=58,
    )


async def test_blocked_prompt_in_chat_and_stream() -> None:
    async with gemini_client(FakeGemini("blocked.sse")) as client:
        with pytest.raises(BadRequestError) as chat_info:
            await client.chat("something bad", model=MODEL)
        stream = client.stream("something bad", model=MODEL)
        with pytest.raises(StreamError) as stream_info:
            await stream.final()
    assert chat_info.value.code == "prompt_blocked"
    assert "prompt blocked: PROHIBITED_CONTENT" in str(chat_info.value)
    cause = stream_info.value.__cause__
    assert isinstance(cause, BadRequestError) and cause.code == "prompt_blocked"
    assert not stream_info.value.retryable


async def test_error_inside_the_stream() -> None:
    received: list[str] = []
    async with gemini_client(FakeGemini("error.sse")) as client:
        with pytest.raises(StreamError) as info:
            async for chunk in client.stream("Tell a story", model=MODEL):
                received.append(chunk.text)
    assert received == ["Once upon "]
    err = info.value
    assert (err.partial, err.retryable, err.provider) == ("Once upon ", True, "gemini")
    assert "overloaded" in str(err)
    assert isinstance(err.__cause__, InternalServerError)
    assert (err.__cause__.status_code, err.__cause__.code) == (503, "UNAVAILABLE")


async def test_stream_cut_before_finish_reason_is_truncated() -> None:
    async with gemini_client(FakeGemini("truncated.sse")) as client:
        stream = client.stream("Count", model=MODEL)
        with pytest.raises(StreamError, match="ended before the reply was complete") as info:
            await stream.final()
    assert info.value.partial == "Counting: one, two, "
    assert info.value.retryable


# -- HTTP errors and RetryInfo -------------------------------------------------------------------


def google_error(status: int, name: str, message: str, delay: str | None = None) -> httpx.Response:
    error: dict[str, Any] = {"code": status, "message": message, "status": name}
    if delay is not None:
        error["details"] = [
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}
        ]
    return httpx.Response(status, json={"error": error})


def ok() -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "candidates": [
                {"content": {"role": "model", "parts": [{"text": "ok"}]}, "finishReason": "STOP"}
            ],
            "responseId": "resp-ok",
        },
    )


@pytest.mark.parametrize(
    ("status", "name", "cls", "retry_after"),
    [
        (400, "INVALID_ARGUMENT", BadRequestError, None),
        (403, "PERMISSION_DENIED", PermissionDeniedError, None),
        (404, "NOT_FOUND", NotFoundError, None),
        (429, "RESOURCE_EXHAUSTED", RateLimitError, 2.0),
        (500, "INTERNAL", InternalServerError, None),
        (503, "UNAVAILABLE", InternalServerError, None),
    ],
)
async def test_error_table(
    status: int, name: str, cls: type[APIStatusError], retry_after: float | None
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        delay = "2s" if status == 429 else None
        return google_error(status, name, f"upstream says {name.lower()}", delay)

    async with gemini_client(handler, max_retries=0) as client:
        with pytest.raises(APIStatusError) as info:
            await client.chat("hi", model=MODEL)
    err = info.value
    assert type(err) is cls
    assert (err.status_code, err.code, err.provider) == (status, name, "gemini")
    assert err.retry_after == retry_after
    assert f"upstream says {name.lower()}" in str(err)
    assert KEY not in str(err)


@pytest.mark.parametrize("streaming", [False, True], ids=["chat", "stream"])
async def test_retry_waits_exactly_the_retry_delay(streaming: bool) -> None:
    replies = [google_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded", "2s")]

    def handler(request: httpx.Request) -> httpx.Response:
        if replies:
            return replies.pop(0)
        if streaming:
            return httpx.Response(200, content=(FIXTURES / "text.sse").read_bytes())
        return ok()

    async with gemini_client(handler, max_retries=2) as client:
        started = anyio.current_time()
        if streaming:
            text = (await client.stream("hi", model=MODEL).final()).text
        else:
            text = (await client.chat("hi", model=MODEL)).text
        elapsed = anyio.current_time() - started
        retries = client.usage.retries
    assert elapsed == 2.0
    assert retries == 1
    assert text == ("The sky is blue because of Rayleigh scattering." if streaming else "ok")


async def test_retry_after_header_wins_over_retry_info() -> None:
    replies = [google_error(429, "RESOURCE_EXHAUSTED", "slow down", "5s")]
    replies[0].headers["retry-after"] = "1"

    def handler(request: httpx.Request) -> httpx.Response:
        return replies.pop(0) if replies else ok()

    async with gemini_client(handler) as client:
        started = anyio.current_time()
        await client.chat("hi", model=MODEL)
        assert anyio.current_time() - started == 1.0


async def test_retry_delay_above_the_cap_fails_at_once() -> None:
    """A daily quota answers with a long retryDelay: the call fails now, with the wait in
    `.retry_after`, instead of sleeping for it."""

    def handler(request: httpx.Request) -> httpx.Response:
        return google_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded per day", "3600s")

    async with gemini_client(handler, max_retries=5) as client:
        started = anyio.current_time()
        with pytest.raises(RateLimitError) as info:
            await client.chat("hi", model=MODEL)
        assert anyio.current_time() - started == 0.0
        assert client.usage.retries == 0
    assert info.value.retry_after == 3600.0


# -- end to end against the embedded mock's Gemini face ------------------------------------------


async def test_mock_engine_end_to_end() -> None:
    async with (
        httpx.AsyncClient(transport=MockEngineTransport()) as http,
        llmrelay.AsyncClient(
            provider="gemini", api_key=KEY, base_url="http://mock.test/v1beta", http_client=http
        ) as client,
    ):
        reply = await client.chat("Hello there, Gemini", model="mock-echo")
        assert reply.text == "echo: Hello there, Gemini"
        assert reply.finish_reason == "stop"
        assert reply.provider == "gemini" and reply.model == "mock-echo"
        assert reply.id is not None and reply.id.startswith("mock-")

        async with client.stream(
            "Hello there, Gemini", model="mock-echo", extra_headers={"x-mock-chunks": "3"}
        ) as stream:
            texts = [chunk.text async for chunk in stream]
            final = await stream.final()
        assert len(texts) == 3 and "".join(texts) == reply.text
        assert (final.text, final.finish_reason, final.usage) == (
            reply.text,
            "stop",
            reply.usage,
        )

        limited = await client.chat("short", model="mock-echo", max_tokens=1)
        assert (limited.text, limited.finish_reason) == ("echo: ", "length")

        one = await client.embed("alpha", model="mock-embed")
        both = await client.embed(["alpha", "beta"], model="mock-embed")
        assert len(one.vectors) == 1 and len(both.vectors) == 2
        assert both.vectors[0] == one.vectors[0] != both.vectors[1]

        assert "mock-echo" in [m.id for m in await client.models()]

        started = anyio.current_time()
        retried = await client.chat(
            "again",
            model="mock-echo",
            extra_headers={"x-mock-fault": "429;retry-after=0.01;times=1"},
        )
        assert anyio.current_time() - started == pytest.approx(0.01)
        assert retried.text == "echo: again"
        assert client.usage.retries == 1


# -- keys ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "sent"),
    [
        ({"GOOGLE_API_KEY": "g-google"}, "g-google"),
        ({"GEMINI_API_KEY": "g-gemini", "GOOGLE_API_KEY": "g-google"}, "g-gemini"),
    ],
)
async def test_key_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], sent: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["x-goog-api-key"])
        return ok()

    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http,
        llmrelay.AsyncClient(provider="gemini", http_client=http) as client,
    ):
        assert (await client.chat("hi", model=MODEL)).text == "ok"
    assert seen == [sent]


def test_missing_key_names_both_env_vars() -> None:
    with pytest.raises(llmrelay.ConfigError, match="GEMINI_API_KEY or GOOGLE_API_KEY"):
        llmrelay.AsyncClient(provider="gemini")
