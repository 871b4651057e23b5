"""Structured outputs: `response_format=` a pydantic model, a dataclass, a TypedDict or a JSON
Schema; what each wire family is sent; `reply.parsed` and `stream.final().parsed` over a real
loopback server for every family; invalid output and refusals."""

from __future__ import annotations

import dataclasses
import enum
import json
import re
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal, NotRequired, TypedDict

import pydantic
import pytest

from _loopback import LoopbackServer, Request, Response, json_response, loopback
from _params import named_params
from llmrelay import (
    AsyncClient,
    ConfigError,
    OutputValidationError,
    ResponseError,
    RetryPolicy,
)
from llmrelay._request import ChatRequest, normalize_messages
from llmrelay._structured import split_response_format
from llmrelay.providers import get_provider

KEY = "sk-test-structured"


# -- the types under test ------------------------------------------------------------------------


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclasses.dataclass
class LineItem:
    name: str
    quantity: int = 1


@dataclasses.dataclass
class Invoice:
    """An invoice."""

    number: str
    items: list[LineItem]
    total: float
    color: Color
    note: str | None = None
    kind: Literal["paper", "email"] = "email"


class InvoiceDict(TypedDict):
    number: str
    items: list[LineItem]
    total: float
    color: Color
    note: NotRequired[str | None]


class PLine(pydantic.BaseModel):
    name: str
    quantity: int = 1


class PInvoice(pydantic.BaseModel):
    number: str
    items: list[PLine]
    total: float
    color: Color
    note: str | None = None


INVOICE_SCHEMA: dict[str, Any] = {
    "title": "Invoice",
    "type": "object",
    "properties": {
        "number": {"type": "string"},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "quantity": {"type": "integer"}},
                "required": ["name"],
            },
        },
        "total": {"type": "number"},
        "color": {"enum": ["red", "blue"]},
        "note": {"type": "string"},
    },
    "required": ["number", "items", "total", "color"],
}

# What a strict-mode model answers: every property present, optional ones null.
ANSWER = {
    "number": "INV-7",
    "items": [{"name": "tea", "quantity": None}, {"name": "cake", "quantity": 2}],
    "total": 12,
    "color": "blue",
    "note": None,
    "kind": None,
}
ANSWER_TEXT = json.dumps(ANSWER)

EXPECTED: dict[str, Any] = {
    "dataclass": Invoice(
        number="INV-7",
        items=[LineItem(name="tea"), LineItem(name="cake", quantity=2)],
        total=12.0,
        color=Color.BLUE,
    ),
    "typeddict": {
        "number": "INV-7",
        "items": [LineItem(name="tea"), LineItem(name="cake", quantity=2)],
        "total": 12.0,
        "color": Color.BLUE,
        "note": None,
    },
    "pydantic": PInvoice(
        number="INV-7",
        items=[PLine(name="tea"), PLine(name="cake", quantity=2)],
        total=12.0,
        color=Color.BLUE,
    ),
    "schema": {
        "number": "INV-7",
        "items": [{"name": "tea"}, {"name": "cake", "quantity": 2}],
        "total": 12,
        "color": "blue",
    },
}
FORMATS: dict[str, Any] = {
    "dataclass": Invoice,
    "typeddict": InvoiceDict,
    "pydantic": PInvoice,
    "schema": INVOICE_SCHEMA,
}
# The schema dict has no `kind`: the strict answer's extra key would be refused there.
ANSWERS = {
    name: {k: v for k, v in ANSWER.items() if name != "schema" or k != "kind"} for name in FORMATS
}


def wire_body(provider: str, response_format: Any, **params: Any) -> dict[str, Any]:
    """What the adapter of `provider` sends for a chat with this response_format."""
    p = get_provider(provider, {})
    output, fmt = split_response_format(response_format)
    request = ChatRequest(
        model="m",
        messages=normalize_messages("Make an invoice"),
        params=named_params(response_format=fmt, **params),
        output=output,
    )
    body: dict[str, Any] = p.adapter.build_chat(p, request).json
    return body


# -- schemas -------------------------------------------------------------------------------------


def test_a_dataclass_becomes_a_strict_openai_json_schema() -> None:
    body = wire_body("openai", Invoice)
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema"
    spec = fmt["json_schema"]
    assert spec["name"] == "Invoice" and spec["strict"] is True
    schema = spec["schema"]
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["number", "items", "total", "color", "note", "kind"]
    assert schema["description"] == "An invoice."
    # Optional properties become nullable instead of optional.
    assert schema["properties"]["kind"] == {
        "anyOf": [{"enum": ["paper", "email"], "type": "string"}, {"type": "null"}]
    }
    line = schema["properties"]["items"]["items"]
    assert line["required"] == ["name", "quantity"] and line["additionalProperties"] is False
    assert line["properties"]["quantity"] == {"type": ["integer", "null"]}
    assert schema["properties"]["color"] == {"enum": ["red", "blue"], "type": "string"}


def test_a_pydantic_model_keeps_its_defs_and_loses_defaults_in_strict_form() -> None:
    schema = wire_body("openai", PInvoice)["response_format"]["json_schema"]["schema"]
    assert "$defs" in schema and schema["$defs"]["PLine"]["additionalProperties"] is False
    assert schema["$defs"]["PLine"]["required"] == ["name", "quantity"]
    assert "default" not in json.dumps(schema)


@dataclasses.dataclass
class Tags:
    tags: dict[str, int]


def test_a_free_form_object_cannot_be_strict_and_is_sent_non_strict() -> None:
    spec = wire_body("openai", Tags)["response_format"]["json_schema"]
    assert spec["strict"] is False
    assert spec["schema"]["properties"]["tags"] == {
        "type": "object",
        "additionalProperties": {"type": "integer"},
    }


def test_an_openai_shaped_format_is_sent_as_given() -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    assert wire_body("openai", fmt)["response_format"] == fmt
    assert wire_body("openai", {"type": "json_object"})["response_format"] == {
        "type": "json_object"
    }


def test_anthropic_gets_native_structured_output() -> None:
    body = wire_body("anthropic", Invoice)
    fmt = body["output_config"]["format"]
    assert fmt["type"] == "json_schema"
    assert fmt["schema"]["additionalProperties"] is False
    assert "response_format" not in body


class Bounded(pydantic.BaseModel):
    count: int = pydantic.Field(ge=0, le=9, description="How many")
    tags: list[str] = pydantic.Field(min_length=2)
    code: str | None = pydantic.Field(default=None, pattern="^[A-Z]+$")


def test_anthropic_gets_only_the_keywords_it_takes() -> None:
    schema = wire_body("anthropic", Bounded)["output_config"]["format"]["schema"]
    props = schema["properties"]
    assert props["count"] == {
        "type": "integer",
        "title": "Count",
        "description": "How many\n\n{maximum: 9, minimum: 0}",
    }
    assert props["tags"]["description"] == "{minItems: 2}" and "minItems" not in props["tags"]
    assert props["code"]["anyOf"][1] == {"type": "null"}
    assert props["code"]["anyOf"][0] == {"type": "string", "description": "{pattern: ^[A-Z]+$}"}
    assert schema["additionalProperties"] is False
    line = wire_body("anthropic", Invoice)["output_config"]["format"]["schema"]
    quantity = line["properties"]["items"]["items"]["properties"]["quantity"]
    assert quantity == {"anyOf": [{"type": "integer"}, {"type": "null"}]}  # no type lists


async def test_what_anthropic_was_not_told_is_still_checked() -> None:
    text = json.dumps({"count": 42, "tags": ["a", "b"], "code": None})
    async with served(lambda request: anthropic_reply(text, False), "anthropic") as (_, client):
        with pytest.raises(OutputValidationError, match="count"):
            await client.chat("x", response_format=Bounded)


def test_anthropic_takes_a_raw_json_schema_format_and_refuses_bare_json_mode() -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": INVOICE_SCHEMA}}
    sent = wire_body("anthropic", fmt)["output_config"]["format"]["schema"]
    assert sent["properties"] == INVOICE_SCHEMA["properties"] | {
        "items": sent["properties"]["items"]
    }
    assert sent["additionalProperties"] is False  # closed, as Anthropic requires
    assert sent["properties"]["items"]["items"]["additionalProperties"] is False
    with pytest.raises(ConfigError, match="no JSON mode without a schema"):
        wire_body("anthropic", {"type": "json_object"})


def test_gemini_gets_the_schema_as_written() -> None:
    config = wire_body("gemini", Invoice)["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    schema = config["responseJsonSchema"]
    assert "additionalProperties" not in schema  # not the strict form: optional stays optional
    assert schema["required"] == ["number", "items", "total", "color"]


@pytest.mark.parametrize("preset", ["deepseek", "qwen", "moonshot", "zhipu"])
def test_json_mode_presets_get_json_object_and_the_schema_in_a_system_message(
    preset: str,
) -> None:
    body = wire_body(preset, Invoice)
    assert body["response_format"] == {"type": "json_object"}
    first = body["messages"][0]
    assert first["role"] == "system" and "JSON Schema" in first["content"]
    assert '"number"' in first["content"]
    assert body["messages"][1] == {"role": "user", "content": "Make an invoice"}


@pytest.mark.parametrize("preset", ["openai", "groq", "mistral", "openrouter", "vllm", "ollama"])
def test_json_schema_presets_get_json_schema(preset: str) -> None:
    assert wire_body(preset, Invoice)["response_format"]["type"] == "json_schema"


@pytest.mark.parametrize(
    "bad",
    [{"type": "yaml"}, 42, "json", int, {"type": "json_schema", "json_schema": {"name": "x"}}],
)
def test_a_bad_response_format_is_a_config_error(bad: Any) -> None:
    with pytest.raises(ConfigError, match="response_format"):
        split_response_format(bad)


@dataclasses.dataclass
class Node:
    children: list[Node]


def test_a_recursive_dataclass_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="refers to itself"):
        split_response_format(Node)


# -- replies over a loopback server, per wire family ---------------------------------------------

TEXT_PIECES = [ANSWER_TEXT[:10], ANSWER_TEXT[10:40], ANSWER_TEXT[40:]]


def _sse(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n".encode()


def openai_reply(text: str, stream: bool) -> Response:
    if not stream:
        return json_response(
            {
                "id": "c1",
                "object": "chat.completion",
                "model": "m",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                ],
            }
        )
    pieces = [text[:10], text[10:]] if text else [""]
    events = [
        _sse({"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {"content": p}}]})
        for p in pieces
    ]
    events.append(
        _sse({"id": "c1", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    )
    return Response([*events, b"data: [DONE]\n\n"])


def anthropic_reply(text: str, stream: bool, stop: str = "end_turn") -> Response:
    usage = {"input_tokens": 5, "output_tokens": 7}
    if not stream:
        return json_response(
            {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": "claude",
                "content": [{"type": "text", "text": text}],
                "stop_reason": stop,
                "usage": usage,
            }
        )
    start = {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude",
            "content": [],
            "usage": usage,
        },
    }
    events = [
        _sse(start, "message_start"),
        _sse(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
            "content_block_start",
        ),
    ]
    for piece in [text[:10], text[10:]]:
        delta = {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": piece},
        }
        events.append(_sse(delta, "content_block_delta"))
    events.append(_sse({"type": "content_block_stop", "index": 0}, "content_block_stop"))
    events.append(
        _sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop},
                "usage": {"output_tokens": 7},
            },
            "message_delta",
        )
    )
    events.append(_sse({"type": "message_stop"}, "message_stop"))
    return Response(events)


def gemini_reply(text: str, stream: bool) -> Response:
    usage = {"promptTokenCount": 5, "candidatesTokenCount": 7, "totalTokenCount": 12}

    def body(piece: str, finish: bool) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": piece}]}}
        if finish:
            candidate["finishReason"] = "STOP"
        return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": "g"}

    if not stream:
        return json_response(body(text, True))
    return Response([_sse(body(text[:10], False)), _sse(body(text[10:], True))])


REPLIES: dict[str, Callable[[str, bool], Response]] = {
    "openai": openai_reply,
    "anthropic": anthropic_reply,
    "gemini": gemini_reply,
}


@asynccontextmanager
async def served(
    respond: Callable[[Request], Response], provider: str
) -> AsyncIterator[tuple[LoopbackServer, AsyncClient]]:
    async with loopback(respond) as server, client_for(server.base_url, provider) as client:
        yield server, client


def client_for(base_url: str, provider: str) -> AsyncClient:
    return AsyncClient(
        provider=provider,
        api_key=KEY,
        base_url=base_url,
        model="m",
        retry=RetryPolicy(max_retries=0),
    )


def is_stream(request: Request) -> bool:
    return bool((request.json or {}).get("stream")) or "stream" in request.path.lower()


@pytest.mark.parametrize("family", sorted(REPLIES))
@pytest.mark.parametrize("kind", sorted(FORMATS))
async def test_reply_parsed_and_final_parsed_over_loopback(family: str, kind: str) -> None:
    text = json.dumps(ANSWERS[kind])
    reply_of = REPLIES[family]
    async with served(lambda request: reply_of(text, is_stream(request)), family) as (
        server,
        client,
    ):
        reply = await client.chat("Make an invoice", response_format=FORMATS[kind])
        async with client.stream("Make an invoice", response_format=FORMATS[kind]) as stream:
            chunks = [chunk async for chunk in stream]
            final = await stream.final()
    assert reply.parsed == EXPECTED[kind]
    assert final.parsed == EXPECTED[kind]
    assert final.text == reply.text == text
    assert "".join(chunk.text for chunk in chunks) == text
    sent = server.requests[0].json
    if family == "openai":
        assert sent["response_format"]["json_schema"]["strict"] is True
    elif family == "anthropic":
        assert sent["output_config"]["format"]["type"] == "json_schema"
    else:
        assert "responseJsonSchema" in sent["generationConfig"]


@pytest.mark.parametrize("family", sorted(REPLIES))
@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("not json at all", "not JSON"),
        ('{"number": 7, "items": [], "total": 1, "color": "red"}', "$.number: expected string"),
        ('{"number": "7", "items": [{}], "total": 1, "color": "red"}', "'name'"),
        ('{"number": "7", "items": [], "total": 1, "color": "green"}', "not one of"),
        ('{"number": "x", "items": []}', "missing required property 'total'"),
        ("", "not JSON"),
    ],
)
async def test_invalid_output_is_an_output_validation_error(
    family: str, text: str, problem: str
) -> None:
    reply_of = REPLIES[family]
    async with served(lambda request: reply_of(text, is_stream(request)), family) as (
        _server,
        client,
    ):
        with pytest.raises(OutputValidationError) as caught:
            await client.chat("x", response_format=INVOICE_SCHEMA)
        stream = client.stream("x", response_format=INVOICE_SCHEMA)
        chunks = [chunk async for chunk in stream]  # reading the stream itself is fine
        with pytest.raises(OutputValidationError) as streamed:
            await stream.final()
    for error in (caught.value, streamed.value):
        assert isinstance(error, ResponseError)
        assert error.text == text
        assert problem in error.validation_message
        assert problem in str(error)
        assert error.provider == family
    assert "".join(c.text for c in chunks) == text


async def test_a_pydantic_validation_error_is_an_output_validation_error() -> None:
    text = json.dumps({"number": "1", "items": [], "total": "lots", "color": "red"})
    async with served(lambda request: openai_reply(text, False), "openai") as (_server, client):
        with pytest.raises(OutputValidationError) as caught:
            await client.chat("x", response_format=PInvoice)
    assert "total" in caught.value.validation_message
    assert caught.value.text == text


async def test_a_fenced_json_reply_from_a_json_mode_service_is_parsed() -> None:
    text = "```json\n" + json.dumps(ANSWERS["schema"]) + "\n```"
    async with served(lambda request: openai_reply(text, False), "deepseek") as (server, client):
        reply = await client.chat("x", response_format=INVOICE_SCHEMA)
    assert reply.parsed == EXPECTED["schema"]
    assert server.requests[0].json["response_format"] == {"type": "json_object"}


async def test_an_openai_refusal_is_a_refusal_not_an_error() -> None:
    body = {
        "id": "c1",
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "refusal": "I can't help."},
                "finish_reason": "stop",
            }
        ],
    }
    async with served(lambda request: json_response(body), "openai") as (_server, client):
        reply = await client.chat("x", response_format=Invoice)
    assert reply.parsed is None
    assert reply.refusal == "I can't help."


async def test_an_anthropic_refusal_stop_is_a_refusal_not_an_error() -> None:
    text = "I won't produce that."
    async with (
        loopback(lambda request: anthropic_reply(text, is_stream(request), "refusal")) as server,
        client_for(server.base_url, "anthropic") as client,
    ):
        reply = await client.chat("x", response_format=Invoice)
        final = await client.stream("x", response_format=Invoice).final()
    for got in (reply, final):
        assert got.parsed is None
        assert got.refusal == text
        assert got.finish_reason == "content_filter"


async def test_a_reply_cut_at_max_tokens_says_so() -> None:
    body = {
        "id": "c1",
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": '{"numb'},
                "finish_reason": "length",
            }
        ],
    }
    async with served(lambda request: json_response(body), "openai") as (_server, client):
        with pytest.raises(OutputValidationError, match="raise max_tokens"):
            await client.chat("x", response_format=Invoice, max_tokens=3)


async def test_raw_openai_formats_are_not_parsed_as_before() -> None:
    async with served(lambda request: openai_reply("plain words", False), "openai") as (
        _server,
        client,
    ):
        reply = await client.chat("x", response_format={"type": "json_object"})
    assert reply.parsed is None and reply.text == "plain words"


# -- without pydantic ----------------------------------------------------------------------------


async def test_dataclasses_and_schemas_work_with_pydantic_hidden(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [m for m in sys.modules if m == "pydantic" or m.startswith("pydantic.")]:
        monkeypatch.setitem(sys.modules, name, None)  # `import pydantic` now fails
    with pytest.raises(ImportError):
        import pydantic as _  # noqa: F401
    async with served(lambda request: openai_reply(ANSWER_TEXT, is_stream(request)), "openai") as (
        _server,
        client,
    ):
        reply = await client.chat("x", response_format=Invoice)
        final = await client.stream("x", response_format=InvoiceDict).final()
    assert reply.parsed == EXPECTED["dataclass"]
    assert final.parsed == EXPECTED["typeddict"]


def test_llmrelay_never_imports_pydantic() -> None:
    import subprocess

    code = (
        "import sys, llmrelay, dataclasses\n"
        "from llmrelay._structured import split_response_format\n"
        "@dataclasses.dataclass\n"
        "class A:\n    x: int\n"
        "split_response_format(A)\n"
        "assert 'pydantic' not in sys.modules, 'pydantic was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# -- the mock, in process and over HTTP, every family ----------------------------------------------


@pytest.mark.parametrize("family", ["openai", "anthropic", "gemini"])
async def test_the_mock_takes_each_familys_structured_request(family: str) -> None:
    """In process (the mock transport) and over HTTP (`llmrelay mock serve`): the mock answers
    each family's structured-output request with an instance of the schema, which parses."""
    import httpx

    from llmrelay.mock import MockTransport, serve

    async def ask(client: AsyncClient) -> None:
        reply = await client.chat("Make an invoice", response_format=Invoice)
        assert isinstance(reply.parsed, Invoice)

    base = "http://mock.test" + ("/v1" if family == "openai" else "")
    async with (
        httpx.AsyncClient(transport=MockTransport()) as http,
        AsyncClient(
            provider=family, api_key="k", base_url=base, model="mock-echo", http_client=http
        ) as client,
    ):
        await ask(client)
    with serve() as url:
        async with AsyncClient(
            provider=family,
            api_key="k",
            base_url=url + ("/v1" if family == "openai" else ""),
            model="mock-echo",
        ) as client:
            await ask(client)


# -- the validator, by vectors -------------------------------------------------------------------

OBJECT = {
    "type": "object",
    "properties": {"a": {"type": "integer"}, "b": {"$ref": "#/$defs/B"}},
    "required": ["a"],
    "additionalProperties": False,
    "$defs": {"B": {"type": "array", "prefixItems": [{"type": "string"}], "maxItems": 2}},
}
VECTORS: list[tuple[dict[str, Any], Any, str | None]] = [
    ({"type": "integer"}, 3, None),
    ({"type": "integer"}, 3.0, None),
    ({"type": "integer"}, 3.5, "expected integer"),
    ({"type": "integer"}, True, "expected integer"),
    ({"type": "number"}, False, "expected number"),
    ({"type": ["string", "null"]}, None, None),
    ({"enum": ["x", 1]}, 1, None),
    ({"enum": ["x", 1]}, "y", "not one of"),
    ({"const": 5}, 6, "expected 5"),
    ({"anyOf": [{"type": "string"}, {"type": "integer"}]}, [], "matches none"),
    ({"type": "string", "minLength": 2}, "a", "shorter"),
    ({"type": "string", "pattern": "^a"}, "ba", "does not match"),
    ({"type": "number", "minimum": 1, "exclusiveMaximum": 3}, 3, "out of range"),
    (OBJECT, {"a": 1, "b": ["x"]}, None),
    (OBJECT, {"a": 1, "c": 2}, "unexpected property 'c'"),
    (OBJECT, {"b": []}, "missing required property 'a'"),
    (OBJECT, {"a": 1, "b": [1]}, "$.b[0]: expected string"),
    (OBJECT, {"a": 1, "b": ["x", "y", "z"]}, "more than 2 items"),
]


@pytest.mark.parametrize(("schema", "value", "problem"), VECTORS)
def test_validate(schema: dict[str, Any], value: Any, problem: str | None) -> None:
    from llmrelay._schema import _Invalid, validate

    if problem is None:
        validate(value, schema)
    else:
        with pytest.raises(_Invalid, match=re.escape(problem)):
            validate(value, schema)


def test_the_sync_client_parses_too() -> None:
    import llmrelay

    with llmrelay.Client(provider="mock", api="responses") as client:
        assert client.chat("hi", response_format=Tags).parsed == Tags(tags={})
        assert client.stream("hi", response_format=LineItem).final().parsed == LineItem(
            name="", quantity=0
        )
