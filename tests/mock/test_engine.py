"""The mock engine with plain dicts: wire shapes of every route, streaming, faults, determinism."""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Mapping
from typing import Any

import pytest

from llmrelay.mock import Data, FaultSpec, MockEngine, MockResponse, Reset, Sleep

OPENAI_CHAT = "/v1/chat/completions"
ANTHROPIC = "/v1/messages"
GEMINI = "/v1beta/models/mock-echo"
ANTHROPIC_HEADERS = {"anthropic-version": "2023-06-01"}


def post(
    engine: MockEngine,
    path: str,
    payload: Any,
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
) -> MockResponse:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return engine.handle("POST", path, query or {}, headers or {}, body)


def get(engine: MockEngine, path: str, headers: Mapping[str, str] | None = None) -> MockResponse:
    return engine.handle("GET", path, {}, headers or {}, b"")


def chat(text: str = "Hello there, world", **extra: Any) -> dict[str, Any]:
    return {"model": "mock-echo", "messages": [{"role": "user", "content": text}], **extra}


def anthropic(text: str = "Hello there, world", **extra: Any) -> dict[str, Any]:
    return {"max_tokens": 100, **chat(text), **extra}


def gemini(text: str = "Hello there, world", **config: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": text}]}]}
    if config:
        body["generationConfig"] = config
    return body


def events(response: MockResponse) -> list[tuple[str | None, str]]:
    """(event name, data) of every SSE event, split simply on blank lines."""
    assert response.steps is not None
    out = []
    for block in response.content().split(b"\n\n"):
        if not block:
            continue
        fields = dict(line.split(": ", 1) for line in block.decode().split("\n"))
        out.append((fields.get("event"), fields["data"]))
    return out


def datas(response: MockResponse) -> list[Any]:
    return [json.loads(data) for _, data in events(response) if data != "[DONE]"]


def openai_text(response: MockResponse) -> str:
    return "".join(
        chunk["choices"][0]["delta"].get("content", "")
        for chunk in datas(response)
        if chunk.get("choices")
    )


def error_of(response: MockResponse) -> dict[str, Any]:
    body: dict[str, Any] = response.json()["error"]
    return body


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
    }
    assert body["has_more"] is False
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
    assert all("usageMetadata" not in c for c in chunks[:-1])
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
        {"x-mock-chunk-delay": "soon"},
    ],
)
def test_bad_mock_headers_are_a_400(headers: dict[str, str]) -> None:
    response = post(MockEngine(), OPENAI_CHAT, chat(), headers)
    assert response.status == 400
    assert "x-mock" in error_of(response)["message"]


# --- faults ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "payload", "check"),
    [
        (OPENAI_CHAT, chat(), lambda e: e["code"] == "rate_limit_exceeded"),
        (ANTHROPIC, anthropic(), lambda e: e["type"] == "rate_limit_error"),
        (
            f"{GEMINI}:generateContent",
            gemini(),
            lambda e: (
                e["status"] == "RESOURCE_EXHAUSTED"
                and e["code"] == 429
                and e["details"]
                == [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"}]
            ),
        ),
    ],
)
def test_429_with_retry_after_in_every_family(path: str, payload: Any, check: Any) -> None:
    response = post(MockEngine(), path, payload, {"x-mock-fault": "429;retry-after=1"})
    assert response.status == 429
    assert response.header("retry-after") == "1"
    assert response.header("x-mock-fault") == "429;retry-after=1"
    assert check(error_of(response))


def test_status_faults_and_retry_after_ms() -> None:
    engine = MockEngine()
    overloaded = post(engine, ANTHROPIC, anthropic(), {"x-mock-fault": "529"})
    assert overloaded.status == 529
    assert overloaded.json()["type"] == "error"
    assert overloaded.json()["error"]["type"] == "overloaded_error"
    assert overloaded.header("request-id") == overloaded.json()["request_id"]
    assert overloaded.header("retry-after") is None
    for status in (500, 503):
        failed = post(engine, OPENAI_CHAT, chat(), {"x-mock-fault": str(status)})
        assert failed.status == status
        assert error_of(failed)["type"] == "server_error"
    ms = post(engine, OPENAI_CHAT, chat(), {"x-mock-fault": "429;retry-after-ms=250"})
    assert ms.header("retry-after-ms") == "250" and ms.header("retry-after") is None
    gemini_ms = post(
        engine, f"{GEMINI}:generateContent", gemini(), {"x-mock-fault": "503;retry-after-ms=1500"}
    )
    assert error_of(gemini_ms)["status"] == "UNAVAILABLE"
    assert error_of(gemini_ms)["details"][0]["retryDelay"] == "1.5s"


def test_times_counts_attempts_per_idempotency_key() -> None:
    engine = MockEngine()
    fault = {"x-mock-fault": "429;retry-after=1;times=2"}

    def attempt(key: str) -> tuple[int, str | None]:
        response = post(engine, OPENAI_CHAT, chat(), fault | {"idempotency-key": key})
        return response.status, response.header("x-mock-attempt")

    assert [attempt("a") for _ in range(3)] == [(429, "1"), (429, "2"), (200, "3")]
    assert [attempt("b")[0] for _ in range(3)] == [429, 429, 200]
    assert attempt("a") == (200, "4")
    engine.clear()
    assert attempt("a") == (429, "1")


def test_times_without_a_key_uses_the_body() -> None:
    engine = MockEngine()
    fault = {"x-mock-fault": "500;times=1"}
    assert post(engine, OPENAI_CHAT, chat("one"), fault).status == 500
    assert post(engine, OPENAI_CHAT, chat("one"), fault).status == 200
    assert post(engine, OPENAI_CHAT, chat("two"), fault).status == 500


def test_fault_in_the_model_name() -> None:
    engine = MockEngine()
    payload = {**chat(), "model": "mock-echo+fault=500;times=1"}
    assert post(engine, OPENAI_CHAT, payload).status == 500
    retried = post(engine, OPENAI_CHAT, payload)
    assert retried.status == 200 and retried.json()["model"] == "mock-echo"
    path = "/v1beta/models/mock-echo+fault=429;retry-after=2:generateContent"
    response = post(engine, path, gemini())
    assert response.status == 429 and response.header("retry-after") == "2"
    header_wins = post(engine, path, gemini(), {"x-mock-fault": "503"})
    assert header_wins.status == 503


def test_stall_before_headers() -> None:
    response = post(MockEngine(), OPENAI_CHAT, chat(), {"x-mock-fault": "stall;seconds=5"})
    assert response.status == 200 and response.stall_before == 5.0
    assert response.json()["choices"][0]["message"]["content"] == "echo: Hello there, world"


def test_stall_mid_stream() -> None:
    fault = {"x-mock-fault": "stall-mid;seconds=2;after=3"}
    response = post(MockEngine(), OPENAI_CHAT, chat(stream=True), fault)
    steps = response.steps or ()
    pause = steps.index(Sleep(2.0))
    assert pause == 1 + 3  # the role chunk, then 3 content chunks
    assert openai_text(response) == "echo: Hello there, world"
    assert events(response)[-1][1] == "[DONE]"


def test_reset_mid_stream() -> None:
    response = post(MockEngine(), OPENAI_CHAT, chat(stream=True), {"x-mock-fault": "reset;after=3"})
    steps = response.steps or ()
    assert steps[-1] == Reset()
    assert openai_text(response) == "echo: Hello there, "
    assert all(data != "[DONE]" for _, data in events(response))


def test_error_event_in_every_family() -> None:
    engine = MockEngine()
    fault = {"x-mock-fault": "error-event;after=2"}
    openai = events(post(engine, OPENAI_CHAT, chat(stream=True), fault))
    assert json.loads(openai[-1][1])["error"]["type"] == "server_error"
    assert len(openai) == 1 + 2 + 1
    claude = events(post(engine, ANTHROPIC, anthropic(stream=True), fault))
    assert claude[-1][0] == "error"
    assert json.loads(claude[-1][1]) == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    assert [name for name, _ in claude].count("content_block_delta") == 2
    google = events(
        post(engine, f"{GEMINI}:streamGenerateContent", gemini(), fault, {"alt": "sse"})
    )
    assert json.loads(google[-1][1])["error"]["status"] == "UNAVAILABLE"
    assert len(google) == 3


def test_truncate_ends_without_terminator() -> None:
    engine = MockEngine()
    fault = {"x-mock-fault": "truncate;after=2"}
    openai = post(engine, OPENAI_CHAT, chat(stream=True), fault)
    assert openai_text(openai) == "echo: Hello "
    assert all(c["choices"][0]["finish_reason"] is None for c in datas(openai))
    assert events(openai)[-1][1] != "[DONE]"
    claude = [name for name, _ in events(post(engine, ANTHROPIC, anthropic(stream=True), fault))]
    assert "message_stop" not in claude and "message_delta" not in claude
    whole = {"x-mock-fault": "truncate;after=99"}  # clamped: the finish still goes missing
    google = datas(post(engine, f"{GEMINI}:streamGenerateContent", gemini(), whole, {"alt": "sse"}))
    assert len(google) == 3 and all("finishReason" not in c["candidates"][0] for c in google)
    body = post(engine, OPENAI_CHAT, chat(), fault)
    with pytest.raises(ValueError):
        body.json()


def test_malformed() -> None:
    engine = MockEngine()
    response = post(engine, OPENAI_CHAT, chat(), {"x-mock-fault": "malformed"})
    assert response.status == 200
    with pytest.raises(ValueError):
        response.json()
    streamed = events(
        post(engine, OPENAI_CHAT, chat(stream=True), {"x-mock-fault": "malformed;after=2"})
    )
    bad = []
    for index, (_, data) in enumerate(streamed):
        try:
            json.loads(data)
        except ValueError:
            bad.append(index)
    assert bad == [3, len(streamed) - 1]  # the malformed line; then the stream goes on to [DONE]


def test_body_faults_on_a_plain_response() -> None:
    engine = MockEngine()
    full = post(engine, OPENAI_CHAT, chat()).body
    reset = post(engine, OPENAI_CHAT, chat(), {"x-mock-fault": "reset"})
    assert reset.steps == (Data(full[: len(full) // 2]), Reset())
    stalled = post(engine, OPENAI_CHAT, chat(), {"x-mock-fault": "stall-mid;seconds=1"})
    assert stalled.steps is not None and Sleep(1.0) in stalled.steps
    assert stalled.content() == full
    error = post(engine, ANTHROPIC, anthropic(), {"x-mock-fault": "error-event"})
    assert error.status == 200 and error.json()["error"]["type"] == "overloaded_error"


def test_fault_rate_is_deterministic_and_order_independent() -> None:
    keys = [f"key-{index}" for index in range(60)]

    def outcomes(seed: int, order: list[str]) -> dict[str, int]:
        engine = MockEngine(seed=seed, fault_rate=0.5)
        return {
            key: post(engine, OPENAI_CHAT, chat(), {"idempotency-key": key}).status for key in order
        }

    first = outcomes(7, keys)
    assert first == outcomes(7, keys[::-1])
    assert set(first.values()) == {200, 429, 500, 503}
    assert first != outcomes(8, keys)


def test_fault_rate_extremes_and_retries_draw_afresh() -> None:
    never = MockEngine(fault_rate=0.0)
    assert all(post(never, OPENAI_CHAT, chat(str(i))).status == 200 for i in range(20))
    always = MockEngine(fault_rate=1.0, faults=["529"])
    assert {post(always, OPENAI_CHAT, chat(str(i))).status for i in range(20)} == {529}
    once = MockEngine(fault_rate=1.0, faults=["500;times=1"])
    assert [post(once, OPENAI_CHAT, chat()).status for _ in range(2)] == [500, 200]


def test_attempt_counters_are_bounded() -> None:
    engine = MockEngine(max_tracked_keys=2)
    fault = {"x-mock-fault": "500;times=1"}
    for key in ("a", "b", "c"):  # "a" is evicted when "c" arrives
        assert post(engine, OPENAI_CHAT, chat(), fault | {"idempotency-key": key}).status == 500
    assert post(engine, OPENAI_CHAT, chat(), fault | {"idempotency-key": "a"}).status == 500
    assert post(engine, OPENAI_CHAT, chat(), fault | {"idempotency-key": "c"}).status == 200


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("429", FaultSpec(kind="status", status=429, text="429")),
        (
            " 429; retry-after=1.5 ;times=2 ",
            FaultSpec(
                kind="status",
                status=429,
                retry_after=1.5,
                times=2,
                text="429; retry-after=1.5 ;times=2",
            ),
        ),
        ("stall;seconds=0.2", FaultSpec(kind="stall", seconds=0.2, text="stall;seconds=0.2")),
        ("RESET;after=0", FaultSpec(kind="reset", after=0, text="RESET;after=0")),
    ],
)
def test_fault_spec_parse(text: str, expected: FaultSpec) -> None:
    assert FaultSpec.parse(text) == expected


@pytest.mark.parametrize(
    "text", ["", "teapot", "200", "600", "429;times", "429;times=x", "stall;seconds=-1", "429;x=1"]
)
def test_fault_spec_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        FaultSpec.parse(text)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"fault_rate": 1.5},
        {"fault_rate": 0.1, "faults": []},
        {"faults": ["nope"]},
        {"chunks": 0},
        {"chunk_delay": -1.0},
    ],
)
def test_engine_rejects_bad_settings(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        MockEngine(**kwargs)
