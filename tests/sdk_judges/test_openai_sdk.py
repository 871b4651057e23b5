"""The mock judged by the official ``openai`` SDK: what it parses, raises and retries."""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Iterator
from enum import StrEnum
from typing import Any

import httpx
import jsonschema
import openai
import pydantic
import pytest
from openai.types import CreateEmbeddingResponse, Model
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from ._strict import json_events, strict

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
            },
            "required": ["city", "unit", "days"],
            "additionalProperties": False,
        },
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}},
    },
}


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


@pytest.fixture
def client(mock_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{mock_url}/v1", api_key="sk-mock", max_retries=0) as sdk:
        yield sdk


@pytest.fixture
def raw(mock_url: str) -> Iterator[httpx.Client]:
    """Plain HTTP to the same server, for the bytes the SDK would parse."""
    with httpx.Client(base_url=f"{mock_url}/v1", headers={"authorization": "Bearer x"}) as http:
        yield http


def test_chat(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="mock-echo", messages=user("Hello SDK"))
    assert reply.choices[0].message.content == "echo: Hello SDK"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.completion_tokens == 3
    assert reply.model == "mock-echo"


def test_stream_true_with_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="mock-echo",
        messages=user("stream me please"),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: stream me please"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


def test_stream_helper_events_and_final_completion(client: openai.OpenAI) -> None:
    with client.chat.completions.stream(
        model="mock-echo", messages=user("helper stream"), stream_options={"include_usage": True}
    ) as stream:
        deltas = [event.delta for event in stream if event.type == "content.delta"]
        final = stream.get_final_completion()
    assert "".join(deltas) == "echo: helper stream"
    assert final.choices[0].message.content == "echo: helper stream"
    assert final.usage is not None and final.usage.total_tokens > 0


async def test_async_stream_helper(mock_url: str) -> None:
    sdk = openai.AsyncOpenAI(base_url=f"{mock_url}/v1", api_key="sk-mock")
    async with (
        sdk,
        sdk.chat.completions.stream(model="mock-echo", messages=user("async helper")) as stream,
    ):
        final = await stream.get_final_completion()
    assert final.choices[0].message.content == "echo: async helper"


@pytest.mark.parametrize("encoding", ["float", "base64", None])
def test_embeddings(client: openai.OpenAI, encoding: str | None) -> None:
    options: dict[str, Any] = {"encoding_format": encoding} if encoding else {}
    result = client.embeddings.create(
        model="mock-embed", input=["one", "two"], dimensions=16, **options
    )
    assert [item.index for item in result.data] == [0, 1]
    # Asked for base64 explicitly, the SDK hands the string back; by default it asks for base64
    # itself and decodes it.
    vectors = [
        list(struct.unpack("<16f", base64.b64decode(item.embedding)))
        if isinstance(item.embedding, str)
        else item.embedding
        for item in result.data
    ]
    assert isinstance(result.data[0].embedding, str) == (encoding == "base64")
    assert all(len(vector) == 16 for vector in vectors)
    assert abs(sum(v * v for v in vectors[0]) - 1.0) < 1e-3


def test_models_list_and_retrieve(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["mock-echo", "mock-echo-large", "mock-embed"]
    assert client.models.retrieve("mock-echo-large").id == "mock-echo-large"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


@pytest.mark.parametrize("stream", [False, True])
def test_tool_choice_required_calls_a_tool_with_schema_valid_arguments(
    client: openai.OpenAI, stream: bool
) -> None:
    messages = user("call get_weather for Paris")
    if stream:
        with client.chat.completions.stream(
            model="mock-echo", messages=messages, tools=[TIME, WEATHER], tool_choice="required"
        ) as events:
            reply = events.get_final_completion()
    else:
        reply = client.chat.completions.create(
            model="mock-echo", messages=messages, tools=[TIME, WEATHER], tool_choice="required"
        )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert len(calls) == 1 and calls[0].type == "function"
    assert calls[0].function.name == "get_weather"  # named in the prompt, so chosen first
    arguments = json.loads(calls[0].function.arguments)
    jsonschema.validate(arguments, WEATHER["function"]["parameters"])  # type: ignore[index]


def test_a_named_tool_choice_and_the_auto_rule(client: openai.OpenAI) -> None:
    named = client.chat.completions.create(
        model="mock-echo",
        messages=user("hi"),
        tools=[WEATHER, TIME],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    assert named.choices[0].finish_reason == "stop"  # as OpenAI answers a call forced by name
    assert (named.choices[0].message.tool_calls or [])[0].function.name == "get_time"
    auto = client.chat.completions.create(
        model="mock-echo", messages=user("please get_time for me"), tools=[WEATHER, TIME]
    )
    assert (auto.choices[0].message.tool_calls or [])[0].function.name == "get_time"
    plain = client.chat.completions.create(
        model="mock-echo", messages=user("no tool named here"), tools=[WEATHER, TIME]
    )
    assert plain.choices[0].message.content == "echo: no tool named here"
    call = (auto.choices[0].message.tool_calls or [])[0]
    answered = client.chat.completions.create(
        model="mock-echo",
        messages=[
            *user("please get_time for me"),
            {"role": "assistant", "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": "12:00"},
        ],
        tools=[WEATHER, TIME],
    )
    assert answered.choices[0].message.tool_calls is None
    assert answered.choices[0].message.content == "echo: please get_time for me"
    assert answered.choices[0].finish_reason == "stop"


class Color(StrEnum):
    RED = "red"
    BLUE = "blue"


class Address(pydantic.BaseModel):
    street: str
    city: str


class Person(pydantic.BaseModel):
    name: str
    age: int
    favourite: Color
    tags: list[str]
    address: Address
    nickname: str | None


def test_parse_with_a_pydantic_model(client: openai.OpenAI) -> None:
    reply = client.chat.completions.parse(
        model="mock-echo", messages=user("Extract: Ada, 36"), response_format=Person
    )
    person = reply.choices[0].message.parsed
    assert isinstance(person, Person)
    assert person.favourite is Color.RED and person.address.city and person.tags


def test_stream_helper_parses_structured_output(client: openai.OpenAI) -> None:
    with client.chat.completions.stream(
        model="mock-echo", messages=user("Extract a person"), response_format=Person
    ) as stream:
        final = stream.get_final_completion()
    assert isinstance(final.choices[0].message.parsed, Person)


def test_json_schema_and_json_object_response_formats(client: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {
            "items": {
                "type": "array",
                "items": {"type": "object", "properties": {"n": {"type": "number"}}},
                "minItems": 2,
            },
            "status": {"enum": ["ok", "failed"]},
        },
        "required": ["items", "status"],
    }
    reply = client.chat.completions.create(
        model="mock-echo",
        messages=user("list"),
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "listing", "schema": schema, "strict": False},
        },
    )
    jsonschema.validate(json.loads(reply.choices[0].message.content or ""), schema)
    as_object = client.chat.completions.create(
        model="mock-echo", messages=user("any json"), response_format={"type": "json_object"}
    )
    assert json.loads(as_object.choices[0].message.content or "") == {"echo": "any json"}


def test_n_stop_and_logprobs(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="mock-echo",
        messages=user("one two three four"),
        n=3,
        stop=["three", "four"],
        logprobs=True,
        top_logprobs=2,
    )
    assert [c.index for c in reply.choices] == [0, 1, 2]
    assert {c.message.content for c in reply.choices} == {"echo: one two "}
    assert {c.finish_reason for c in reply.choices} == {"stop"}
    assert reply.usage is not None and reply.usage.completion_tokens == 3 * 3
    logprobs = reply.choices[0].logprobs
    assert logprobs is not None and logprobs.content is not None
    assert [t.token for t in logprobs.content] == ["echo: ", "one ", "two "]
    assert all(len(t.top_logprobs) == 2 and t.logprob <= 0 for t in logprobs.content)
    assert logprobs.content[0].top_logprobs[0].token == "echo: "


def test_n_in_a_stream(client: openai.OpenAI) -> None:
    with client.chat.completions.stream(
        model="mock-echo", messages=user("two choices"), n=2, logprobs=True
    ) as stream:
        final = stream.get_final_completion()
    assert [c.message.content for c in final.choices] == ["echo: two choices"] * 2
    assert final.choices[1].logprobs is not None


ERRORS = [
    (400, openai.BadRequestError),
    (401, openai.AuthenticationError),
    (429, openai.RateLimitError),
    (500, openai.InternalServerError),
    (529, openai.InternalServerError),
]


@pytest.mark.parametrize(("status", "error"), ERRORS)
def test_injected_statuses_raise_the_sdk_error_class(
    client: openai.OpenAI, status: int, error: type[openai.APIStatusError]
) -> None:
    with pytest.raises(error) as caught:
        client.chat.completions.create(
            model="mock-echo", messages=user("fail"), extra_headers={"x-mock-fault": str(status)}
        )
    assert caught.value.status_code == status
    assert caught.value.request_id is not None


def test_a_non_streamed_error_event_is_an_error_not_an_empty_reply(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(
            model="mock-echo", messages=user("x"), extra_headers={"x-mock-fault": "error-event"}
        )


def test_an_error_event_in_a_stream_raises(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="mock-echo",
        messages=user("one two three"),
        stream=True,
        extra_headers={"x-mock-fault": "error-event;after=1"},
    )
    with pytest.raises(openai.APIError):
        list(stream)


def test_the_sdk_retry_meets_the_fault_n_times_on_every_call(mock_url: str) -> None:
    fault = {"x-mock-fault": "500;times=2;retry-after-ms=1"}
    with openai.OpenAI(base_url=f"{mock_url}/v1", api_key="sk-mock", max_retries=2) as sdk:
        for _ in range(2):  # the same call again sees its two faults again
            response = sdk.chat.completions.with_raw_response.create(
                model="mock-echo", messages=user("retry me"), extra_headers=fault
            )
            assert response.headers["x-mock-attempt"] == "3"
            assert response.parse().choices[0].message.content == "echo: retry me"
    with openai.OpenAI(base_url=f"{mock_url}/v1", api_key="sk-mock", max_retries=1) as sdk:
        for _ in range(2):
            with pytest.raises(openai.InternalServerError):
                sdk.chat.completions.create(
                    model="mock-echo", messages=user("retry me"), extra_headers=fault
                )


STRICT_BODIES = [
    {"messages": user("plain")},
    {"messages": user("n and logprobs"), "n": 2, "logprobs": True, "top_logprobs": 3},
    {"messages": user("get_weather in Rome"), "tools": [WEATHER], "tool_choice": "required"},
    {"messages": user("stop here please"), "stop": "here", "max_tokens": 2},
]


@pytest.mark.parametrize("body", STRICT_BODIES)
def test_every_reply_and_chunk_validates_strictly(raw: httpx.Client, body: dict[str, Any]) -> None:
    payload = {"model": "mock-echo", **body}
    strict(ChatCompletion, raw.post("/chat/completions", json=payload).content)
    streamed = raw.post(
        "/chat/completions",
        json=payload | {"stream": True, "stream_options": {"include_usage": True}},
    )
    events = json_events(streamed.text)
    assert events
    for event in events:
        strict(ChatCompletionChunk, json.dumps(event))


def test_embeddings_and_models_validate_strictly(raw: httpx.Client) -> None:
    body = {"model": "mock-embed", "input": "x", "encoding_format": "float"}
    strict(CreateEmbeddingResponse, raw.post("/embeddings", json=body).content)
    for item in raw.get("/models").json()["data"]:
        strict(Model, json.dumps(item))
    strict(Model, raw.get("/models/mock-echo").content)


class GetWeather(pydantic.BaseModel):
    city: str
    unit: Color
    days: int = pydantic.Field(ge=1, le=3)


@pytest.mark.parametrize("stream", [False, True])
def test_strict_pydantic_function_tools_parse_their_arguments(
    client: openai.OpenAI, stream: bool
) -> None:
    options: dict[str, Any] = {
        "model": "mock-echo",
        "messages": user("weather please"),
        "tools": [openai.pydantic_function_tool(GetWeather)],
        "tool_choice": "required",
    }
    if stream:
        with client.chat.completions.stream(**options) as events:
            reply = events.get_final_completion()
    else:
        reply = client.chat.completions.parse(**options)
    call = (reply.choices[0].message.tool_calls or [])[0]
    assert isinstance(call.function.parsed_arguments, GetWeather)
    assert 1 <= call.function.parsed_arguments.days <= 3
