"""What users see when a service sends something the adapters could mistake: odd but readable
shapes are read, unreadable ones are typed errors (never a raw TypeError from deep inside), and
content a service cannot take is refused before anything is sent."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from llmrelay import AsyncClient, ConfigError, ResponseError, StreamError, ToolCall
from llmrelay._request import ChatRequest
from llmrelay.providers import anthropic, gemini, get_provider, openai

from ._helpers import client_over


def sse(*events: Any) -> bytes:
    return b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in events) + b"data: [DONE]\n\n"


def chunk(delta: dict[str, Any], finish: str | None = None, **top: Any) -> dict[str, Any]:
    return {
        "id": "c1",
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **top,
    }


def message_reply(message: dict[str, Any], finish: str = "stop", **top: Any) -> dict[str, Any]:
    return {
        "id": "c1",
        "model": "m",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        **top,
    }


def serving(body: bytes | dict[str, Any]) -> AsyncClient:
    """An OpenAI-family client whose server answers `body` (SSE bytes or a JSON reply)."""

    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(body, bytes):
            return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})
        return httpx.Response(200, json=body)

    return client_over(handler, provider="vllm", model="m", max_retries=0)


# -- OpenAI family: replies ----------------------------------------------------------------------


async def test_tool_call_arguments_sent_as_an_object_are_read_as_json_text() -> None:
    call = {"id": "call_a", "type": "function", "function": {"name": "f", "arguments": {"x": 1}}}
    stream = sse(
        chunk({"role": "assistant", "tool_calls": [{"index": 0, **call}]}),
        chunk({}, "tool_calls"),
    )
    async with serving(stream) as client:
        final = await client.stream("hi").final()
    async with serving(message_reply({"role": "assistant", "tool_calls": [call]})) as client:
        plain = await client.chat("hi")
    expected = (ToolCall(id="call_a", name="f", arguments='{"x": 1}', parsed_arguments={"x": 1}),)
    assert final.tool_calls == plain.tool_calls == expected


async def test_whole_tool_calls_without_an_index_stay_apart() -> None:
    calls = [
        {"index": None, "id": "a", "function": {"name": "f", "arguments": "{}"}},
        {"id": "b", "function": {"name": "g", "arguments": '{"y": 2}'}},
    ]
    stream = sse(chunk({"tool_calls": calls}), chunk({}, "tool_calls"))
    async with serving(stream) as client:
        final = await client.stream("hi").final()
    assert [(c.id, c.name, c.parsed_arguments) for c in final.tool_calls] == [
        ("a", "f", {}),
        ("b", "g", {"y": 2}),
    ]


async def test_an_id_less_tool_call_is_named_the_same_by_chat_and_stream() -> None:
    call = {"type": "function", "function": {"name": "f", "arguments": "{}"}}
    async with serving(message_reply({"role": "assistant", "tool_calls": [call]})) as client:
        plain = await client.chat("hi")
    stream = sse(chunk({"tool_calls": [{"index": 0, **call}]}), chunk({}, "tool_calls"))
    async with serving(stream) as client:
        final = await client.stream("hi").final()
    assert [c.id for c in plain.tool_calls] == [c.id for c in final.tool_calls] == ["call_0"]


async def test_fields_of_the_wrong_type_are_left_out_not_crashed_on() -> None:
    odd = {"model": ["m"], "id": 7}
    message = {"role": "assistant", "content": "ok", "reasoning": {"text": "?"}, "refusal": 1}
    async with serving(message_reply(message, **odd)) as client:
        plain = await client.chat("hi")
        assert client.usage.requests == 1
    assert (plain.text, plain.model, plain.id, plain.reasoning, plain.refusal) == (
        "ok",
        None,
        None,
        None,
        None,
    )
    stream = sse(
        chunk({"content": "o", "reasoning": {"text": "?"}, "refusal": []}, **odd),
        chunk({"content": "k"}, "stop", **odd),
    )
    async with serving(stream) as client:
        final = await client.stream("hi").final()
    assert (final.text, final.model, final.reasoning, final.refusal) == ("ok", None, None, None)


@pytest.mark.parametrize(
    "calls",
    [{"index": 0}, ["not a call"], [{"index": 0, "function": {"name": "f", "arguments": 3}}]],
    ids=["not-a-list", "not-an-object", "numeric-arguments"],
)
async def test_unreadable_tool_call_deltas_are_a_stream_error(calls: Any) -> None:
    async with serving(sse(chunk({"tool_calls": calls}))) as client:
        with pytest.raises(StreamError) as info:
            await client.stream("hi").final()
    assert isinstance(info.value.__cause__, ResponseError)


@pytest.mark.parametrize(
    "calls",
    [{"id": "a"}, [{"id": "a", "function": {"arguments": "{}"}}], [{"function": "f"}]],
    ids=["not-a-list", "no-name", "function-not-an-object"],
)
async def test_unreadable_tool_calls_in_a_reply_are_a_response_error(calls: Any) -> None:
    async with serving(message_reply({"role": "assistant", "tool_calls": calls})) as client:
        with pytest.raises(ResponseError, match="vllm returned an unexpected response"):
            await client.chat("hi")


async def test_base64_embeddings_are_decoded_to_floats() -> None:
    async with AsyncClient(provider="mock") as client:
        plain = await client.embed(["a", "b"], model="mock-embed")
        packed = await client.embed(
            ["a", "b"], model="mock-embed", extra_body={"encoding_format": "base64"}
        )
    assert len(packed.vectors) == 2
    for got, want in zip(packed.vectors, plain.vectors, strict=True):
        assert got == pytest.approx(want, abs=1e-6)


@pytest.mark.parametrize(
    "data",
    [
        {"data": [{"index": 0, "embedding": "not base64!"}]},
        {"data": [{"index": 0, "embedding": {"values": [1]}}]},
        {"data": ["x"]},
    ],
)
def test_unreadable_embeddings_are_response_errors(data: Any) -> None:
    with pytest.raises(ResponseError):
        openai.parse_embed(get_provider("openai"), data, None)


# -- Gemini --------------------------------------------------------------------------------------


def test_a_gemini_quota_detail_of_an_odd_shape_is_read_not_crashed_on() -> None:
    body = {
        "error": {
            "code": 429,
            "message": "Quota exceeded",
            "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": 1}],
        }
    }
    info = gemini.parse_error(gemini.preset(), 429, body)
    assert (info.message, info.code, info.retryable) == (
        "Quota exceeded",
        "RESOURCE_EXHAUSTED",
        None,
    )


@pytest.mark.parametrize("audio", ["UklGRg==", {"format": "mp3"}])
def test_gemini_audio_without_base64_data_is_a_config_error(audio: Any) -> None:
    request = ChatRequest(
        model="gemini-2.5-flash",
        messages=[{"role": "user", "content": [{"type": "input_audio", "input_audio": audio}]}],
        params={},
    )
    with pytest.raises(ConfigError, match="input_audio"):
        gemini.build_chat(gemini.preset(), request)


def test_gemini_and_anthropic_read_data_urls_alike() -> None:
    url = "data:image/png,%89PNG"  # percent-encoded bytes (RFC 2397), no ;base64
    messages = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]
    request = ChatRequest(model="m", messages=messages, params={})
    google = gemini.build_chat(gemini.preset(), request).json["contents"][0]["parts"][0]
    claude = anthropic.build_chat(anthropic.preset(), request).json["messages"][0]["content"][0]
    assert google == {"inlineData": {"mimeType": "image/png", "data": "iVBORw=="}}
    assert claude["source"] == {"type": "base64", "media_type": "image/png", "data": "iVBORw=="}
