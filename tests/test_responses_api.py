"""OpenAI's Responses API: `AsyncClient(provider=..., api="responses")`.

Requests validate against the ``/responses`` request schema of OpenAI's OpenAPI spec
(tests/fixtures/openapi/openai-responses.json); replies and typed stream events become the same
unified types as Chat Completions; the mock speaks ``/v1/responses`` in process and over HTTP,
and the official `openai` SDK accepts it (``client.responses.create``, its streams, ``parse``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import openai
import pydantic
import pytest

import llmrelay
from _loopback import Response, json_response, loopback
from _params import named_params
from llmrelay import (
    AsyncClient,
    ConfigError,
    InternalServerError,
    Message,
    RateLimitError,
    RetryPolicy,
    StreamError,
    ToolCall,
    Usage,
)
from llmrelay._request import ChatRequest, normalize_messages
from llmrelay._sse import ServerSentEvent
from llmrelay._structured import split_response_format
from llmrelay.mock import serve
from llmrelay.providers import get_provider
from llmrelay.providers import openai_responses as adapter
from llmrelay.providers.openai_responses import with_responses_api

SPEC = json.loads(
    (Path(__file__).parent / "fixtures" / "openapi" / "openai-responses.json").read_text()
)


# The spec's `oneOf`s carry an OpenAPI `discriminator` that JSON Schema does not read: a message
# with a list of parts is both an `EasyInputMessage` and an `InputMessage` there, so plain
# `oneOf` refuses what the API takes. Here `oneOf` is read as `anyOf` (one branch must match).
_Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    {"oneOf": jsonschema.Draft202012Validator.VALIDATORS["anyOf"]},
)


def schema_of(name: str) -> Any:
    return _Validator({"components": SPEC["components"], "$ref": f"#/components/schemas/{name}"})


CREATE = schema_of("CreateResponse")
RESPONSE = schema_of("Response")


def known_fields(name: str) -> set[str]:
    """Every top-level property a schema (and the allOf parts it is made of) names."""
    schema = SPEC["components"]["schemas"][name]
    out = set(schema.get("properties", {}))
    for part in schema.get("allOf", ()):
        if "$ref" in part:
            out |= known_fields(part["$ref"].rsplit("/", 1)[1])
        out |= set(part.get("properties", {}))
    return out


CREATE_FIELDS = known_fields("CreateResponse")


def assert_valid(validator: Any, body: Any) -> None:
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])


def provider() -> llmrelay.Provider:
    return with_responses_api(get_provider("openai", {}))


def build(messages: Any, *, stream: bool = False, extra_body: Any = None, **params: Any) -> Any:
    output, fmt = split_response_format(params.pop("response_format", None))
    request = ChatRequest(
        model="gpt-5-mini",
        messages=normalize_messages(messages),
        params=named_params(response_format=fmt, **params),
        extra_body=extra_body,
        stream=stream,
        output=output,
    )
    p = provider()
    return p.adapter.build_chat(p, request)


def get_weather(city: str, unit: str = "c") -> str:
    """The weather in a city.

    Args:
        city: Which city.
        unit: "c" or "f".
    """
    return f"22{unit} in {city}"


@dataclasses.dataclass
class City:
    name: str
    population: int
    country: str | None = None


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
HISTORY: list[Any] = [
    {"role": "system", "content": "Be brief."},
    {"role": "developer", "content": [{"type": "text", "text": "Use tools."}]},
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "https://x.test/a.png", "detail": "low"}},
        ],
    },
    Message(
        role="assistant",
        content="Let me look.",
        tool_calls=(ToolCall(id="call_1", name="get_weather", arguments='{"city": "Oslo"}'),),
    ),
    {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    {"role": "user", "content": "Thanks"},
]

REQUESTS: dict[str, tuple[Any, dict[str, Any]]] = {
    "plain": ("Hi", {}),
    "stream": ("Hi", {"stream": True}),
    "sampling": ("Hi", {"temperature": 0.3, "top_p": 0.9, "max_tokens": 64}),
    "history with tools": (HISTORY, {"tools": [WEATHER_TOOL], "tool_choice": "auto"}),
    "a function as a tool": ("Hi", {"tools": [get_weather], "tool_choice": "required"}),
    "forced function": (
        "Hi",
        {
            "tools": [WEATHER_TOOL],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        },
    ),
    "dataclass format": ("Hi", {"response_format": City}),
    "json object": ("Hi", {"response_format": {"type": "json_object"}}),
    "text format": ("Hi", {"response_format": {"type": "text"}}),
    "pass-through fields": (
        "Hi",
        {
            "extra_body": {
                "previous_response_id": "resp_123",
                "store": False,
                "reasoning": {"effort": "low", "summary": "auto"},
                "include": ["reasoning.encrypted_content"],
            }
        },
    ),
}


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_requests_validate_against_the_openapi_schema(name: str) -> None:
    messages, options = REQUESTS[name]
    wire = build(messages, **options)
    assert (wire.method, wire.path) == ("POST", "responses")
    assert_valid(CREATE, wire.json)
    assert set(wire.json) <= CREATE_FIELDS, set(wire.json) - CREATE_FIELDS


def test_the_request_shape() -> None:
    body = build(HISTORY, tools=[WEATHER_TOOL], max_tokens=10).json
    assert body["max_output_tokens"] == 10
    assert body["input"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": [{"type": "input_text", "text": "Use tools."}]},
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "What is this?"},
                {"type": "input_image", "image_url": "https://x.test/a.png", "detail": "low"},
            ],
        },
        {"role": "assistant", "content": "Let me look."},
        {
            "type": "function_call",
            "call_id": "call_1",
            "name": "get_weather",
            "arguments": '{"city": "Oslo"}',
        },
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
        {"role": "user", "content": "Thanks"},
    ]
    assert body["tools"] == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            "strict": False,
        }
    ]


def test_previous_response_id_and_store_pass_through() -> None:
    body = build("Go on", extra_body={"previous_response_id": "resp_1", "store": True}).json
    assert body["previous_response_id"] == "resp_1" and body["store"] is True


def test_a_typed_format_is_strict_json_schema_in_text_format() -> None:
    fmt = build("Hi", response_format=City).json["text"]["format"]
    assert fmt["type"] == "json_schema" and fmt["name"] == "City" and fmt["strict"] is True
    assert fmt["schema"]["required"] == ["name", "population", "country"]


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"stop": "END"}, "no stop"),
        ({"seed": 1}, "no seed"),
        ({"n": 2}, "no n"),
    ],
)
def test_what_the_responses_api_lacks_is_a_config_error(
    options: dict[str, Any], match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        build("Hi", **options)


def test_api_is_checked() -> None:
    with pytest.raises(ConfigError, match="api must be"):
        AsyncClient(provider="mock", api="completions")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="OpenAI-compatible"):
        AsyncClient(provider="anthropic", api_key="k", api="responses")
    with pytest.raises(ConfigError, match="audio"):
        build(
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}
                    ],
                }
            ]
        )


# -- replies --------------------------------------------------------------------------------------

FULL_RESPONSE: dict[str, Any] = {
    "id": "resp_1",
    "object": "response",
    "created_at": 1,
    "status": "completed",
    "model": "gpt-5-mini",
    "output": [
        {
            "type": "reasoning",
            "id": "rs_1",
            "summary": [
                {"type": "summary_text", "text": "First."},
                {"type": "summary_text", "text": "Second."},
            ],
        },
        {
            "type": "message",
            "id": "msg_1",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Hello", "annotations": []}],
        },
        {
            "type": "function_call",
            "id": "fc_1",
            "call_id": "call_9",
            "name": "get_weather",
            "arguments": '{"city": "Oslo"}',
            "status": "completed",
        },
    ],
    "usage": {
        "input_tokens": 10,
        "input_tokens_details": {"cached_tokens": 4},
        "output_tokens": 20,
        "output_tokens_details": {"reasoning_tokens": 8},
        "total_tokens": 30,
    },
}


def parse(body: Any) -> llmrelay.ChatResponse:
    p = provider()
    return adapter.parse_chat(p, body, "req_1")


def test_a_reply_has_text_tool_calls_reasoning_and_usage() -> None:
    reply = parse(FULL_RESPONSE)
    assert reply.text == "Hello"
    assert reply.id == "resp_1" and reply.model == "gpt-5-mini"
    assert reply.finish_reason == "tool_calls"
    assert reply.tool_calls == (
        ToolCall(
            id="call_9",
            name="get_weather",
            arguments='{"city": "Oslo"}',
            parsed_arguments={"city": "Oslo"},
        ),
    )
    assert reply.reasoning == "First.\n\nSecond."
    assert reply.usage == Usage(
        prompt_tokens=10, completion_tokens=20, total_tokens=30, cached_tokens=4, reasoning_tokens=8
    )


@pytest.mark.parametrize(
    ("status", "details", "finish"),
    [
        ("completed", None, "stop"),
        ("incomplete", {"reason": "max_output_tokens"}, "length"),
        ("incomplete", {"reason": "content_filter"}, "content_filter"),
    ],
)
def test_finish_reasons(status: str, details: Any, finish: str) -> None:
    body = {**FULL_RESPONSE, "status": status, "incomplete_details": details}
    body["output"] = FULL_RESPONSE["output"][1:2]
    assert parse(body).finish_reason == finish


def test_a_refusal_part_is_the_refusal() -> None:
    body = {
        **FULL_RESPONSE,
        "output": [
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "refusal", "refusal": "No."}],
            }
        ],
    }
    reply = parse(body)
    assert reply.refusal == "No." and reply.text == ""


@pytest.mark.parametrize(
    ("code", "error"),
    [("rate_limit_exceeded", RateLimitError), ("server_error", InternalServerError)],
)
def test_a_failed_response_is_its_typed_error(code: str, error: type[Exception]) -> None:
    body = {**FULL_RESPONSE, "status": "failed", "error": {"code": code, "message": "bad luck"}}
    with pytest.raises(error, match="bad luck"):
        parse(body)


@pytest.mark.parametrize("body", [[], {"id": "x"}, {"output": [5]}])
def test_a_malformed_reply_is_a_response_error(body: Any) -> None:
    with pytest.raises(llmrelay.ResponseError):
        parse(body)


@pytest.mark.parametrize(
    "item",
    [
        {"type": "message", "role": "assistant", "content": 5},
        {"type": "message", "role": "assistant", "content": True},
        {"type": "reasoning", "summary": 1.5},
    ],
)
def test_an_output_item_of_an_odd_shape_is_skipped_not_a_raw_error(item: dict[str, Any]) -> None:
    reply = parse({**FULL_RESPONSE, "output": [item]})
    assert reply.text == "" and not reply.reasoning


# -- stream events ---------------------------------------------------------------------------------


def events(*items: dict[str, Any]) -> list[ServerSentEvent]:
    return [ServerSentEvent(data=json.dumps(item), event=item["type"]) for item in items]


STREAM = events(
    {"type": "response.created", "response": {"id": "resp_1", "model": "gpt-5-mini", "output": []}},
    {
        "type": "response.reasoning_summary_text.delta",
        "item_id": "rs_1",
        "summary_index": 0,
        "delta": "First.",
    },
    {
        "type": "response.reasoning_summary_text.delta",
        "item_id": "rs_1",
        "summary_index": 1,
        "delta": "Second.",
    },
    {"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 1, "delta": "Hel"},
    {"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 1, "delta": "lo"},
    {
        "type": "response.output_item.added",
        "output_index": 2,
        "item": {
            "type": "function_call",
            "id": "fc_1",
            "call_id": "call_9",
            "name": "get_weather",
            "arguments": "",
        },
    },
    {
        "type": "response.function_call_arguments.delta",
        "output_index": 2,
        "item_id": "fc_1",
        "delta": '{"city": ',
    },
    {
        "type": "response.function_call_arguments.delta",
        "output_index": 2,
        "item_id": "fc_1",
        "delta": '"Oslo"}',
    },
    {
        "type": "response.function_call_arguments.done",
        "output_index": 2,
        "item_id": "fc_1",
        "arguments": '{"city": "Oslo"}',
    },
    {"type": "response.completed", "response": FULL_RESPONSE},
)


def test_stream_events_assemble_to_the_same_reply() -> None:
    from llmrelay._assembler import ReplyAssembler

    parser = adapter.new_stream_parser(provider(), None)  # type: ignore[arg-type]
    assembler = ReplyAssembler()
    chunks = [c for c in (parser.parse(e) for e in STREAM) if c is not None]
    for chunk in chunks:
        assembler.add(chunk)  # type: ignore[arg-type]
    assert parser.finished() and parser.done
    final = assembler.reply(request_id="req_1", provider="openai")
    reply = parse(FULL_RESPONSE)
    for name in ("text", "finish_reason", "tool_calls", "reasoning", "usage", "id", "model"):
        assert getattr(final, name) == getattr(reply, name), name


@pytest.mark.parametrize("odd", [[1], {"a": 1}])
def test_stream_events_with_odd_indexes_are_read_not_raw_errors(odd: Any) -> None:
    # An index or id of another JSON type cannot be a dict key: read as its text, never a
    # raw TypeError (unhashable) out of the stream.
    parser = adapter.new_stream_parser(provider(), None)  # type: ignore[arg-type]
    added = {"type": "function_call", "call_id": "c", "name": "f", "arguments": ""}
    stream = events(
        {"type": "response.reasoning_summary_text.delta", "item_id": odd, "summary_index": odd,
         "delta": "Think."},
        {"type": "response.output_item.added", "output_index": odd, "item": added},
        {"type": "response.function_call_arguments.delta", "output_index": odd, "delta": "{}"},
        {"type": "response.function_call_arguments.done", "output_index": odd, "arguments": "{}"},
    )  # fmt: skip
    chunks = [parser.parse(event) for event in stream]
    assert chunks[0] is not None and chunks[0].reasoning == "Think."
    assert chunks[2] is not None and chunks[2].tool_calls is not None
    assert chunks[2].tool_calls[0].arguments == "{}"


def test_a_stream_without_its_terminal_event_is_not_finished() -> None:
    parser = adapter.new_stream_parser(provider(), None)  # type: ignore[arg-type]
    for event in STREAM[:-1]:
        parser.parse(event)
    assert not parser.finished()


@pytest.mark.parametrize(
    ("event", "error"),
    [
        (
            {
                "type": "response.failed",
                "response": {
                    "status": "failed",
                    "error": {"code": "server_error", "message": "boom"},
                },
            },
            InternalServerError,
        ),
        ({"type": "error", "code": "rate_limit_exceeded", "message": "boom"}, RateLimitError),
    ],
)
def test_failure_events_raise_typed_errors(event: dict[str, Any], error: type[Exception]) -> None:
    parser = adapter.new_stream_parser(provider(), None)  # type: ignore[arg-type]
    with pytest.raises(error, match="boom"):
        parser.parse(events(event)[0])


# -- the mock, in process ----------------------------------------------------------------------------


def mock_client(**options: Any) -> AsyncClient:
    return AsyncClient(provider="mock", api="responses", **options)


async def test_mock_chat_and_stream() -> None:
    async with mock_client() as client:
        reply = await client.chat("Hello there", max_tokens=50)
        seen: list[str] = []
        async with client.stream("Hello there", max_tokens=50, on_text=seen.append) as stream:
            final = await stream.final()
    assert reply.text == final.text == "".join(seen) == "echo: Hello there"
    assert reply.finish_reason == final.finish_reason == "stop"
    assert reply.usage == final.usage and reply.usage is not None
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    assert reply.id is not None and reply.id.startswith("resp_")
    assert reply.provider == "mock"


async def test_mock_truncation_is_length() -> None:
    async with mock_client() as client:
        reply = await client.chat("one two three four five", max_tokens=2)
        final = await client.stream("one two three four five", max_tokens=2).final()
    assert reply.text == final.text == "echo: one "
    assert reply.finish_reason == final.finish_reason == "length"


async def test_mock_tool_calls_and_running_them() -> None:
    async with mock_client() as client:
        reply = await client.chat("Weather?", tools=[get_weather], tool_choice="required")
        final = await client.stream("Weather?", tools=[get_weather], tool_choice="required").final()
        for got in (reply, final):
            assert got.finish_reason == "tool_calls"
            (call,) = got.tool_calls
            assert call.name == "get_weather" and call.parse_arguments() == {"city": ""}
        results = await llmrelay.run_tool_calls(reply, [get_weather])
        follow = await client.chat(
            [{"role": "user", "content": "Weather?"}, reply.message, *results]
        )
    assert results == [
        Message(
            role="tool", content="22c in ", tool_call_id=reply.tool_calls[0].id, name="get_weather"
        )
    ]
    assert follow.text == "echo: Weather?"


async def test_mock_structured_output() -> None:
    async with mock_client() as client:
        reply = await client.chat("A city", response_format=City)
        final = await client.stream("A city", response_format=City).final()
    assert reply.parsed == final.parsed == City(name="", population=0, country="")


async def test_mock_faults_retry_and_fail_mid_stream() -> None:
    async with mock_client(
        retry=RetryPolicy(max_retries=2, backoff_base=0.0, backoff_cap=0.0)
    ) as client:
        reply = await client.chat("Hi", extra_headers={"x-mock-fault": "429;retry-after=0;times=1"})
        assert reply.text == "echo: Hi"
        stream = client.stream("Hi there", extra_headers={"x-mock-fault": "error-event;after=1"})
        with pytest.raises(StreamError) as caught:
            async for _ in stream:
                pass
    assert isinstance(caught.value.__cause__, InternalServerError)
    assert caught.value.partial == "echo: "


def test_mock_bodies_validate_against_the_response_schema() -> None:
    from llmrelay.mock import MockEngine

    engine = MockEngine()
    for payload in (
        {"model": "m", "input": "Hi"},
        {"model": "m", "input": "Hi", "max_output_tokens": 1},
        {
            "model": "m",
            "input": "Hi",
            "tools": [
                {
                    "type": "function",
                    "name": "f",
                    "parameters": {
                        "type": "object",
                        "properties": {"a": {"type": "integer"}},
                        "required": ["a"],
                    },
                    "strict": True,
                }
            ],
            "tool_choice": "required",
        },
    ):
        answer = engine.handle("POST", "/v1/responses", {}, {}, json.dumps(payload).encode())
        assert answer.status == 200
        assert_valid(RESPONSE, answer.json())


def test_the_sync_client_speaks_the_responses_api() -> None:
    with llmrelay.Client(provider="mock", api="responses") as client:
        assert client.chat("Hi").text == "echo: Hi"
        assert "".join(c.text for c in client.stream("Hi")) == "echo: Hi"


# -- over HTTP: llmrelay and the official SDK against `llmrelay mock serve` ---------------------------


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with serve() as base:
        yield base


async def test_llmrelay_over_http(url: str) -> None:
    async with AsyncClient(
        provider="openai",
        base_url=f"{url}/v1",
        api_key="unused",
        model="mock-echo",
        api="responses",
    ) as client:
        reply = await client.chat("Hello there")
        final = await client.stream("Hello there").final()
        typed = await client.chat("A city", response_format=City)
    assert reply.text == final.text == "echo: Hello there"
    assert typed.parsed == City(name="", population=0, country="")


class SDKCity(pydantic.BaseModel):
    name: str
    population: int


def test_the_openai_sdk_accepts_the_mock(url: str) -> None:
    sdk = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    response = sdk.responses.create(model="mock-echo", input="Hello there")
    assert response.output_text == "echo: Hello there"
    assert response.status == "completed" and response.usage is not None
    # The typed stream, each event validated by the SDK's own models.
    kinds = []
    text = []
    with sdk.responses.stream(model="mock-echo", input="Hello there") as stream:
        for event in stream:
            kinds.append(event.type)
            if event.type == "response.output_text.delta":
                text.append(event.delta)
        final = stream.get_final_response()
    assert "".join(text) == final.output_text == "echo: Hello there"
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    # Structured output through the SDK's parse helper.
    parsed = sdk.responses.parse(model="mock-echo", input="A city", text_format=SDKCity)
    assert parsed.output_parsed == SDKCity(name="", population=0, country="")
    # Tool calls.
    called = sdk.responses.create(
        model="mock-echo",
        input="Weather?",
        tools=[
            {
                "type": "function",
                "name": "get_weather",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
                "strict": True,
            }
        ],
        tool_choice="required",
    )
    (item,) = called.output
    assert item.type == "function_call" and json.loads(item.arguments) == {"city": ""}
    # create(stream=True): the raw event iterator.
    events = list(sdk.responses.create(model="mock-echo", input="Hi", stream=True))
    assert events[-1].type == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))


async def test_canned_stream_over_loopback_with_reasoning_and_tool_calls() -> None:
    body = b"".join(f"event: {e.event}\ndata: {e.data}\n\n".encode() for e in STREAM)

    def respond(request: Any) -> Response:
        if request.json.get("stream"):
            return Response([body])
        return json_response(FULL_RESPONSE)

    async with (
        loopback(respond) as server,
        AsyncClient(
            provider="openai", base_url=server.base_url, api_key="k", model="m", api="responses"
        ) as client,
    ):
        final = await client.stream("Hi").final()
        reply = await client.chat("Hi")
    assert server.requests[0].path.endswith("/responses")
    for name in ("text", "finish_reason", "tool_calls", "reasoning", "usage", "id"):
        assert getattr(final, name) == getattr(reply, name), name
