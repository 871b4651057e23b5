"""Recorded-style replies of OpenAI-compatible services (``fixtures/compat``, ``fixtures/openai``)
through the real client: each stream's `final()` equals `chat()` of the same reply, whatever the
service's quirk (reasoning field, usage place, missing ``[DONE]``), and errors after the 200
are typed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from llmrelay import (
    AsyncClient,
    BadRequestError,
    ChatResponse,
    InternalServerError,
    StreamError,
    ToolCall,
    Usage,
)

from ._helpers import FakeServer, client_over

FIXTURES = Path(__file__).parent / "fixtures"
KEY = "sk-preset-test-0123456789"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OLLAMA_HOST", raising=False)  # conftest clears only keys and URLs


def client_for(provider: str, wire: FakeServer, **kwargs: Any) -> AsyncClient:
    return client_over(wire, provider=provider, max_retries=0, **kwargs)


# (preset, fixture, what the user should see)
STREAMS: list[tuple[str, str, ChatResponse]] = [
    (
        "deepseek",
        "compat/deepseek_reasoning",
        ChatResponse(
            text="The capital is Paris.",
            finish_reason="stop",
            usage=Usage(
                prompt_tokens=76,
                completion_tokens=21,
                total_tokens=97,
                cached_tokens=64,
                reasoning_tokens=12,
            ),
            model="deepseek-reasoner",
            id="5b1e0c2a-7f6d-4a8e-9c3b-2d4f6a8b0c1e",
            reasoning="The user asks for the capital of France.",
            provider="deepseek",
        ),
    ),
    (
        "moonshot",
        "compat/moonshot_usage_in_choice",
        ChatResponse(
            text="Hello, how can I help?",
            finish_reason="stop",
            usage=Usage(
                prompt_tokens=1032, completion_tokens=7, total_tokens=1039, cached_tokens=1024
            ),
            model="kimi-k2-0905-preview",
            id="chatcmpl-68105672a7e0c1b4630dccb1",
            provider="moonshot",
        ),
    ),
    (
        "openrouter",
        "compat/openrouter_reasoning",
        ChatResponse(
            text="42",
            finish_reason="stop",
            usage=Usage(prompt_tokens=14, completion_tokens=9, total_tokens=23, reasoning_tokens=7),
            model="deepseek/deepseek-r1",
            id="gen-1745901170-Qm3kR8sTz0aWbXcYdEfG",
            reasoning="Six times seven is 42.",
            provider="openrouter",
        ),
    ),
    (
        "groq",
        "compat/groq_x_groq_usage",
        ChatResponse(
            text="",
            finish_reason="tool_calls",
            usage=Usage(prompt_tokens=218, completion_tokens=43, total_tokens=261),
            tool_calls=(
                ToolCall(
                    id="call_8k2x",
                    name="get_weather",
                    arguments='{"city":"Paris"}',
                    parsed_arguments={"city": "Paris"},
                ),
                ToolCall(
                    id="call_3m7q",
                    name="get_weather",
                    arguments='{"city":"Oslo"}',
                    parsed_arguments={"city": "Oslo"},
                ),
            ),
            model="llama-3.3-70b-versatile",
            id="chatcmpl-e7f8e220-656c-4455-a132-dacfc1370798",
            provider="groq",
        ),
    ),
    (
        "vllm",
        "compat/vllm_reasoning",
        ChatResponse(
            text="1, 2, 3",
            finish_reason="stop",
            usage=Usage(prompt_tokens=11, completion_tokens=13, total_tokens=24),
            model="Qwen/Qwen3-8B",
            id="chatcmpl-9f1c3e5a7b9d4f6e8a0c2e4f6a8b0c2d",
            reasoning="Count to three.",
            provider="vllm",
        ),
    ),
    (
        "ollama",
        "openai/no_done_with_finish",
        ChatResponse(
            text="Done without a marker.",
            finish_reason="stop",
            model="qwen2.5-7b-instruct-q4_k_m.gguf",
            id="chatcmpl-llamacpp-7QpXk2",
            provider="ollama",
        ),
    ),
]


@pytest.mark.parametrize(("name", "fixture", "expected"), STREAMS, ids=[s[1] for s in STREAMS])
async def test_recorded_stream_gives_the_same_reply_as_chat(
    name: str, fixture: str, expected: ChatResponse
) -> None:
    wire = FakeServer(
        sse=(FIXTURES / f"{fixture}.sse").read_bytes(),
        reply=json.loads((FIXTURES / f"{fixture}.json").read_text()),
    )
    async with client_for(name, wire, api_key=KEY) as client:
        async with client.stream("hi", model="m") as stream:
            chunks = [chunk async for chunk in stream]
            final = await stream.final()
        reply = await client.chat("hi", model="m")
    assert final == expected
    assert reply == final
    assert "".join(c.text for c in chunks) == expected.text
    assert "".join(c.reasoning or "" for c in chunks) == (expected.reasoning or "")
    prompt = expected.usage.prompt_tokens if expected.usage else 0
    assert client.usage.prompt_tokens == 2 * prompt  # the stream's usage was counted too


@pytest.mark.parametrize(
    ("name", "fixture", "cause", "status", "message", "partial"),
    [
        (
            "openrouter",
            "compat/openrouter_midstream_error",
            InternalServerError,
            500,
            "Provider disconnected unexpectedly",
            "Once upon a time",
        ),
        (
            "vllm",
            "compat/vllm_midstream_error",
            BadRequestError,
            400,
            "maximum context length is 32768 tokens",
            "Sure, here",
        ),
    ],
)
async def test_an_error_after_the_200_is_a_stream_error_with_a_typed_cause(
    name: str,
    fixture: str,
    cause: type[Exception],
    status: int,
    message: str,
    partial: str,
) -> None:
    wire = FakeServer(sse=(FIXTURES / f"{fixture}.sse").read_bytes())
    seen: list[str] = []
    async with client_for(name, wire, api_key=KEY) as client:
        with pytest.raises(StreamError) as info:
            async for chunk in client.stream("tell me a story", model="m"):
                seen.append(chunk.text)
    error = info.value
    assert isinstance(error.__cause__, cause)
    assert error.__cause__.status_code == status  # type: ignore[attr-defined]
    assert message in str(error)
    assert error.partial == partial == "".join(seen)


async def test_a_stream_with_neither_done_nor_finish_reason_is_cut_short() -> None:
    wire = FakeServer(sse=(FIXTURES / "openai" / "truncated.sse").read_bytes())
    async with client_for("vllm", wire) as client:
        stream = client.stream("hi", model="m")
        with pytest.raises(StreamError, match="ended before the reply was complete") as info:
            await stream.final()
    assert info.value.partial == "This reply is cut off"
    assert info.value.retryable is True


@pytest.mark.parametrize(
    ("name", "body", "error"),
    [
        (
            "vllm",
            {"object": "error", "message": "bad input", "type": "BadRequestError", "code": 400},
            BadRequestError,
        ),
        (
            "openrouter",
            {"error": {"code": 502, "message": "Provider returned error", "metadata": {}}},
            InternalServerError,
        ),
    ],
)
async def test_an_error_object_in_a_200_body_raises_the_typed_error(
    name: str, body: dict[str, Any], error: type[Exception]
) -> None:
    wire = FakeServer(reply=body)
    async with client_for(name, wire, api_key=KEY) as client:
        with pytest.raises(error) as info:
            await client.chat("hi", model="m")
    assert str(body.get("message") or body["error"]["message"]) in str(info.value)
