"""What the echo model says besides the echo: tool calls, schema instances, stop sequences, `n`,
logprobs and one model's details, in every wire family, in process (the engine) and through
llmrelay's own client (in process and over loopback)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import llmrelay
from llmrelay.mock import MockEngine, serve
from llmrelay.mock._schema_instance import instance_of

from ._helpers import (
    ANTHROPIC,
    ANTHROPIC_HEADERS,
    GEMINI,
    OPENAI_CHAT,
    anthropic,
    chat,
    datas,
    error_of,
    gemini,
    get,
    post,
)

PARAMS = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1}},
    "required": ["city"],
}
OPENAI_TOOLS = [
    {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}},
    {"type": "function", "function": {"name": "get_weather", "parameters": PARAMS}},
]
ANTHROPIC_TOOLS = [
    {"name": "get_time", "input_schema": {"type": "object"}},
    {"name": "get_weather", "input_schema": PARAMS},
]
GEMINI_TOOLS = [
    {"functionDeclarations": [{"name": "get_time"}, {"name": "get_weather", "parameters": PARAMS}]}
]

SCHEMAS: list[dict[str, Any]] = [
    {"type": "object", "properties": {"a": {"type": "string", "maxLength": 3}}, "required": ["a"]},
    {"type": "array", "items": {"enum": [1, 2, 3]}, "minItems": 3, "uniqueItems": True},
    {"type": "array", "prefixItems": [{"type": "boolean"}, {"type": "null"}], "maxItems": 2},
    {"anyOf": [{"type": "null"}, {"type": "string", "format": "email"}]},
    {"type": "object", "minProperties": 2, "additionalProperties": {"type": "integer"}},
    {"type": "integer", "exclusiveMinimum": 10, "exclusiveMaximum": 12},
    {"type": "integer", "multipleOf": 7, "minimum": 30, "maximum": 40},
    {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
    {"type": "string", "minLength": 40, "format": "uuid"} | {"format": "date-time"},
    {"type": "string", "pattern": "^[0-9]+$"},
    {"oneOf": [{"const": "fixed"}, {"type": "integer"}]},
    {
        "$defs": {
            "Tree": {"type": "object", "properties": {"kids": {"items": {"$ref": "#/$defs/Tree"}}}}
        },
        "$ref": "#/$defs/Tree",
    },
    {
        "type": "object",
        "properties": {"kind": {"type": "string", "enum": ["x"]}, "when": {"format": "date"}},
        "allOf": [{"properties": {"n": {"type": "number", "minimum": 5}}, "required": ["n"]}],
    },
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_a_schema_instance_is_valid_against_its_schema(schema: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(instance_of(schema, "echo: hi"))


SPEC = json.loads((Path(__file__).parents[1] / "fixtures" / "openapi" / "openai.json").read_text())


@pytest.mark.parametrize("name", sorted(SPEC["components"]["schemas"]))
def test_an_instance_of_every_schema_in_openais_spec_is_valid(name: str) -> None:
    root = {"$ref": f"#/components/schemas/{name}", "components": SPEC["components"]}
    jsonschema.Draft202012Validator(root).validate(instance_of(root, "t"))


@pytest.mark.parametrize(
    "pattern",
    [
        r"^tunnel_[a-z0-9]{32}$",
        r"^[A-Z]{2}\d{4}$",
        r"^[^\s@]+@[^\s@]+\.[a-z]{2,}$",
        r"^\+?[1-9]\d{1,14}$",
        r"^(ab|cd)-\1$",
        r"^(?:[01]\d|2[0-3]):[0-5]\d$",
        r"^\W\S\D.$",
    ],
)
def test_a_string_pattern_is_matched(pattern: str) -> None:
    value = instance_of({"type": "string", "pattern": pattern}, "echo: hi")
    assert re.search(pattern, value), value


def test_gemini_openapi_schemas_are_read() -> None:
    schema = {"type": "OBJECT", "properties": {"n": {"type": "INTEGER"}, "s": {"type": "STRING"}}}
    assert instance_of(schema, "t") == {"n": 1, "s": "t"}


# --- tool calls -----------------------------------------------------------------------------


def openai_call(body: dict[str, Any]) -> Any:
    return post(MockEngine(), OPENAI_CHAT, chat("call get_weather now", **body)).json()


def test_openai_tool_calls_by_choice() -> None:
    required = openai_call({"tools": OPENAI_TOOLS, "tool_choice": "required"})["choices"][0]
    assert required["finish_reason"] == "tool_calls"
    assert required["message"]["content"] is None
    call = required["message"]["tool_calls"][0]
    assert call["type"] == "function" and call["function"]["name"] == "get_weather"
    jsonschema.validate(json.loads(call["function"]["arguments"]), PARAMS)
    forced = {"type": "function", "function": {"name": "get_time"}}
    named = openai_call({"tools": OPENAI_TOOLS, "tool_choice": forced})["choices"][0]
    assert named["finish_reason"] == "stop"
    assert json.loads(named["message"]["tool_calls"][0]["function"]["arguments"]) == {}
    auto = openai_call({"tools": OPENAI_TOOLS})["choices"][0]
    assert auto["message"]["tool_calls"][0]["function"]["name"] == "get_weather"
    none = openai_call({"tools": OPENAI_TOOLS, "tool_choice": "none"})["choices"][0]
    assert none["message"]["content"] == "echo: call get_weather now"
    missing = {"type": "function", "function": {"name": "nope"}}
    unknown = post(MockEngine(), OPENAI_CHAT, chat(tools=OPENAI_TOOLS, tool_choice=missing))
    assert unknown.status == 400 and "nope" in error_of(unknown)["message"]


def test_openai_streamed_tool_call() -> None:
    body = chat("hi", tools=OPENAI_TOOLS, tool_choice="required", stream=True)
    chunks = datas(post(MockEngine(), OPENAI_CHAT, body))
    first = chunks[0]["choices"][0]["delta"]["tool_calls"][0]
    assert first["id"].startswith("call_mock_") and first["function"] == {
        "name": "get_time",
        "arguments": "",
    }
    arguments = "".join(
        c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
        for c in chunks[1:-1]
        if c["choices"][0]["delta"]
    )
    assert json.loads(arguments) == {}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_anthropic_tool_use_and_tool_result() -> None:
    engine = MockEngine()
    body = anthropic("get_weather?", tools=ANTHROPIC_TOOLS, tool_choice={"type": "any"})
    message = post(engine, ANTHROPIC, body, ANTHROPIC_HEADERS).json()
    block = message["content"][0]
    assert message["stop_reason"] == "tool_use" and block["type"] == "tool_use"
    assert block["name"] == "get_weather" and block["id"].startswith("toolu_mock_")
    jsonschema.validate(block["input"], PARAMS)
    result = {"type": "tool_result", "tool_use_id": block["id"], "content": "sunny"}
    turns = [
        *body["messages"],
        {"role": "assistant", "content": [block]},
        {"role": "user", "content": [result]},
    ]
    answered = post(
        engine, ANTHROPIC, anthropic(tools=ANTHROPIC_TOOLS) | {"messages": turns}, ANTHROPIC_HEADERS
    )
    assert answered.json()["content"] == [{"type": "text", "text": "echo: get_weather?"}]
    streamed = post(engine, ANTHROPIC, body | {"stream": True}, ANTHROPIC_HEADERS)
    events = datas(streamed)
    assert events[1]["content_block"]["type"] == "tool_use"
    assert events[1]["content_block"]["input"] == {}
    partial = "".join(
        e["delta"]["partial_json"] for e in events if e["type"] == "content_block_delta"
    )
    assert json.loads(partial) == block["input"]


@pytest.mark.parametrize("snake", [False, True])
def test_gemini_function_calls(snake: bool) -> None:
    body = gemini("get_weather please") | {"tools": GEMINI_TOOLS}
    if snake:
        body["tool_config"] = {"function_calling_config": {"mode": "ANY"}}
        body["tools"] = [{"function_declarations": [{"name": "get_time"}]}]
    else:
        body["toolConfig"] = {"functionCallingConfig": {"mode": "ANY"}}
    response = post(MockEngine(), f"{GEMINI}:generateContent", body).json()
    part = response["candidates"][0]["content"]["parts"][0]
    if snake:
        assert part == {"functionCall": {"name": "get_time", "args": {}}}
    else:
        assert part["functionCall"]["name"] == "get_weather"
        jsonschema.validate(part["functionCall"]["args"], PARAMS)
    body["toolConfig"] = {"functionCallingConfig": {"mode": "NONE"}}
    body.pop("tool_config", None)
    text = post(MockEngine(), f"{GEMINI}:generateContent", body).json()
    assert "text" in text["candidates"][0]["content"]["parts"][0]


# --- structured output, stop, n, logprobs ---------------------------------------------------


def test_structured_output_in_every_family() -> None:
    schema = {
        "type": "object",
        "properties": {"tags": {"type": "array", "items": {"type": "string"}}},
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "t", "schema": schema}}
    engine = MockEngine()
    openai = post(engine, OPENAI_CHAT, chat("x", response_format=fmt)).json()
    expected = {"tags": ["echo: x"]}
    assert json.loads(openai["choices"][0]["message"]["content"]) == expected
    claude = anthropic("x", output_config={"format": {"type": "json_schema", "schema": schema}})
    message = post(engine, ANTHROPIC, claude, ANTHROPIC_HEADERS).json()
    assert json.loads(message["content"][0]["text"]) == expected
    config = {"responseMimeType": "application/json", "responseJsonSchema": schema}
    response = post(engine, f"{GEMINI}:generateContent", gemini("x", **config)).json()
    assert json.loads(response["candidates"][0]["content"]["parts"][0]["text"]) == expected
    streamed = post(engine, OPENAI_CHAT, chat("x", response_format=fmt, stream=True))
    pieces = [c["choices"][0]["delta"].get("content") for c in datas(streamed) if c["choices"]]
    assert len([p for p in pieces if p]) > 1  # JSON streams in pieces too
    assert json.loads("".join(p for p in pieces if p)) == expected


@pytest.mark.parametrize(
    ("path", "body", "headers", "read"),
    [
        (
            OPENAI_CHAT,
            chat("alpha beta gamma delta", stop=["gamma", "beta"]),
            {},
            lambda r: (r["choices"][0]["message"]["content"], r["choices"][0]["finish_reason"]),
        ),
        (
            ANTHROPIC,
            anthropic("alpha beta gamma delta", stop_sequences=["gamma"]),
            ANTHROPIC_HEADERS,
            lambda r: (r["content"][0]["text"], (r["stop_reason"], r["stop_sequence"])),
        ),
        (
            f"{GEMINI}:generateContent",
            gemini("alpha beta gamma delta", stopSequences=["gamma"]),
            {},
            lambda r: (
                r["candidates"][0]["content"]["parts"][0]["text"],
                r["candidates"][0]["finishReason"],
            ),
        ),
    ],
)
def test_stop_sequences(path: str, body: Any, headers: Any, read: Any) -> None:
    text, finish = read(post(MockEngine(), path, body, headers).json())
    assert text in ("echo: alpha ", "echo: alpha beta ")  # the earliest stop sequence wins
    assert finish in ("stop", ("stop_sequence", "gamma"), "STOP")


def test_max_tokens_before_a_stop_sequence_still_means_length() -> None:
    body = chat("alpha beta gamma", stop="gamma", max_tokens=2)
    choice = post(MockEngine(), OPENAI_CHAT, body).json()["choices"][0]
    assert choice["finish_reason"] == "length" and choice["message"]["content"] == "echo: alpha "


def test_n_choices_and_logprobs() -> None:
    body = chat("a b", n=3, logprobs=True, top_logprobs=2)
    reply = post(MockEngine(), OPENAI_CHAT, body).json()
    assert [c["index"] for c in reply["choices"]] == [0, 1, 2]
    assert reply["usage"]["completion_tokens"] == 9
    content = reply["choices"][0]["logprobs"]["content"]
    assert [t["token"] for t in content] == ["echo: ", "a ", "b"]
    assert content[1]["bytes"] == list(b"a ") and len(content[1]["top_logprobs"]) == 2
    assert content[1]["top_logprobs"][0]["logprob"] == content[1]["logprob"] > -0.1
    streamed = datas(post(MockEngine(), OPENAI_CHAT, body | {"stream": True}))
    indexes = {c["choices"][0]["index"] for c in streamed if c["choices"]}
    assert indexes == {0, 1, 2}
    tokens = [
        t["token"]
        for c in streamed
        if c["choices"] and c["choices"][0]["index"] == 0 and c["choices"][0]["logprobs"]
        for t in c["choices"][0]["logprobs"]["content"]
    ]
    assert tokens == ["echo: ", "a ", "b"]
    plain = post(MockEngine(), OPENAI_CHAT, chat()).json()["choices"][0]
    assert plain["logprobs"] is None
    too_many = post(MockEngine(), OPENAI_CHAT, chat(n=129))
    assert too_many.status == 400


def test_gemini_candidates_and_logprobs() -> None:
    config = {"candidateCount": 2, "responseLogprobs": True, "logprobs": 1}
    response = post(MockEngine(), f"{GEMINI}:generateContent", gemini("a b", **config)).json()
    assert [c["index"] for c in response["candidates"]] == [0, 1]
    assert response["usageMetadata"]["candidatesTokenCount"] == 6
    result = response["candidates"][0]["logprobsResult"]
    assert [c["token"] for c in result["chosenCandidates"]] == ["echo: ", "a ", "b"]
    assert len(result["topCandidates"][0]["candidates"]) == 1
    assert response["candidates"][0]["avgLogprobs"] < 0


# --- one model's details --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "headers", "read", "error"),
    [
        ("/v1/models/mock-echo", {}, lambda b: b["id"], lambda b: b["error"]["type"]),
        (
            "/v1/models/mock-echo",
            ANTHROPIC_HEADERS,
            lambda b: b["id"],
            lambda b: b["error"]["type"],
        ),
        ("/v1beta/models/mock-echo", {}, lambda b: b["name"], lambda b: b["error"]["status"]),
    ],
)
def test_one_model_and_an_unknown_one(path: str, headers: Any, read: Any, error: Any) -> None:
    engine = MockEngine()
    found = get(engine, path, headers)
    assert found.status == 200 and read(found.json()).endswith("mock-echo")
    missing = get(engine, path.replace("mock-echo", "gpt-nope"), headers)
    assert missing.status == 404
    assert error(missing.json()) in ("invalid_request_error", "not_found_error", "NOT_FOUND")


# --- through llmrelay's own client ----------------------------------------------------------


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with serve() as base:
        yield base


WEATHER = OPENAI_TOOLS[1]


@pytest.mark.parametrize("provider", ["mock", "openai", "anthropic", "gemini"])
async def test_llmrelay_reads_the_mock_tool_calls_stop_and_n(url: str, provider: str) -> None:
    bases = {"openai": f"{url}/v1", "anthropic": f"{url}/v1", "gemini": f"{url}/v1beta"}
    options: dict[str, Any] = {"provider": provider, "model": "mock-echo"}
    if provider != "mock":
        options |= {"base_url": bases[provider], "api_key": "k"}
    async with llmrelay.AsyncClient(**options) as client:
        reply = await client.chat("weather?", tools=[WEATHER], tool_choice="required")
        assert reply.finish_reason == "tool_calls"
        assert [call.name for call in reply.tool_calls] == ["get_weather"]
        jsonschema.validate(reply.tool_calls[0].parsed_arguments, PARAMS)
        stream = client.stream("get_weather now", tools=[WEATHER])
        async with stream:
            async for _ in stream:
                pass
        final = await stream.final()
        assert [call.name for call in final.tool_calls] == ["get_weather"]
        stopped = await client.chat("red green blue", stop=["blue"])
        assert stopped.text == "echo: red green " and stopped.finish_reason == "stop"
        if provider != "anthropic":  # Anthropic has no n
            many = await client.chat("two", n=2)
            assert [choice.text for choice in many.choices] == ["echo: two"] * 2
