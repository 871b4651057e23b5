"""The OpenAI adapter against OpenAI's own spec (tests/fixtures/openapi/openai.json).

Responses: bodies generated from the spec's response schemas (chat completion, stream chunk,
embeddings, model list, error) parse into llmrelay's types without an error, and what they carry
arrives where the user looks for it. Requests: what `build_chat`/`build_embed` send for a range
of inputs validates against the request schemas.

The generator is hypothesis-jsonschema, driven node by node: objects, arrays and unions are
taken apart here into Hypothesis strategies built once, and every other node (strings, enums,
numbers, nullable scalars...) is hypothesis-jsonschema's `from_schema`. Handing the whole
schema to `from_schema` gives the same bodies ~10× slower (it canonicalises subschemas again at
every draw). Each generated body is checked against the spec with `jsonschema` before it is
parsed, so the generator cannot drift from the spec. Sizes are bounded (lists of up to 3, maps of
up to 2 extra members) and examples derandomized, to keep this module to a few seconds.

Two kinds of schema-valid bodies cannot be represented, and give a `ResponseError` carrying the
body (`.body`) instead:

- a chat completion whose ``choices`` is empty (the spec sets no ``minItems``): the user asked
  for a reply and there is none; an empty reply would pass for "the model said nothing", while
  the error carries what the service sent (e.g. OpenAI's ``moderation`` results);
- a model list with an entry that is not an object (the spec's ``Model`` schema lists
  properties but leaves out ``type: object``, so ``null`` or ``5`` pass it): such an entry has
  no id to give.

The generator leaves both out of the property tests; each has its own test below.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from _params import named_params
from llmrelay import APIStatusError, Message, ResponseError, ToolCall
from llmrelay._request import ChatRequest, normalize_messages
from llmrelay._sse import ServerSentEvent
from llmrelay.providers import Provider, get_provider
from llmrelay.providers import openai as adapter

SPEC = json.loads((Path(__file__).parent / "fixtures" / "openapi" / "openai.json").read_text())

# -- the spec as self-contained JSON Schemas ----------------------------------------------------

# Keywords whose value maps names to subschemas (not a subschema itself, so a property called
# "description" or "title" is not taken for the annotation).
_NAME_MAPS = frozenset({"properties", "patternProperties", "$defs", "dependentSchemas"})


def resolve(node: Any, stack: tuple[str, ...] = ()) -> Any:
    """`node` with every ``$ref`` replaced by a copy of its target, so a JSON Schema tool needs
    nothing else. A schema that refers to itself would have no finite copy: that fails loudly."""
    if isinstance(node, list):
        return [resolve(item, stack) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        pointer = node["$ref"]
        assert pointer.startswith("#/"), pointer
        assert pointer not in stack, f"recursive schema: {' -> '.join((*stack, pointer))}"
        target: Any = SPEC
        for part in pointer[2:].split("/"):
            target = target[part]
        resolved = resolve(target, (*stack, pointer))
        siblings = {k: resolve(v, stack) for k, v in node.items() if k != "$ref"}
        return {**resolved, **siblings} if siblings else resolved
    return {
        key: {name: resolve(sub, stack) for name, sub in value.items()}
        if key in _NAME_MAPS
        else resolve(value, stack)
        for key, value in node.items()
    }


def operation_schema(path: str, method: str, *, status: str | None, media: str) -> Any:
    """The resolved request body schema (``status=None``) or response body schema."""
    operation = SPEC["paths"][path][method]
    holder = operation["requestBody"] if status is None else operation["responses"][status]
    return resolve(resolve(holder)["content"][media]["schema"])


CHAT_REQUEST = operation_schema("/chat/completions", "post", status=None, media="application/json")
CHAT_RESPONSE = operation_schema(
    "/chat/completions", "post", status="200", media="application/json"
)
CHAT_CHUNK = operation_schema("/chat/completions", "post", status="200", media="text/event-stream")
EMBED_REQUEST = operation_schema("/embeddings", "post", status=None, media="application/json")
EMBED_RESPONSE = operation_schema("/embeddings", "post", status="200", media="application/json")
MODELS_RESPONSE = operation_schema("/models", "get", status="200", media="application/json")
ERROR_RESPONSE = operation_schema(
    "/chat/completions", "post", status="429", media="application/json"
)


def validator(schema: Any) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema)


def assert_valid(schema: Any, body: Any) -> None:
    errors = sorted(validator(schema).iter_errors(body), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])


def test_the_spec_has_the_schemas_we_speak() -> None:
    for schema in (
        CHAT_REQUEST,
        CHAT_RESPONSE,
        CHAT_CHUNK,
        EMBED_REQUEST,
        EMBED_RESPONSE,
        MODELS_RESPONSE,
        ERROR_RESPONSE,
    ):
        jsonschema.Draft202012Validator.check_schema(schema)
        assert "$ref" not in json.dumps(schema)


# -- generating bodies --------------------------------------------------------------------------

MAX_LIST = 3  # generated lists hold at most this many items (fewer if the schema says so)
MAX_EXTRA = 2  # extra members an open object may get

# Annotations that say nothing about which values are valid.
_ANNOTATIONS = frozenset({"title", "description", "default", "deprecated", "examples", "example"})

# Extra members of open objects are named from these (fields OpenAI-compatible services add,
# which the adapter reads, so arbitrary values there must not break it) or arbitrarily. Never
# "error": a 200 body or stream event with an `error` member is read as an error (services put
# errors there), and no body the spec describes has one.
_SERVICE_FIELDS = (
    "usage",
    "x_groq",
    "reasoning",
    "reasoning_content",
    "prompt_cache_hit_tokens",
    "cached_tokens",
    "function",
    "custom",
    "index",
)
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=4), inner, max_size=2)
    ),
    max_leaves=4,
)


def _keywords(schema: Mapping[str, Any]) -> set[str]:
    return {k for k in schema if k not in _ANNOTATIONS and not k.startswith("x-")} - {
        "discriminator"  # OpenAPI's hint for code generators; `oneOf` already says it all
    }


def bodies(schema: Any) -> st.SearchStrategy[Any]:
    """A strategy for JSON values valid against the resolved `schema`."""
    if not isinstance(schema, dict):
        return from_schema(schema)
    keywords = _keywords(schema)
    if keywords in ({"anyOf"}, {"oneOf"}):
        (union,) = keywords
        options = schema[union]
        strategy = st.one_of([bodies(option) for option in options])
        if union == "oneOf":
            checks = [validator(option) for option in options]
            strategy = strategy.filter(lambda v: sum(c.is_valid(v) for c in checks) == 1)
        return strategy
    if schema.get("type") == "object" and keywords <= {
        "type",
        "properties",
        "required",
        "additionalProperties",
    }:
        return _objects(schema)
    if schema.get("type") == "array" and keywords <= {"type", "items", "minItems", "maxItems"}:
        low = schema.get("minItems", 0)
        high = min(schema.get("maxItems", low + MAX_LIST), low + MAX_LIST)
        return st.lists(bodies(schema.get("items", {})), min_size=low, max_size=high)
    return from_schema(schema)


def _objects(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    properties = schema.get("properties", {})
    required = schema.get("required", [])
    members = st.fixed_dictionaries(
        {name: bodies(properties.get(name, {})) for name in required},
        optional={name: bodies(sub) for name, sub in properties.items() if name not in required},
    )
    extra = schema.get("additionalProperties", True)
    if extra is False:
        return members
    names = (st.sampled_from(_SERVICE_FIELDS) | st.text(max_size=6)).filter(
        lambda name: name not in properties and name != "error"
    )
    extras = st.dictionaries(names, _JSON if extra is True else bodies(extra), max_size=MAX_EXTRA)
    return st.builds(lambda known, more: {**more, **known}, members, extras)


# Derandomized: the same examples on every run, so a failure reproduces and CI is stable.
spec_examples = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def openai() -> Provider:
    return get_provider("openai")


def event(data: Any, name: str = "message") -> ServerSentEvent:
    return ServerSentEvent(event=name, data=json.dumps(data))


# -- responses ----------------------------------------------------------------------------------


def _narrowed(schema: Any, path: tuple[str, ...], **keywords: Any) -> Any:
    """A copy of `schema` whose subschema at `path` (keys below ``properties``/``items``) has
    `keywords` added: bodies valid against it are valid against `schema`."""
    if not path:
        return {**schema, **keywords}
    key, rest = path[0], path[1:]
    if key == "items":
        return {**schema, "items": _narrowed(schema["items"], rest, **keywords)}
    inner = _narrowed(schema["properties"][key], rest, **keywords)
    return {**schema, "properties": {**schema["properties"], key: inner}}


# Bodies with at least one choice (the empty list is its own test below); half of them with tool
# calls, which the spec makes optional and the generator would seldom draw.
_WITH_CHOICES = _narrowed(CHAT_RESPONSE, ("choices",), minItems=1)
_MESSAGE = ("choices", "items", "message")
_WITH_TOOL_CALLS = _narrowed(
    _narrowed(_WITH_CHOICES, _MESSAGE, required=["role", "content", "refusal", "tool_calls"]),
    (*_MESSAGE, "tool_calls"),
    minItems=1,
)


def wire_index(position: int, choice: Mapping[str, Any], default: int | None = None) -> int:
    """The index a choice is filed under: its own, unless that is negative; then its position
    (`default` when given: 0 for the one choice of a stream event)."""
    index = choice["index"]
    if index >= 0:
        return int(index)
    return position if default is None else default


def wire_calls(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A message's tool calls as `ToolCall.to_dict()` writes them back: known fields only, an
    empty id named by the call's position, a function call's empty arguments as ``"{}"`` (the
    empty object they stand for)."""
    out: list[dict[str, Any]] = []
    for position, call in enumerate(message.get("tool_calls") or []):
        head = {"id": call["id"] or f"call_{position}", "type": call["type"]}
        if call["type"] == "function":
            fn = call["function"]
            out.append(
                {**head, "function": {"name": fn["name"], "arguments": fn["arguments"] or "{}"}}
            )
        else:
            custom = call["custom"]
            out.append({**head, "custom": {"name": custom["name"], "input": custom["input"]}})
    return out


@spec_examples
@given(bodies(_WITH_CHOICES) | bodies(_WITH_TOOL_CALLS))
def test_every_chat_completion_the_spec_allows_parses(body: dict[str, Any]) -> None:
    assert_valid(CHAT_RESPONSE, body)
    reply = adapter.parse_chat(openai(), body, "req_1")
    # Every choice, in index order (a stable sort: the wire order among equal indexes).
    ordered = sorted(enumerate(body["choices"]), key=lambda item: wire_index(*item))
    assert [c.index for c in reply.choices] == [wire_index(*item) for item in ordered]
    for got, (_, wire) in zip(reply.choices, ordered, strict=True):
        assert got.text == (wire["message"]["content"] or "")
        assert got.refusal == wire["message"]["refusal"]
        assert got.finish_reason == wire["finish_reason"]
    choice = ordered[0][1]
    message = choice["message"]
    assert reply.text == (message["content"] or "")
    assert reply.refusal == message["refusal"]
    assert reply.finish_reason == choice["finish_reason"]
    assert reply.id == body["id"]
    assert reply.model == body["model"]
    if "usage" in body:
        usage = body["usage"]
        details = usage.get("prompt_tokens_details", {})
        assert reply.usage is not None
        assert reply.usage.prompt_tokens == usage["prompt_tokens"]
        assert reply.usage.completion_tokens == usage["completion_tokens"]
        if details.get("cached_tokens"):  # else compatible services' own fields may count
            assert reply.usage.cached_tokens == details["cached_tokens"]
        assert reply.usage.cache_write_tokens == details.get("cache_write_tokens", 0)
    # Each tool call, function or custom, is in the reply and replays as it came.
    assert [call.to_dict() for call in reply.tool_calls] == wire_calls(message)
    assert_valid(CHAT_REQUEST, {"model": "m", "messages": [reply.message.to_dict()]})


def test_a_completion_without_choices_is_a_response_error() -> None:
    """Schema-valid, but there is no reply to give: a typed error with the body (see the
    module docstring for why not an empty reply)."""
    body = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m"}
    body["choices"] = []
    assert_valid(CHAT_RESPONSE, body)
    with pytest.raises(ResponseError, match="'choices' is empty") as info:
        adapter.parse_chat(openai(), body, None)
    assert info.value.body == body


@spec_examples
@given(st.lists(bodies(CHAT_CHUNK), min_size=1, max_size=3))
def test_every_stream_chunk_the_spec_allows_parses(chunks: list[dict[str, Any]]) -> None:
    parser = adapter.new_stream_parser(openai(), ChatRequest(model="m", messages=[], params={}))
    for body in chunks:
        assert_valid(CHAT_CHUNK, body)
        parsed = parser.parse(event(body))
        if not body["choices"]:
            assert parsed is None or (not isinstance(parsed, tuple) and parsed.usage is not None)
            continue
        assert parsed is not None
        # One chunk per choice of the event, each filed under its choice's index.
        chunks = parsed if isinstance(parsed, tuple) else (parsed,)
        alone = 0 if len(body["choices"]) == 1 else None
        assert len(chunks) == len(body["choices"])
        for position, (chunk, choice) in enumerate(zip(chunks, body["choices"], strict=True)):
            delta = choice["delta"]
            assert chunk.index == wire_index(position, choice, alone)
            assert chunk.text == (delta.get("content") or "")
            assert chunk.finish_reason == choice["finish_reason"]
            assert chunk.id == body["id"]
            calls = delta.get("tool_calls") or []
            assert [d.index for d in chunk.tool_calls or ()] == [c["index"] for c in calls]
    assert not parser.done
    assert parser.parse(ServerSentEvent(data="[DONE]")) is None
    assert parser.done
    assert parser.finished()


@spec_examples
@given(bodies(EMBED_RESPONSE))
def test_every_embeddings_reply_the_spec_allows_parses(body: dict[str, Any]) -> None:
    assert_valid(EMBED_RESPONSE, body)
    reply = adapter.parse_embed(openai(), body, None)
    ordered = sorted(body["data"], key=lambda item: item["index"])
    assert reply.vectors == [item["embedding"] for item in ordered]
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == body["usage"]["prompt_tokens"]


# Model entries as the spec means them: objects (see the module docstring).
_MODEL_OBJECTS = _narrowed(MODELS_RESPONSE, ("data", "items"), type="object")


@spec_examples
@given(bodies(_MODEL_OBJECTS))
def test_every_model_list_the_spec_allows_parses(body: dict[str, Any]) -> None:
    assert_valid(MODELS_RESPONSE, body)
    models = adapter.parse_models(openai(), body)
    assert [(m.id, m.owned_by, m.created) for m in models] == [
        (item["id"], item["owned_by"], item["created"]) for item in body["data"]
    ]


@pytest.mark.parametrize("entry", [None, 5, "gpt-4o"])
def test_a_model_entry_that_is_no_object_is_a_response_error(entry: Any) -> None:
    body = {"object": "list", "data": [entry]}
    assert_valid(MODELS_RESPONSE, body)
    with pytest.raises(ResponseError, match="a model entry has no 'id'") as info:
        adapter.parse_models(openai(), body)
    assert info.value.body == body


@spec_examples
@given(bodies(ERROR_RESPONSE))
def test_every_error_body_the_spec_allows_is_read(body: dict[str, Any]) -> None:
    """As an HTTP error's body, and as an error event inside a 200 stream."""
    assert_valid(ERROR_RESPONSE, body)
    info = adapter.parse_error(openai(), 429, body)
    assert info.message == body["error"]["message"]
    parser = adapter.new_stream_parser(openai(), ChatRequest(model="m", messages=[], params={}))
    with pytest.raises(APIStatusError) as raised:
        parser.parse(event(body))
    assert body["error"]["message"] in str(raised.value)


# -- requests -----------------------------------------------------------------------------------

WEATHER = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
PNG = "data:image/png;base64,iVBORw0KGgo="
TOOL_TURNS: list[Any] = [
    {"role": "user", "content": "Weather in Paris?"},
    Message(
        role="assistant",
        content=None,
        tool_calls=(ToolCall(id="call_1", name="weather", arguments='{"city": "Paris"}'),),
        reasoning="I should look it up",
        reasoning_signature="sig",
    ),
    {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 21}'},
]
CUSTOM_TURNS: list[Any] = [
    {"role": "user", "content": "Run it"},
    Message(
        role="assistant",
        content="",
        tool_calls=(ToolCall(id="call_2", name="shell", type="custom", input="ls -la"),),
    ),
    {"role": "tool", "tool_call_id": "call_2", "content": "README.md"},
]

CHAT_CASES: dict[str, tuple[Any, dict[str, Any], dict[str, Any] | None]] = {
    "plain": ("Hello", {}, None),
    "system and user": (
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        {},
        None,
    ),
    "developer and name": (
        [
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": "Hi", "name": "ann"},
        ],
        {},
        None,
    ),
    "sampling": ("Hi", {"temperature": 0.2, "top_p": 0.9, "max_tokens": 100, "seed": 7}, None),
    "stop as text": ("Hi", {"stop": "END"}, None),
    "stop as a list": ("Hi", {"stop": ["END", "##"]}, None),
    "tools, auto": ("Hi", {"tools": [WEATHER], "tool_choice": "auto"}, None),
    "tools, required": ("Hi", {"tools": [WEATHER], "tool_choice": "required"}, None),
    "tools, none": ("Hi", {"tools": [WEATHER], "tool_choice": "none"}, None),
    "tools, named": (
        "Hi",
        {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "weather"}}},
        None,
    ),
    "json object": ("Hi", {"response_format": {"type": "json_object"}}, None),
    "json schema": (
        "Hi",
        {
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": "answer",
                    "strict": True,
                    "schema": {"type": "object", "properties": {"a": {"type": "string"}}},
                },
            }
        },
        None,
    ),
    "images": (
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": PNG}},
                    {
                        "type": "image_url",
                        "image_url": {"url": "https://example.com/a.jpg", "detail": "low"},
                    },
                ],
            }
        ],
        {},
        None,
    ),
    "tool results and reasoning replay": (TOOL_TURNS, {"tools": [WEATHER]}, None),
    "custom tool call replay": (CUSTOM_TURNS, {}, None),
    "extra body": ("Hi", {}, {"reasoning_effort": "low", "parallel_tool_calls": False}),
}


@pytest.mark.parametrize("stream", [False, True], ids=["chat", "stream"])
@pytest.mark.parametrize(("messages", "params", "extra_body"), CHAT_CASES.values(), ids=CHAT_CASES)
def test_chat_requests_validate(
    messages: Any, params: dict[str, Any], extra_body: dict[str, Any] | None, stream: bool
) -> None:
    request = ChatRequest(
        model="gpt-4o-mini",
        messages=normalize_messages(messages),
        params=named_params(**params),
        extra_body=extra_body,
        stream=stream,
    )
    wire = adapter.build_chat(openai(), request)
    assert_valid(CHAT_REQUEST, wire.json)


def test_a_stop_text_goes_out_as_text() -> None:
    request = ChatRequest(
        model="m", messages=normalize_messages("Hi"), params=named_params(stop="END")
    )
    assert adapter.build_chat(openai(), request).json["stop"] == "END"


EMBED_CASES: dict[str, tuple[list[str], dict[str, Any] | None]] = {
    "one": (["hello"], None),
    "several": (["a", "b", "c"], None),
    "base64 and dimensions": (["a"], {"encoding_format": "base64", "dimensions": 256}),
    "user": (["a"], {"user": "u-1"}),
}


@pytest.mark.parametrize(("inputs", "extra_body"), EMBED_CASES.values(), ids=EMBED_CASES)
def test_embedding_requests_validate(inputs: list[str], extra_body: dict[str, Any] | None) -> None:
    wire = adapter.build_embed(openai(), "text-embedding-3-small", inputs, extra_body)
    assert_valid(EMBED_REQUEST, wire.json)


@pytest.mark.parametrize(
    "body",
    [
        {"model": "m", "messages": [{"role": "user", "content": "Hi"}], "stop": list("abcde")},
        {"model": "m", "messages": [{"role": "user"}]},
        {"model": "m", "messages": [{"role": "tool", "content": "x"}]},
    ],
    ids=["five stops", "no content", "tool result without id"],
)
def test_the_validator_catches_bad_requests(body: dict[str, Any]) -> None:
    """The request tests above would notice a wrong body."""
    assert not validator(CHAT_REQUEST).is_valid(body)
