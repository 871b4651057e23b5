"""Tools as plain Python functions: the schema sent, `ToolCall.parse_arguments()`, and
`run_tool_calls()` (sync and async functions) with the tool messages it gives back; end to end
over a loopback server for every wire family."""

from __future__ import annotations

import dataclasses
import enum
import json
from typing import Annotated, Any, Literal

import pydantic
import pytest

from _loopback import Request, Response, json_response, loopback
from _params import named_params
from llmrelay import (
    AsyncClient,
    ConfigError,
    Message,
    OutputValidationError,
    RetryPolicy,
    ToolCall,
    function_tool,
    run_tool_calls,
    run_tool_calls_sync,
)


class Unit(enum.Enum):
    C = "c"
    F = "f"


@dataclasses.dataclass
class Place:
    city: str
    country: str = "NO"


def get_weather(city: str, unit: Literal["c", "f"] = "c", days: int = 1) -> str:
    """Look up the weather.

    Longer text that is not part of the description.

    Args:
        city: The city, e.g. "Oslo".
        unit: Celsius or
            Fahrenheit.
        days (int): How many days.

    Returns:
        A sentence.
    """
    return f"{days} day(s) of 20{unit} in {city}"


async def get_time(place: Place, unit: Unit = Unit.C) -> dict[str, Any]:
    """What time it is somewhere.

    :param place: Where.
    :param unit: Units for
        the temperature.
    """
    return {"place": dataclasses.asdict(place), "unit": unit.value, "time": "12:00"}


def forecast(
    cities: list[str], detail: Annotated[str, "How detailed"] = "short", when: float | None = None
) -> list[str]:
    return [f"{c}:{detail}:{when}" for c in cities]


def explode(reason: str) -> str:
    """Always fails."""
    raise RuntimeError(f"boom: {reason}")


class Query(pydantic.BaseModel):
    text: str
    limit: int = 3


def search(query: Query) -> Query:
    """Search."""
    return query


def test_the_schema_of_a_function() -> None:
    assert function_tool(get_weather) == {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Look up the weather.",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": 'The city, e.g. "Oslo".'},
                    "unit": {
                        "enum": ["c", "f"],
                        "type": "string",
                        "description": "Celsius or Fahrenheit.",
                    },
                    "days": {"type": "integer", "description": "How many days."},
                },
                "required": ["city"],
            },
        },
    }


def test_sphinx_docstrings_dataclass_and_enum_parameters() -> None:
    spec = function_tool(get_time)["function"]
    assert spec["description"] == "What time it is somewhere."
    place = spec["parameters"]["properties"]["place"]
    assert place["properties"] == {"city": {"type": "string"}, "country": {"type": "string"}}
    assert place["required"] == ["city"] and place["description"] == "Where."
    unit = spec["parameters"]["properties"]["unit"]
    assert unit == {
        "enum": ["c", "f"],
        "type": "string",
        "description": "Units for the temperature.",
    }


def test_annotated_lists_and_optionals() -> None:
    spec = function_tool(forecast)["function"]
    assert "description" not in spec
    props = spec["parameters"]["properties"]
    assert props["cities"] == {"type": "array", "items": {"type": "string"}}
    assert props["detail"] == {"type": "string", "description": "How detailed"}
    assert props["when"] == {"anyOf": [{"type": "number"}, {"type": "null"}]}
    assert spec["parameters"]["required"] == ["cities"]


def test_a_pydantic_parameter_uses_its_own_schema() -> None:
    props = function_tool(search)["function"]["parameters"]["properties"]
    assert props["query"]["properties"]["text"] == {"title": "Text", "type": "string"}


def star(*names: str) -> None: ...


def keywords(**options: Any) -> None: ...


def positional(a: int, /) -> None: ...


@pytest.mark.parametrize("fn", [star, keywords, positional])
def test_parameters_that_cannot_come_by_name_are_a_config_error(fn: Any) -> None:
    with pytest.raises(ConfigError, match="cannot be passed by name"):
        function_tool(fn)


def params_with_tools(tools: Any) -> dict[str, Any]:
    return named_params(tools=tools)


@pytest.mark.parametrize("tools", [[42], ["get_weather"], get_weather, {"type": "function"}])
def test_bad_tools_are_config_errors(tools: Any) -> None:
    with pytest.raises(ConfigError, match="tools"):
        params_with_tools(tools)


def test_functions_and_dicts_mix() -> None:
    raw = {"type": "function", "function": {"name": "raw", "parameters": {"type": "object"}}}
    params = params_with_tools([raw, get_weather])
    assert [t["function"]["name"] for t in params["tools"]] == ["raw", "get_weather"]


# -- parse_arguments -----------------------------------------------------------------------------


def call(name: str, arguments: Any, call_id: str = "call_1") -> ToolCall:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return ToolCall(id=call_id, name=name, arguments=text)


def test_parse_arguments_into_types() -> None:
    assert call("f", {"city": "Oslo"}).parse_arguments() == {"city": "Oslo"}
    assert call("f", {"city": "Oslo"}).parse_arguments(Place) == Place(city="Oslo")
    assert call("f", {"text": "x"}).parse_arguments(Query) == Query(text="x")
    assert call("f", "").parse_arguments() == {}


@pytest.mark.parametrize(
    ("arguments", "into", "problem"),
    [
        ("{not json", None, "not JSON"),
        ({"country": "SE"}, Place, "missing required property 'city'"),
        ({"city": 5}, Place, "expected string"),
        ({"limit": 1}, Query, "text"),
    ],
)
def test_bad_arguments_are_output_validation_errors(
    arguments: Any, into: Any, problem: str
) -> None:
    with pytest.raises(OutputValidationError) as caught:
        call("f", arguments).parse_arguments(into)
    assert problem in caught.value.validation_message
    assert caught.value.text == (arguments if isinstance(arguments, str) else json.dumps(arguments))


# -- running calls -------------------------------------------------------------------------------

FUNCTIONS = [get_weather, get_time, forecast, explode, search]


async def test_run_tool_calls_runs_sync_and_async_functions_in_order() -> None:
    calls = [
        call("get_weather", {"city": "Oslo", "days": 2}, "a"),
        call("get_time", {"place": {"city": "Bergen"}, "unit": "f"}, "b"),
        call("forecast", {"cities": ["X", "Y"]}, "c"),
        call("search", {"query": {"text": "tea"}}, "d"),
    ]
    results = await run_tool_calls(calls, FUNCTIONS)
    assert results == [
        Message(
            role="tool", content="2 day(s) of 20c in Oslo", tool_call_id="a", name="get_weather"
        ),
        Message(
            role="tool",
            content=json.dumps(
                {"place": {"city": "Bergen", "country": "NO"}, "unit": "f", "time": "12:00"}
            ),
            tool_call_id="b",
            name="get_time",
        ),
        Message(
            role="tool",
            content='["X:short:None", "Y:short:None"]',
            tool_call_id="c",
            name="forecast",
        ),
        Message(role="tool", content='{"text":"tea","limit":3}', tool_call_id="d", name="search"),
    ]


@pytest.mark.parametrize(
    ("bad", "content"),
    [
        (call("explode", {"reason": "why"}), "Error: RuntimeError: boom: why"),
        (call("nope", {}), "Error: LookupError: no tool function named 'nope'"),
        (call("get_weather", {"town": "Oslo"}), "Error: OutputValidationError: "),
        (call("get_weather", "[1, 2]"), "Error: OutputValidationError: "),
        (call("get_weather", "{oops"), "Error: OutputValidationError: "),
    ],
)
async def test_failures_become_error_results_for_the_model(bad: ToolCall, content: str) -> None:
    (result,) = await run_tool_calls([bad], FUNCTIONS)
    assert isinstance(result.content, str) and result.content.startswith(content)
    assert result.tool_call_id == bad.id and result.role == "tool"
    (again,) = run_tool_calls_sync([bad], [f for f in FUNCTIONS if f is not get_time])
    assert isinstance(again.content, str) and again.content.startswith(content)


async def test_raise_errors_raises_the_functions_own_error() -> None:
    with pytest.raises(RuntimeError, match="boom"):
        await run_tool_calls([call("explode", {"reason": "x"})], FUNCTIONS, raise_errors=True)
    with pytest.raises(RuntimeError, match="boom"):
        run_tool_calls_sync(call("explode", {"reason": "x"}), [explode], raise_errors=True)


def test_the_sync_runner_refuses_async_functions() -> None:
    with pytest.raises(ConfigError, match="async"):
        run_tool_calls_sync([call("get_time", {"place": {"city": "X"}})], {"get_time": get_time})


# -- end to end, every wire family ---------------------------------------------------------------


def tool_call_reply(family: str) -> Any:
    if family == "openai":
        return {
            "id": "c1",
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "call_1",
                                "type": "function",
                                "function": {
                                    "name": "get_weather",
                                    "arguments": '{"city": "Oslo"}',
                                },
                            }
                        ],
                    },
                    "finish_reason": "tool_calls",
                }
            ],
        }
    if family == "anthropic":
        return {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "m",
            "content": [
                {
                    "type": "tool_use",
                    "id": "call_1",
                    "name": "get_weather",
                    "input": {"city": "Oslo"},
                }
            ],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 1, "output_tokens": 1},
        }
    return {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}}],
                },
                "finishReason": "STOP",
            }
        ]
    }


def declared(family: str, body: dict[str, Any]) -> dict[str, Any]:
    """The parameters schema of the first tool, as the family's request carries it."""
    if family == "openai":
        parameters: dict[str, Any] = body["tools"][0]["function"]["parameters"]
    elif family == "anthropic":
        parameters = body["tools"][0]["input_schema"]
    else:
        parameters = body["tools"][0]["functionDeclarations"][0]["parameters"]
    return parameters


@pytest.mark.parametrize("family", ["openai", "anthropic", "gemini"])
async def test_a_function_tool_round_trip_over_loopback(family: str) -> None:
    def respond(request: Request) -> Response:
        return json_response(tool_call_reply(family))

    async with (
        loopback(respond) as server,
        AsyncClient(
            provider=family,
            api_key="k",
            base_url=server.base_url,
            model="m",
            retry=RetryPolicy(max_retries=0),
        ) as client,
    ):
        reply = await client.chat("Weather in Oslo?", tools=[get_weather])
        results = await run_tool_calls(reply, [get_weather])
        await client.chat(
            [{"role": "user", "content": "Weather in Oslo?"}, reply.message, *results]
        )
    assert declared(family, server.requests[0].json)["properties"]["city"]["type"] == "string"
    (tool_call,) = reply.tool_calls
    assert tool_call.name == "get_weather"
    assert results[0].content == "1 day(s) of 20c in Oslo"
    follow_up = json.dumps(server.requests[1].json)
    assert "1 day(s) of 20c in Oslo" in follow_up


TYPED_USE = """
from __future__ import annotations

import dataclasses

import llmrelay


@dataclasses.dataclass
class City:
    name: str


def get_weather(city: str) -> str:
    return city


async def main(client: llmrelay.AsyncClient) -> None:
    reply = await client.chat("hi", tools=[get_weather], response_format=City)
    city: City = reply.parsed
    results: list[llmrelay.Message] = await llmrelay.run_tool_calls(reply, [get_weather])
    again = llmrelay.run_tool_calls_sync(reply.tool_calls, {"get_weather": get_weather})
    stream = client.stream(
        "hi",
        tools=[{"type": "function", "function": {"name": "f"}}, get_weather],
        response_format={"type": "object"},
    )
    final = await stream.final()
    print(city, results, again, final.parsed, reply.tool_calls[0].parse_arguments(City))
    bad = llmrelay.AsyncClient(provider="mock", api="completions")  # error: api
"""


def test_mypy_accepts_functions_as_tools_and_checks_api(tmp_path: Any) -> None:
    from _mypy import dedent, expected_errors, run_mypy

    found = run_mypy(tmp_path, {"typed_use": TYPED_USE})["typed_use"]
    expected = expected_errors(dedent(TYPED_USE))
    assert set(found) == set(expected), found
    for line, piece in expected.items():
        assert piece in found[line]
