"""The mock judged by the official ``anthropic`` SDK: what it parses, raises and retries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import jsonschema
import pydantic
import pytest
from anthropic.types import Message, MessageTokensCount, ModelInfo, RawMessageStreamEvent

from ._strict import sse_data, strict

MODEL = "mock-echo"
WEATHER: dict[str, Any] = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "when": {"type": "string", "format": "date"},
        },
        "required": ["city", "unit"],
    },
}
TIME: dict[str, Any] = {
    "name": "get_time",
    "input_schema": {"type": "object", "properties": {"zone": {"type": "string"}}},
}


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


@pytest.fixture
def client(mock_url: str) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=mock_url, api_key="sk-ant-mock", max_retries=0) as sdk:
        yield sdk


@pytest.fixture
def raw(mock_url: str) -> Iterator[httpx.Client]:
    headers = {"x-api-key": "x", "anthropic-version": "2023-06-01"}
    with httpx.Client(base_url=f"{mock_url}/v1", headers=headers) as http:
        yield http


def test_messages_create(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model=MODEL, max_tokens=64, system="be brief", messages=user("Hello Claude")
    )
    assert message.content[0].type == "text" and message.content[0].text == "echo: Hello Claude"
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == 3


def test_stream_helper_text_and_final_message(client: anthropic.Anthropic) -> None:
    with client.messages.stream(model=MODEL, max_tokens=64, messages=user("stream it")) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "echo: stream it"
    assert final.content[0].type == "text" and final.content[0].text == text
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 3


async def test_async_stream_helper(mock_url: str) -> None:
    sdk = anthropic.AsyncAnthropic(base_url=mock_url, api_key="sk-ant-mock")
    async with (
        sdk,
        sdk.messages.stream(model=MODEL, max_tokens=64, messages=user("async stream")) as stream,
    ):
        final = await stream.get_final_message()
    assert final.content[0].type == "text" and final.content[0].text == "echo: async stream"


def test_models_list_and_retrieve(client: anthropic.Anthropic) -> None:
    assert [m.id for m in client.models.list()] == ["mock-echo", "mock-echo-large", "mock-embed"]
    assert client.models.retrieve("mock-echo").display_name == "mock-echo"
    with pytest.raises(anthropic.NotFoundError):
        client.models.retrieve("claude-nowhere")


def test_count_tokens(client: anthropic.Anthropic) -> None:
    counted = client.messages.count_tokens(
        model=MODEL, system="sys", messages=user("count these tokens")
    )
    assert counted.input_tokens == 6  # ceil((3 + 18) / 4)


@pytest.mark.parametrize("stream", [False, True])
def test_tool_choice_any_calls_a_tool_with_schema_valid_input(
    client: anthropic.Anthropic, stream: bool
) -> None:
    options: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 200,
        "messages": user("use get_weather for Oslo"),
        "tools": [TIME, WEATHER],
        "tool_choice": {"type": "any"},
    }
    if stream:
        with client.messages.stream(**options) as events:
            message = events.get_final_message()
    else:
        message = client.messages.create(**options)
    assert message.stop_reason == "tool_use"
    block = message.content[0]
    assert block.type == "tool_use" and block.name == "get_weather"
    jsonschema.validate(block.input, WEATHER["input_schema"])


def test_a_named_tool_the_auto_rule_and_a_tool_result(client: anthropic.Anthropic) -> None:
    named = client.messages.create(
        model=MODEL,
        max_tokens=100,
        messages=user("hi"),
        tools=[WEATHER, TIME],
        tool_choice={"type": "tool", "name": "get_time"},
    )
    call = named.content[0]
    assert call.type == "tool_use" and call.name == "get_time"
    plain = client.messages.create(
        model=MODEL, max_tokens=100, messages=user("nothing to call"), tools=[WEATHER]
    )
    assert plain.content[0].type == "text" and plain.stop_reason == "end_turn"
    answered = client.messages.create(
        model=MODEL,
        max_tokens=100,
        tools=[WEATHER, TIME],
        messages=[
            *user("what does get_time say?"),
            {"role": "assistant", "content": [call.model_dump()]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "12:00"}],
            },
        ],
    )
    assert answered.stop_reason == "end_turn" and answered.content[0].type == "text"
    assert answered.content[0].text == "echo: what does get_time say?"


class Step(pydantic.BaseModel):
    title: str
    minutes: int


class Recipe(pydantic.BaseModel):
    name: str
    steps: list[Step]
    vegetarian: bool


def test_parse_with_a_pydantic_output_format(client: anthropic.Anthropic) -> None:
    message = client.messages.parse(
        model=MODEL, max_tokens=500, messages=user("a recipe"), output_format=Recipe
    )
    recipe = message.parsed_output
    assert isinstance(recipe, Recipe) and recipe.steps and recipe.steps[0].minutes >= 0


def test_stop_sequences(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model=MODEL, max_tokens=64, messages=user("alpha beta gamma"), stop_sequences=["gamma"]
    )
    assert message.content[0].type == "text" and message.content[0].text == "echo: alpha beta "
    assert message.stop_reason == "stop_sequence" and message.stop_sequence == "gamma"
    with client.messages.stream(
        model=MODEL, max_tokens=64, messages=user("alpha beta gamma"), stop_sequences=["beta"]
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "stop_sequence" and final.stop_sequence == "beta"


ERRORS = [
    (400, anthropic.BadRequestError),
    (401, anthropic.AuthenticationError),
    (429, anthropic.RateLimitError),
    (500, anthropic.InternalServerError),
    (529, anthropic.OverloadedError),
]


@pytest.mark.parametrize(("status", "error"), ERRORS)
def test_injected_statuses_raise_the_sdk_error_class(
    client: anthropic.Anthropic, status: int, error: type[anthropic.APIStatusError]
) -> None:
    with pytest.raises(error) as caught:
        client.messages.create(
            model=MODEL,
            max_tokens=10,
            messages=user("fail"),
            extra_headers={"x-mock-fault": str(status)},
        )
    assert caught.value.status_code == status
    assert caught.value.request_id is not None


def test_error_events(client: anthropic.Anthropic) -> None:
    fault = {"x-mock-fault": "error-event;after=1"}
    with pytest.raises(anthropic.OverloadedError):  # not a 200 with an error body
        client.messages.create(model=MODEL, max_tokens=10, messages=user("x"), extra_headers=fault)
    with (
        pytest.raises(anthropic.APIStatusError),
        client.messages.stream(
            model=MODEL, max_tokens=10, messages=user("one two three"), extra_headers=fault
        ) as stream,
    ):
        stream.get_final_message()


def test_the_sdk_retry_meets_the_fault_n_times_on_every_call(mock_url: str) -> None:
    fault = {"x-mock-fault": "529;times=2;retry-after-ms=1"}
    with anthropic.Anthropic(base_url=mock_url, api_key="k", max_retries=2) as sdk:
        for _ in range(2):
            response = sdk.messages.with_raw_response.create(
                model=MODEL, max_tokens=10, messages=user("again"), extra_headers=fault
            )
            assert response.headers["x-mock-attempt"] == "3"
            content = response.parse().content[0]
            assert content.type == "text" and content.text == "echo: again"
    with anthropic.Anthropic(base_url=mock_url, api_key="k", max_retries=1) as sdk:
        for _ in range(2):
            with pytest.raises(anthropic.OverloadedError):
                sdk.messages.create(
                    model=MODEL, max_tokens=10, messages=user("again"), extra_headers=fault
                )


STRICT_BODIES: list[dict[str, Any]] = [
    {"messages": user("plain")},
    {"messages": user("cut short here"), "max_tokens": 2},
    {"messages": user("stop at here"), "stop_sequences": ["at"]},
    {"messages": user("get_time now"), "tools": [TIME, WEATHER]},
    {"messages": user("json"), "output_config": {"format": {"type": "json_schema", "schema": {}}}},
]


@pytest.mark.parametrize("body", STRICT_BODIES)
def test_every_message_and_event_validates_strictly(
    raw: httpx.Client, body: dict[str, Any]
) -> None:
    payload = {"model": MODEL, "max_tokens": 100, **body}
    strict(Message, raw.post("/messages", json=payload).content)
    streamed = raw.post("/messages", json=payload | {"stream": True})
    events = sse_data(streamed.text)
    assert [name for name, _ in events][-1] == "message_stop"
    for name, data in events:
        if name == "ping":  # documented, and not one of the SDK's event types: it skips it
            assert json.loads(data) == {"type": "ping"}
            continue
        event = strict(RawMessageStreamEvent, data)
        assert event.type == name


def test_count_tokens_and_models_validate_strictly(raw: httpx.Client) -> None:
    body = {"model": MODEL, "messages": user("x")}
    strict(MessageTokensCount, raw.post("/messages/count_tokens", json=body).content)
    for item in raw.get("/models").json()["data"]:
        strict(ModelInfo, json.dumps(item))
    strict(ModelInfo, raw.get("/models/mock-echo").content)


def test_stream_helper_parses_the_output_format(client: anthropic.Anthropic) -> None:
    with client.messages.stream(
        model=MODEL, max_tokens=500, messages=user("stream a recipe"), output_format=Recipe
    ) as stream:
        message = stream.get_final_message()
    assert isinstance(message.parsed_output, Recipe)
