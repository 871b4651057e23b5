"""The Gemini adapter, reply side, as pure translation: replies, stream events, error bodies,
embeddings and model lists in, the unified types out (see `_gemini_response.py`).

No HTTP here; `test_gemini_client.py` runs the same adapter through the real client, and
`test_gemini_request.py` covers the request side.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from llmrelay import (
    BadRequestError,
    InternalServerError,
    NotFoundError,
    RateLimitError,
    ResponseError,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from llmrelay._request import ChatRequest
from llmrelay._sse import ServerSentEvent
from llmrelay.providers import gemini as adapter

PROVIDER = adapter.preset()


def reply(parts: list[Any], finish: str | None = "STOP", **top: Any) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], "modelVersion": "gemini-2.5-flash", **top}


# -- replies ------------------------------------------------------------------------------------


def test_parse_text_reply_with_usage() -> None:
    data = reply(
        [{"text": "Hello "}, {"text": "world"}],
        usageMetadata={
            "promptTokenCount": 10,
            "toolUsePromptTokenCount": 2,
            "candidatesTokenCount": 5,
            "thoughtsTokenCount": 7,
            "cachedContentTokenCount": 4,
            "totalTokenCount": 24,
        },
        responseId="resp-1",
    )
    got = adapter.parse_chat(PROVIDER, data, "req-9")
    assert got.text == "Hello world"
    assert got.finish_reason == "stop"
    assert got.usage == Usage(
        prompt_tokens=12, completion_tokens=12, total_tokens=24, cached_tokens=4, reasoning_tokens=7
    )
    assert (got.id, got.request_id, got.model, got.provider) == (
        "resp-1",
        "req-9",
        "gemini-2.5-flash",
        "gemini",
    )
    assert got.raw is data


def test_parse_function_calls_thoughts_and_signature() -> None:
    data = reply(
        [
            {"text": "Planning the lookup.", "thought": True},
            {"text": "Let me look."},
            {
                "functionCall": {"name": "get_weather", "args": {"city": "Zürich"}},
                "thoughtSignature": "sig-A",
            },
            {"functionCall": {"id": "srv-2", "name": "get_time", "args": {}}},
        ]
    )
    got = adapter.parse_chat(PROVIDER, data, None)
    assert got.text == "Let me look."
    assert got.reasoning == "Planning the lookup."
    assert got.reasoning_signature == "sig-A"
    assert got.finish_reason == "tool_calls"
    assert got.tool_calls == (
        ToolCall(
            id="call_0",
            name="get_weather",
            arguments='{"city": "Zürich"}',
            parsed_arguments={"city": "Zürich"},
        ),
        ToolCall(id="srv-2", name="get_time", arguments="{}", parsed_arguments={}),
    )
    # The reply, appended to the conversation, goes back with its call ids and signature.
    messages = [{"role": "user", "content": "q"}, got.message.to_dict()]
    echoed = adapter.build_chat(PROVIDER, ChatRequest(model="m", messages=messages, params={})).json
    model_turn = echoed["contents"][1]["parts"]
    assert model_turn[1] == {
        "functionCall": {"name": "get_weather", "args": {"city": "Zürich"}, "id": "call_0"},
        "thoughtSignature": "sig-A",
    }


@pytest.mark.parametrize(
    ("raw", "mapped"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("SPII", "content_filter"),
        ("MALFORMED_FUNCTION_CALL", "malformed_function_call"),
        ("MISSING_THOUGHT_SIGNATURE", "missing_thought_signature"),
        ("OTHER", "other"),
    ],
)
def test_finish_reasons(raw: str, mapped: str) -> None:
    assert adapter.parse_chat(PROVIDER, reply([{"text": "x"}], raw), None).finish_reason == mapped


def test_safety_stop_without_content() -> None:
    data = {"candidates": [{"finishReason": "SAFETY", "index": 0}]}
    got = adapter.parse_chat(PROVIDER, data, None)
    assert (got.text, got.finish_reason, got.tool_calls) == ("", "content_filter", ())


def test_blocked_prompt_is_a_typed_error() -> None:
    data = {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 3}}
    with pytest.raises(BadRequestError) as info:
        adapter.parse_chat(PROVIDER, data, "req-b")
    err = info.value
    assert (err.status_code, err.code, err.request_id) == (400, "prompt_blocked", "req-b")
    assert "prompt blocked: SAFETY" in str(err)
    assert "gemini" in str(err)


def test_error_object_in_a_200_body_is_raised() -> None:
    body = {"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}
    with pytest.raises(InternalServerError) as info:
        adapter.parse_chat(PROVIDER, body, None)
    assert (info.value.status_code, info.value.code) == (503, "UNAVAILABLE")


@pytest.mark.parametrize(
    "data",
    [[], "text", {}, {"candidates": "x"}, reply([{"functionCall": {"args": {}}}]), reply(["x"])],
)
def test_malformed_replies_are_response_errors(data: Any) -> None:
    with pytest.raises(ResponseError):
        adapter.parse_chat(PROVIDER, data, None)


# -- stream parser ------------------------------------------------------------------------------


def events(*objects: Any) -> list[ServerSentEvent]:
    return [ServerSentEvent(data=o if isinstance(o, str) else json.dumps(o)) for o in objects]


def new_parser() -> adapter.StreamParser:
    return adapter.new_stream_parser(PROVIDER, ChatRequest(model="m", messages=[], params={}))


def test_stream_parser_text_usage_and_finish() -> None:
    parser = new_parser()
    first, second = events(
        {**reply([{"text": "Hel"}], None), "usageMetadata": {"promptTokenCount": 2}},
        {
            **reply([{"text": "lo"}]),
            "usageMetadata": {"promptTokenCount": 2, "candidatesTokenCount": 2},
        },
    )
    chunk = parser.parse(first)
    assert chunk is not None
    assert (chunk.text, chunk.finish_reason, chunk.usage) == (
        "Hel",
        None,
        Usage(prompt_tokens=2, total_tokens=2),
    )
    assert not parser.finished()
    chunk = parser.parse(second)
    assert chunk is not None
    assert (chunk.text, chunk.finish_reason) == ("lo", "stop")
    assert chunk.usage == Usage(prompt_tokens=2, completion_tokens=2, total_tokens=4)
    assert parser.finished()


def test_stream_parser_numbers_tool_calls_across_chunks() -> None:
    parser = new_parser()
    chunks = [
        parser.parse(e)
        for e in events(
            reply([{"functionCall": {"name": "a", "args": {"x": 1}}}], None),
            reply(
                [
                    {"functionCall": {"id": "srv", "name": "b", "args": {}}},
                    {"functionCall": {"name": "c"}},
                ]
            ),
        )
    ]
    assert chunks[0] is not None and chunks[1] is not None
    assert chunks[0].tool_calls == (
        ToolCallDelta(index=0, id="call_0", name="a", arguments='{"x": 1}'),
    )
    assert chunks[1].tool_calls == (
        ToolCallDelta(index=1, id="srv", name="b", arguments="{}"),
        ToolCallDelta(index=2, id="call_2", name="c", arguments="{}"),
    )
    assert chunks[1].finish_reason == "tool_calls"


def test_stream_parser_skips_empty_events_and_raises_errors() -> None:
    parser = new_parser()
    empty, nothing, done = events("", reply([{"text": ""}], None), "[DONE]")
    assert parser.parse(empty) is None
    assert parser.parse(nothing) is None
    assert parser.parse(done) is None
    (limited,) = events({"error": {"code": 429, "message": "slow", "status": "RESOURCE_EXHAUSTED"}})
    with pytest.raises(RateLimitError):
        parser.parse(limited)
    (status_only,) = events({"error": {"message": "gone", "status": "NOT_FOUND"}})
    with pytest.raises(NotFoundError) as info:
        parser.parse(status_only)
    assert (info.value.status_code, info.value.code) == (404, "NOT_FOUND")
    (garbage,) = events("{not json")
    with pytest.raises(ResponseError):
        parser.parse(garbage)


# -- errors -------------------------------------------------------------------------------------


def retry_info(delay: Any) -> dict[str, Any]:
    return {
        "error": {
            "code": 429,
            "message": "Quota exceeded",
            "status": "RESOURCE_EXHAUSTED",
            "details": [
                {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay},
            ],
        }
    }


@pytest.mark.parametrize(
    ("delay", "seconds"),
    [
        ("38s", 38.0),
        ("1.5s", 1.5),
        ("0.000001s", 0.000001),
        ("0s", 0.0),
        ({"seconds": 2, "nanos": 500_000_000}, 2.5),
        ("soon", None),
        ("-3s", None),
        (None, None),
    ],
)
def test_parse_error_reads_retry_info(delay: Any, seconds: float | None) -> None:
    info = adapter.parse_error(PROVIDER, 429, retry_info(delay))
    assert (info.message, info.code) == ("Quota exceeded", "RESOURCE_EXHAUSTED")
    assert info.retry_after == seconds


@pytest.mark.parametrize(
    ("body", "message", "code"),
    [
        (
            {"error": {"code": 404, "message": "no model", "status": "NOT_FOUND"}},
            "no model",
            "NOT_FOUND",
        ),
        ([{"error": {"code": 500, "message": "boom", "status": "INTERNAL"}}], "boom", "INTERNAL"),
        ("<html>Bad Gateway</html>", "<html>Bad Gateway</html>", None),
        ({"detail": "odd"}, '{"detail": "odd"}', None),
        (None, "no error message", None),
    ],
)
def test_parse_error_shapes(body: Any, message: str, code: str | None) -> None:
    info = adapter.parse_error(PROVIDER, 500, body)
    assert (info.message, info.code, info.retry_after) == (message, code, None)


# -- embeddings and models ----------------------------------------------------------------------


def test_build_embed_single_and_batch() -> None:
    one = adapter.build_embed(
        PROVIDER, "text-embedding-004", ["a"], {"taskType": "RETRIEVAL_QUERY"}
    )
    assert (one.method, one.path) == ("POST", "models/text-embedding-004:embedContent")
    assert one.json == {"content": {"parts": [{"text": "a"}]}, "taskType": "RETRIEVAL_QUERY"}
    many = adapter.build_embed(PROVIDER, "models/gemini-embedding-001", ["a", "b"], None)
    assert many.path == "models/gemini-embedding-001:batchEmbedContents"
    assert many.json == {
        "requests": [
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "a"}]}},
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "b"}]}},
        ]
    }


def test_parse_embed_both_shapes() -> None:
    single = adapter.parse_embed(PROVIDER, {"embedding": {"values": [0.1, 0.2]}}, "r")
    assert (single.vectors, single.request_id) == ([[0.1, 0.2]], "r")
    batch = adapter.parse_embed(PROVIDER, {"embeddings": [{"values": [1]}, {"values": [2]}]}, None)
    assert batch.vectors == [[1], [2]]
    bad_replies: list[Any] = [{}, {"embeddings": None}, {"embedding": {}}, []]
    for bad in bad_replies:
        with pytest.raises(ResponseError):
            adapter.parse_embed(PROVIDER, bad, None)


def test_models() -> None:
    wire = adapter.build_models(PROVIDER)
    assert (wire.method, wire.path) == ("GET", "models")
    data = {
        "models": [
            {"name": "models/gemini-2.5-flash", "displayName": "Gemini 2.5 Flash"},
            {"name": "models/text-embedding-004"},
        ],
        "nextPageToken": "",
    }
    got = adapter.parse_models(PROVIDER, data)
    assert [m.id for m in got] == ["gemini-2.5-flash", "text-embedding-004"]
    assert got[0].raw == {"name": "models/gemini-2.5-flash", "displayName": "Gemini 2.5 Flash"}
    with pytest.raises(ResponseError):
        adapter.parse_models(PROVIDER, {"models": [{"displayName": "x"}]})


def test_a_bad_key_is_an_authentication_error_and_a_daily_quota_is_final() -> None:
    from llmrelay.providers import gemini as g

    provider = g.preset()
    bad_key = {
        "error": {
            "code": 400,
            "message": "API key not valid. Please pass a valid API key.",
            "status": "INVALID_ARGUMENT",
            "details": [
                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}
            ],
        }
    }
    assert g.parse_error(provider, 400, bad_key).status_code == 401
    daily = {
        "error": {
            "code": 429,
            "message": "Quota exceeded",
            "status": "RESOURCE_EXHAUSTED",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [
                        {"quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier"}
                    ],
                },
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "20s"},
            ],
        }
    }
    info = g.parse_error(provider, 429, daily)
    assert info.retryable is False and info.retry_after == 20
