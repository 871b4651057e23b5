"""The mock engine with plain dicts: the wire shape of every route, streaming, token counts,
routing and request errors. Injected faults are in `test_faults.py`."""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

import pytest

from llmrelay.mock import Data, MockEngine, Sleep

from ._helpers import (
    ANTHROPIC,
    ANTHROPIC_HEADERS,
    GEMINI,
    OPENAI_CHAT,
    anthropic,
    chat,
    datas,
    error_of,
    events,
    gemini,
    get,
    openai_text,
    post,
)

# --- OpenAI ---------------------------------------------------------------------------------


def test_openai_chat_shape_and_usage() -> None:
    response = post(MockEngine(), OPENAI_CHAT, chat())
    assert response.status == 200
    assert response.steps is None
    assert response.header("content-type") == "application/json"
    assert (response.header("x-request-id") or "").startswith("req_mock_")
    body = response.json()
    assert body["id"].startswith("chatcmpl-mock-")
    assert body["object"] == "chat.completion"
    assert body["created"] == 1_700_000_000
    assert body["model"] == "mock-echo"
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert body["choices"][0]["message"]["content"] == "echo: Hello there, world"
    assert body["choices"][0]["finish_reason"] == "stop"
    # 18 characters -> ceil(18 / 4) = 5 prompt tokens; "echo: " "Hello " "there, " "world"
    assert (body["usage"]["prompt_tokens"], body["usage"]["completion_tokens"]) == (5, 4)
    assert body["usage"]["total_tokens"] == 9


def test_openai_chat_is_deterministic_and_echoes_the_last_user_text_parts() -> None:
    payload = {
        "model": "mock-echo-large",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "first"}]},
            {"role": "assistant", "content": "echo: first"},
            {
                "role": "user",
                "content": [{"type": "text", "text": "a "}, {"type": "text", "text": "b"}],
            },
        ],
    }
    one, two = post(MockEngine(), OPENAI_CHAT, payload), post(MockEngine(), OPENAI_CHAT, payload)
    assert one.body == two.body and one.headers == two.headers
    body = one.json()
    assert body["model"] == "mock-echo-large"
    assert body["choices"][0]["message"]["content"] == "echo: a b"
    assert body["usage"]["prompt_tokens"] == 7  # 8 + 5 + 11 + 3 = 27 characters


@pytest.mark.parametrize(
    "path", ["/v1/chat/completions", "/openai/v1/chat/completions", "chat/completions"]
)
def test_openai_routes_accept_any_prefix(path: str) -> None:
    assert post(MockEngine(), path, chat()).status == 200


def test_azure_deployment_names_the_model() -> None:
    path = "/openai/deployments/my-gpt/chat/completions"
    body = post(MockEngine(), path, {"messages": [{"role": "user", "content": "x"}]}).json()
    assert body["model"] == "my-gpt"


def test_openai_stream_shape() -> None:
    response = post(MockEngine(), OPENAI_CHAT, chat(stream=True))
    assert response.status == 200
    assert (response.header("content-type") or "").startswith("text/event-stream")
    assert all(isinstance(step, Data) for step in response.steps or ())
    found = events(response)
    assert all(name is None for name, _ in found)
    assert found[-1] == (None, "[DONE]")
    chunks = datas(response)
    assert {chunk["object"] for chunk in chunks} == {"chat.completion.chunk"}
    assert len({chunk["id"] for chunk in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    deltas = [c["choices"][0]["delta"].get("content") for c in chunks[1:-1]]
    assert deltas == ["echo: ", "Hello ", "there, ", "world"]
    assert chunks[-1]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }
    assert all("usage" not in chunk for chunk in chunks)


def test_openai_stream_usage_chunk() -> None:
    response = post(
        MockEngine(), OPENAI_CHAT, chat(stream=True, stream_options={"include_usage": True})
    )
    chunks = datas(response)
    assert events(response)[-1][1] == "[DONE]"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["prompt_tokens"] == 5
    assert chunks[-1]["usage"]["completion_tokens"] == 4
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert all(chunk["usage"] is None for chunk in chunks[:-1])


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
def test_openai_max_tokens_truncates(field: str) -> None:
    body = post(MockEngine(), OPENAI_CHAT, chat() | {field: 2}).json()
    assert body["choices"][0]["message"]["content"] == "echo: Hello "
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 2
    streamed = post(MockEngine(), OPENAI_CHAT, chat(stream=True) | {field: 2})
    assert openai_text(streamed) == "echo: Hello "
    assert datas(streamed)[-1]["choices"][0]["finish_reason"] == "length"


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 24, 40])
def test_forced_chunk_count(n: int) -> None:
    full = "echo: Hello there, world"  # 4 pieces, 24 characters
    response = post(MockEngine(), OPENAI_CHAT, chat(stream=True), {"x-mock-chunks": str(n)})
    contents = [c["choices"][0]["delta"]["content"] for c in datas(response)[1:-1]]
    assert len(contents) == n
    assert "".join(contents) == full
    if n <= 4:
        assert all(piece.strip() for piece in contents)  # whole word pieces, none empty
    usage = post(MockEngine(), OPENAI_CHAT, chat(), {"x-mock-chunks": str(n)}).json()["usage"]
    assert usage["completion_tokens"] == 4


def test_engine_chunks_default_and_chunk_delay() -> None:
    engine = MockEngine(chunks=3, chunk_delay=0.25)
    response = post(engine, OPENAI_CHAT, chat(stream=True))
    assert len(datas(response)) == 1 + 3 + 1
    assert [step for step in response.steps or () if isinstance(step, Sleep)] == [Sleep(0.25)] * 2
    override = post(engine, OPENAI_CHAT, chat(stream=True), {"x-mock-chunk-delay": "0"})
    assert not any(isinstance(step, Sleep) for step in override.steps or ())


def test_openai_embeddings() -> None:
    engine = MockEngine()
    body = post(engine, "/v1/embeddings", {"model": "mock-embed", "input": ["a", "b", "a"]}).json()
    assert body["object"] == "list" and body["model"] == "mock-embed"
    vectors = [item["embedding"] for item in body["data"]]
    assert [item["index"] for item in body["data"]] == [0, 1, 2]
    assert all(len(vector) == 8 for vector in vectors)
    assert vectors[0] == vectors[2] != vectors[1]
    assert abs(sum(v * v for v in vectors[0]) - 1) < 1e-4
    assert body["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    single = post(engine, "/v1/embeddings", {"model": "m", "input": "a", "dimensions": 16}).json()
    assert len(single["data"][0]["embedding"]) == 16
    packed = post(
        engine, "/v1/embeddings", {"model": "m", "input": "a", "encoding_format": "base64"}
    )
    raw = base64.b64decode(packed.json()["data"][0]["embedding"])
    assert list(struct.unpack("<8f", raw)) == pytest.approx(vectors[0], abs=1e-6)


@pytest.mark.parametrize("value", [["a", 5], [["x"]], [{"text": "a"}], [], None, True], ids=repr)
def test_openai_embeddings_reject_unusable_input(value: Any) -> None:
    response = post(MockEngine(), "/v1/embeddings", {"model": "mock-embed", "input": value})
    assert response.status == 400
    assert error_of(response)["type"] == "invalid_request_error"
    assert "input" in error_of(response)["message"]


def test_openai_models() -> None:
    body = get(MockEngine(), "/v1/models").json()
    assert body["object"] == "list"
    ids = [model["id"] for model in body["data"]]
    assert "mock-echo" in ids and "mock-echo-large" in ids
    assert {model["object"] for model in body["data"]} == {"model"}


# --- Anthropic ------------------------------------------------------------------------------


def test_anthropic_message_shape() -> None:
    payload = anthropic(system="You are terse.")
    response = post(MockEngine(), ANTHROPIC, payload, ANTHROPIC_HEADERS)
    assert response.status == 200
    assert (response.header("request-id") or "").startswith("req_mock_")
    body = response.json()
    assert body["id"].startswith("msg_mock_")
    assert (body["type"], body["role"], body["model"]) == ("message", "assistant", "mock-echo")
    assert body["content"] == [{"type": "text", "text": "echo: Hello there, world"}]
    assert body["stop_reason"] == "end_turn" and body["stop_sequence"] is None
    # system (14) + message (18) = 32 characters -> 8 input tokens
    assert (body["usage"]["input_tokens"], body["usage"]["output_tokens"]) == (8, 4)


def test_anthropic_stream_event_sequence() -> None:
    response = post(MockEngine(), ANTHROPIC, anthropic(stream=True), {"x-mock-chunks": "2"})
    found = events(response)
    names = [name for name, _ in found]
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    bodies = [json.loads(data) for _, data in found]
    assert [body["type"] for body in bodies] == names
    assert (
        bodies[0]["message"]["content"] == [] and bodies[0]["message"]["usage"]["input_tokens"] == 5
    )
    assert "".join(b["delta"]["text"] for b in bodies[3:5]) == "echo: Hello there, world"
    assert {b["delta"]["type"] for b in bodies[3:5]} == {"text_delta"}
    assert bodies[6]["delta"]["stop_reason"] == "end_turn"
    assert bodies[6]["usage"] == {"output_tokens": 4}


def test_anthropic_max_tokens() -> None:
    engine = MockEngine()
    body = post(engine, ANTHROPIC, anthropic(max_tokens=1)).json()
    assert body["content"][0]["text"] == "echo: " and body["stop_reason"] == "max_tokens"
    stream = datas(post(engine, ANTHROPIC, anthropic(max_tokens=1, stream=True)))
    assert stream[-2]["delta"]["stop_reason"] == "max_tokens"
    missing = post(engine, ANTHROPIC, chat())
    assert missing.status == 400
    assert missing.json()["error"]["type"] == "invalid_request_error"


def test_anthropic_models_and_count_tokens() -> None:
    engine = MockEngine()
    body = get(engine, "/v1/models", ANTHROPIC_HEADERS).json()
    assert body["data"][0] == {
        "type": "model",
        "id": "mock-echo",
        "display_name": "mock-echo",
        "created_at": "2023-11-14T22:13:20Z",
        "lifecycle": "active",
        "deprecated_at": None,
        "retires_at": None,
        "max_input_tokens": 200_000,
        "max_tokens": 8192,
    }
    assert body["has_more"] is False
    assert get(engine, "/v1/models/mock-echo", ANTHROPIC_HEADERS).json() == body["data"][0]
    counted = post(engine, "/v1/messages/count_tokens", chat(), ANTHROPIC_HEADERS).json()
    assert counted == {"input_tokens": 5}


# --- Gemini ---------------------------------------------------------------------------------


def test_gemini_generate_content() -> None:
    payload = gemini() | {"systemInstruction": {"parts": [{"text": "terse"}]}}
    response = post(MockEngine(), f"{GEMINI}:generateContent", payload)
    assert response.status == 200
    body = response.json()
    candidate = body["candidates"][0]
    assert candidate["content"] == {
        "role": "model",
        "parts": [{"text": "echo: Hello there, world"}],
    }
    assert candidate["finishReason"] == "STOP"
    assert body["usageMetadata"] == {
        "promptTokenCount": 6,
        "candidatesTokenCount": 4,
        "totalTokenCount": 10,
    }
    assert body["modelVersion"] == "mock-echo"


def test_gemini_stream_sse() -> None:
    response = post(MockEngine(), f"{GEMINI}:streamGenerateContent", gemini(), query={"alt": "sse"})
    found = events(response)
    assert all(name is None for name, _ in found)
    chunks = [json.loads(data) for _, data in found]
    assert len(chunks) == 4
    texts = [c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks]
    assert "".join(texts) == "echo: Hello there, world"
    assert all("finishReason" not in c["candidates"][0] for c in chunks[:-1])
    # Every chunk carries the usage so far, as the service sends it (cumulative).
    usage = [c["usageMetadata"] for c in chunks]
    assert [u["candidatesTokenCount"] for u in usage] == [1, 2, 3, 4]
    assert all(
        u["totalTokenCount"] == u["promptTokenCount"] + u["candidatesTokenCount"] for u in usage
    )
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert chunks[-1]["usageMetadata"]["candidatesTokenCount"] == 4


def test_gemini_stream_without_sse_is_a_json_array_and_max_output_tokens() -> None:
    path = f"{GEMINI}:streamGenerateContent"
    response = post(MockEngine(), path, gemini(maxOutputTokens=3))
    assert response.steps is None
    chunks = response.json()
    assert isinstance(chunks, list) and len(chunks) == 3
    assert chunks[-1]["candidates"][0]["finishReason"] == "MAX_TOKENS"
    generated = post(MockEngine(), f"{GEMINI}:generateContent", gemini(maxOutputTokens=3)).json()
    assert generated["candidates"][0]["content"]["parts"][0]["text"] == "echo: Hello there, "


def test_gemini_embeddings_models_and_count_tokens() -> None:
    engine = MockEngine()
    content = {"parts": [{"text": "a"}]}
    one = post(engine, "/v1beta/models/mock-embed:embedContent", {"content": content}).json()
    assert len(one["embedding"]["values"]) == 8
    batch = post(
        engine,
        "/v1beta/models/mock-embed:batchEmbedContents",
        {
            "requests": [
                {"model": "models/mock-embed", "content": content, "outputDimensionality": 4}
            ]
            * 2
        },
    ).json()
    assert [len(item["values"]) for item in batch["embeddings"]] == [4, 4]
    models = get(engine, "/v1beta/models").json()["models"]
    assert models[0]["name"] == "models/mock-echo"
    assert "generateContent" in models[0]["supportedGenerationMethods"]
    counted = post(engine, f"{GEMINI}:countTokens", gemini()).json()
    assert counted == {"totalTokens": 5}


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "headers", "check"),
    [
        ("/v1/nope", {}, lambda b: b["error"]["type"] == "invalid_request_error"),
        ("/v1/nope", ANTHROPIC_HEADERS, lambda b: b["error"]["type"] == "not_found_error"),
        ("/v1beta/nope", {}, lambda b: b["error"]["status"] == "NOT_FOUND"),
    ],
)
def test_unknown_route_is_a_provider_shaped_404(
    path: str, headers: dict[str, str], check: Any
) -> None:
    response = post(MockEngine(), path, chat(), headers)
    assert response.status == 404
    assert check(response.json())


@pytest.mark.parametrize(
    ("path", "check"),
    [
        (OPENAI_CHAT, lambda b: b["error"]["type"] == "invalid_request_error"),
        (
            ANTHROPIC,
            lambda b: b["type"] == "error" and b["error"]["type"] == "invalid_request_error",
        ),
        (f"{GEMINI}:generateContent", lambda b: b["error"]["status"] == "INVALID_ARGUMENT"),
    ],
)
def test_bad_json_is_a_400(path: str, check: Any) -> None:
    response = post(MockEngine(), path, b"{not json")
    assert response.status == 400
    assert check(response.json())


@pytest.mark.parametrize(
    "headers",
    [
        {"x-mock-fault": "418x"},
        {"x-mock-fault": "reset;after=-1"},
        {"x-mock-fault": "429;bogus=1"},
        {"x-mock-chunks": "0"},
        {"x-mock-chunks": "²"},  # a digit to str.isdigit(), not to int()
        {"x-mock-chunks": "10001"},  # more deltas than a test needs; guards the mock's memory
        {"x-mock-chunk-delay": "soon"},
    ],
)
def test_bad_mock_headers_are_a_400(headers: dict[str, str]) -> None:
    response = post(MockEngine(), OPENAI_CHAT, chat(), headers)
    assert response.status == 400
    assert "x-mock" in error_of(response)["message"]
