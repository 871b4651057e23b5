"""The OpenAI Chat Completions adapter as pure translation: dicts in, dicts / typed values out.
No HTTP at all (WIRE_FORMATS.md §B1 shapes)."""

from __future__ import annotations

import json
from typing import Any

import pytest

import llmrelay
from llmrelay import ResponseError, StreamChunk, ToolCall, ToolCallDelta, Usage
from llmrelay._request import ChatRequest
from llmrelay._sse import ServerSentEvent
from llmrelay.providers import Provider, get_provider
from llmrelay.providers import openai as adapter


def openai_preset() -> Provider:
    return get_provider("openai")


def compatible(**options: Any) -> Provider:
    return Provider(
        name="compat", adapter=adapter, base_url="http://localhost:8000/v1", options=options
    )


def request(
    messages: list[dict[str, Any]] | None = None,
    *,
    params: dict[str, Any] | None = None,
    stream: bool = False,
    extra_body: dict[str, Any] | None = None,
) -> ChatRequest:
    return ChatRequest(
        model="gpt-4o-mini",
        messages=messages or [{"role": "user", "content": "Hi"}],
        params=params or {},
        stream=stream,
        extra_body=extra_body,
    )


def event(data: Any) -> ServerSentEvent:
    return ServerSentEvent(data=data if isinstance(data, str) else json.dumps(data))


# -- requests --------------------------------------------------------------------------------


def test_build_chat_minimal() -> None:
    wire = adapter.build_chat(openai_preset(), request())
    assert wire.method == "POST"
    assert wire.path == "chat/completions"
    assert wire.json == {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}


def test_openai_sends_max_completion_tokens_and_others_max_tokens() -> None:
    params = {"max_tokens": 50, "temperature": 0.3}
    body = adapter.build_chat(openai_preset(), request(params=params)).json
    assert body["max_completion_tokens"] == 50
    assert "max_tokens" not in body
    assert body["temperature"] == 0.3
    other = adapter.build_chat(compatible(), request(params=params)).json
    assert other["max_tokens"] == 50
    assert "max_completion_tokens" not in other
    assert params == {"max_tokens": 50, "temperature": 0.3}  # the request is not modified


def test_stream_asks_for_usage() -> None:
    body = adapter.build_chat(openai_preset(), request(stream=True)).json
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    quiet = Provider(name="q", adapter=adapter, base_url="http://x/v1", stream_usage=False)
    body = adapter.build_chat(quiet, request(stream=True)).json
    assert body["stream"] is True
    assert "stream_options" not in body


def test_extra_body_is_merged_last() -> None:
    body = adapter.build_chat(
        openai_preset(),
        request(params={"temperature": 0.1}, extra_body={"temperature": 0.9, "user": "u1"}),
    ).json
    assert body["temperature"] == 0.9
    assert body["user"] == "u1"


def test_reasoning_is_replayed_only_where_wanted() -> None:
    assistant = {
        "role": "assistant",
        "content": "",
        "reasoning_content": "thinking...",
        "reasoning_signature": "sig",
    }
    messages = [{"role": "user", "content": "Q"}, assistant]
    dropped = adapter.build_chat(openai_preset(), request(messages)).json["messages"]
    assert dropped[1] == {"role": "assistant", "content": ""}
    kept = adapter.build_chat(compatible(replay_reasoning=True), request(messages)).json
    assert kept["messages"][1] == {
        "role": "assistant",
        "content": "",
        "reasoning_content": "thinking...",
    }
    # the caller's dicts are left as they were
    assert assistant["reasoning_content"] == "thinking..."
    assert assistant["reasoning_signature"] == "sig"


def test_auth_headers() -> None:
    assert adapter.auth_headers(openai_preset(), "sk-1") == {"authorization": "Bearer sk-1"}
    assert adapter.auth_headers(openai_preset(), None) == {}


def test_build_embed_and_models() -> None:
    wire = adapter.build_embed(openai_preset(), "e3", ["a", "b"], {"dimensions": 8})
    assert (wire.method, wire.path) == ("POST", "embeddings")
    assert wire.json == {"model": "e3", "input": ["a", "b"], "dimensions": 8}
    wire = adapter.build_models(openai_preset())
    assert (wire.method, wire.path, wire.json) == ("GET", "models", None)


# -- replies ---------------------------------------------------------------------------------


def chat_body(**message: Any) -> dict[str, Any]:
    message.setdefault("role", "assistant")
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-4o",
        "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
        "usage": {
            "prompt_tokens": 10,
            "completion_tokens": 4,
            "total_tokens": 14,
            "prompt_tokens_details": {"cached_tokens": 8},
            "completion_tokens_details": {"reasoning_tokens": 2},
        },
    }


def test_parse_chat() -> None:
    data = chat_body(content="Hi!", refusal=None)
    reply = adapter.parse_chat(openai_preset(), data, "req_1")
    assert reply.text == "Hi!"
    assert reply.finish_reason == "stop"
    assert reply.usage == Usage(
        prompt_tokens=10, completion_tokens=4, total_tokens=14, cached_tokens=8, reasoning_tokens=2
    )
    assert (reply.id, reply.model, reply.request_id, reply.provider) == (
        "chatcmpl-1",
        "gpt-4o",
        "req_1",
        "openai",
    )
    assert reply.raw is data


def test_parse_chat_tool_calls() -> None:
    data = chat_body(
        content=None,
        tool_calls=[
            {"id": "a", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}},
            {"id": "b", "type": "function", "function": {"name": "g", "arguments": "{oops"}},
            {"id": "c", "type": "function", "function": {"name": "h", "arguments": ""}},
        ],
    )
    reply = adapter.parse_chat(openai_preset(), data, None)
    assert reply.text == ""
    assert reply.tool_calls == (
        ToolCall(id="a", name="f", arguments='{"x": 1}', parsed_arguments={"x": 1}),
        ToolCall(id="b", name="g", arguments="{oops", parsed_arguments=None),
        ToolCall(id="c", name="h", arguments="{}", parsed_arguments={}),
    )


def test_parse_usage_variants() -> None:
    assert adapter.parse_usage(None) is None
    assert adapter.parse_usage({"prompt_tokens": 3, "completion_tokens": 4}) == Usage(
        prompt_tokens=3, completion_tokens=4, total_tokens=7
    )
    deepseek = {"prompt_tokens": 30, "completion_tokens": 1, "prompt_cache_hit_tokens": 20}
    assert adapter.parse_usage(deepseek).cached_tokens == 20  # type: ignore[union-attr]
    junk = {"prompt_tokens": "3", "completion_tokens": None, "prompt_tokens_details": None}
    assert adapter.parse_usage(junk) == Usage()


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        "text",
        {},
        {"choices": []},
        {"choices": ["x"]},
        {"choices": [{"index": 0}]},
        {"choices": [{"message": {"tool_calls": [{"id": "x"}]}}]},
        {"choices": [{"message": {"tool_calls": ["x"]}}]},
    ],
)
def test_parse_chat_rejects_malformed_bodies(data: Any) -> None:
    with pytest.raises(ResponseError, match="openai"):
        adapter.parse_chat(openai_preset(), data, None)


@pytest.mark.parametrize(
    ("body", "cls", "status"),
    [
        ({"error": {"message": "m", "type": "invalid_request_error"}}, "BadRequestError", 400),
        ({"error": {"message": "m", "code": 401}}, "AuthenticationError", 401),
        ({"error": {"message": "m", "code": "insufficient_quota"}}, "RateLimitError", 429),
        (
            {"error": {"message": "m", "type": "tokens", "code": "rate_limit_exceeded"}},
            "RateLimitError",
            429,
        ),
        ({"error": {"message": "m", "type": "weird"}}, "InternalServerError", 500),
        ({"error": "plain text"}, "InternalServerError", 500),
        ({"object": "error", "message": "m", "code": 400}, "BadRequestError", 400),  # vLLM
    ],
)
def test_error_payloads_in_a_200_are_typed(body: dict[str, Any], cls: str, status: int) -> None:
    with pytest.raises(llmrelay.APIStatusError) as info:
        adapter.parse_chat(openai_preset(), body, "req_9")
    assert type(info.value) is getattr(llmrelay, cls)
    assert info.value.status_code == status
    assert info.value.request_id == "req_9"
    assert info.value.provider == "openai"


def test_parse_embed_sorts_by_index() -> None:
    data = {
        "data": [{"index": 1, "embedding": [1.0]}, {"index": 0, "embedding": [0.0]}],
        "model": "e",
        "usage": {"prompt_tokens": 2, "total_tokens": 2},
    }
    result = adapter.parse_embed(openai_preset(), data, "r")
    assert result.vectors == [[0.0], [1.0]]
    assert result.usage == Usage(prompt_tokens=2, total_tokens=2)
    assert result.request_id == "r"
    for bad in [{}, {"data": "x"}, {"data": [{"index": 0}]}, {"data": [3]}]:
        with pytest.raises(ResponseError):
            adapter.parse_embed(openai_preset(), bad, None)


def test_parse_models() -> None:
    data = {"data": [{"id": "a", "created": 5, "owned_by": "me"}, {"id": "b", "created": "x"}]}
    models = adapter.parse_models(openai_preset(), data)
    assert [(m.id, m.owned_by, m.created) for m in models] == [("a", "me", 5), ("b", None, None)]
    for bad in [None, {}, {"data": [{"name": "no id"}]}]:
        with pytest.raises(ResponseError):
            adapter.parse_models(openai_preset(), bad)


def test_parse_error() -> None:
    info = adapter.parse_error(
        openai_preset(), 429, {"error": {"message": "Slow down", "type": "requests"}}
    )
    assert (info.message, info.code) == ("Slow down", "requests")
    assert adapter.parse_error(openai_preset(), 502, "<html>bad gateway</html>").message == (
        "<html>bad gateway</html>"
    )
    assert adapter.parse_error(openai_preset(), 500, None).message


# -- stream events ---------------------------------------------------------------------------


def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": "c1",
        "object": "chat.completion.chunk",
        "model": "gpt-4o",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, **extra}],
        "usage": None,
    }


def test_stream_parser_text_tool_calls_usage_and_done() -> None:
    parser = adapter.new_stream_parser(openai_preset(), request(stream=True))
    first = parser.parse(event(chunk({"role": "assistant", "content": ""})))
    assert first == StreamChunk(text="", role="assistant", id="c1", model="gpt-4o")
    assert parser.parse(event(chunk({"content": "Hel"}))).text == "Hel"  # type: ignore[union-attr]
    tool = parser.parse(
        event(
            chunk(
                {
                    "tool_calls": [
                        {"index": 0, "id": "call_1", "function": {"name": "f", "arguments": ""}},
                        {"index": 1, "id": "call_2", "function": {"name": "g"}},
                    ]
                }
            )
        )
    )
    assert tool is not None
    assert tool.tool_calls == (
        ToolCallDelta(index=0, id="call_1", name="f"),
        ToolCallDelta(index=1, id="call_2", name="g"),
    )
    piece = parser.parse(
        event(chunk({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}))
    )
    assert piece is not None
    assert piece.tool_calls == (ToolCallDelta(index=1, arguments="{}"),)
    assert not parser.finished()
    end = parser.parse(event(chunk({}, "tool_calls")))
    assert end is not None and end.finish_reason == "tool_calls"
    assert parser.finished()
    usage = parser.parse(
        event({"id": "c1", "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2}})
    )
    assert usage == StreamChunk(
        usage=Usage(prompt_tokens=1, completion_tokens=2, total_tokens=3), id="c1"
    )
    assert parser.parse(event("[DONE]")) is None


def test_stream_parser_tolerates_compatible_quirks() -> None:
    parser = adapter.new_stream_parser(compatible(), request(stream=True))
    assert parser.parse(event("")) is None  # keep-alive
    assert parser.parse(event({"choices": [], "prompt_filter_results": []})) is None  # Azure
    reasoning = parser.parse(event(chunk({"reasoning_content": "hmm"})))
    assert reasoning is not None and reasoning.reasoning == "hmm"
    vllm = parser.parse(event(chunk({"reasoning": "also hmm"})))
    assert vllm is not None and vllm.reasoning == "also hmm"
    no_delta = parser.parse(event({"choices": [{"index": 0, "finish_reason": None}]}))
    assert no_delta is not None and no_delta.text == ""
    moonshot = parser.parse(
        event(chunk({}, "stop", usage={"prompt_tokens": 5, "completion_tokens": 1}))
    )
    assert moonshot is not None
    assert moonshot.usage == Usage(prompt_tokens=5, completion_tokens=1, total_tokens=6)
    assert parser.finished()  # a finish reason without [DONE] is a proper end


def test_stream_parser_finished_by_done_alone() -> None:
    parser = adapter.new_stream_parser(openai_preset(), request(stream=True))
    parser.parse(event(chunk({"content": "x"})))
    assert not parser.finished()
    parser.parse(event("[DONE]"))
    assert parser.finished()


@pytest.mark.parametrize(
    ("data", "cls"),
    [
        ({"error": {"message": "overloaded", "type": "overloaded_error"}}, "OverloadedError"),
        ({"error": {"message": "slow", "code": "rate_limit_exceeded"}}, "RateLimitError"),
        ({"object": "error", "message": "boom", "type": "server_error"}, "InternalServerError"),
    ],
)
def test_stream_error_events_are_typed(data: dict[str, Any], cls: str) -> None:
    parser = adapter.new_stream_parser(openai_preset(), request(stream=True))
    with pytest.raises(llmrelay.APIStatusError) as info:
        parser.parse(event(data))
    assert type(info.value) is getattr(llmrelay, cls)


@pytest.mark.parametrize(
    "data",
    [
        "not json",
        "[1]",
        '"text"',
        '{"choices": ["x"]}',
        '{"choices": {"0": {}}}',
        '{"choices": [{"delta": "x"}]}',
        '{"choices": [{"delta": {"tool_calls": ["x"]}}]}',
    ],
)
def test_stream_parser_rejects_unreadable_events(data: str) -> None:
    parser = adapter.new_stream_parser(openai_preset(), request(stream=True))
    with pytest.raises(ResponseError):
        parser.parse(event(data))


def test_stream_parser_ignores_non_text_content() -> None:
    parser = adapter.new_stream_parser(openai_preset(), request(stream=True))
    parsed = parser.parse(event(chunk({"content": 5})))
    assert parsed is not None and parsed.text == ""
