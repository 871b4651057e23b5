"""The mock judged by the official ``google-genai`` SDK: what it parses, raises and retries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pydantic
import pytest
from google import genai
from google.genai import errors, types

from ._strict import json_events, strict

MODEL = "mock-echo"
WEATHER = types.FunctionDeclaration(
    name="get_weather",
    description="The weather in a city",
    parameters_json_schema={
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city", "unit"],
    },
)
TIME = types.FunctionDeclaration(
    name="get_time",
    parameters=types.Schema(
        type=types.Type.OBJECT, properties={"zone": types.Schema(type=types.Type.STRING)}
    ),
)


def make_client(url: str, **options: Any) -> genai.Client:
    return genai.Client(
        api_key="mock-key",
        http_options=types.HttpOptions(base_url=url, api_version="v1beta", **options),
    )


@pytest.fixture
def client(mock_url: str) -> Iterator[genai.Client]:
    with make_client(mock_url) as sdk:
        yield sdk


@pytest.fixture
def raw(mock_url: str) -> Iterator[httpx.Client]:
    headers = {"x-goog-api-key": "x"}
    with httpx.Client(base_url=f"{mock_url}/v1beta", headers=headers) as http:
        yield http


def test_generate_content(client: genai.Client) -> None:
    response = client.models.generate_content(model=MODEL, contents="Hello Gemini")
    assert response.text == "echo: Hello Gemini"
    assert response.candidates and response.candidates[0].finish_reason == types.FinishReason.STOP
    usage = response.usage_metadata
    assert usage is not None and usage.candidates_token_count == 3


def test_stream_carries_usage_on_every_chunk(client: genai.Client) -> None:
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="one two three"))
    assert "".join(chunk.text or "" for chunk in chunks) == "echo: one two three"
    counts = [
        chunk.usage_metadata.candidates_token_count for chunk in chunks if chunk.usage_metadata
    ]
    assert len(counts) == len(chunks) and counts == sorted(counts) and counts[-1] == 4
    assert chunks[-1].candidates and chunks[-1].candidates[0].finish_reason == "STOP"


# google-genai's async client subclasses aiohttp's ClientSession when aiohttp is installed.
@pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning")
async def test_async_stream(mock_url: str) -> None:
    sdk = make_client(mock_url)
    stream = await sdk.aio.models.generate_content_stream(model=MODEL, contents="async gemini")
    text = "".join([chunk.text or "" async for chunk in stream])
    await sdk.aio.aclose()
    assert text == "echo: async gemini"


def test_embeddings(client: genai.Client) -> None:
    result = client.models.embed_content(
        model="mock-embed",
        contents=["first", "second"],
        config=types.EmbedContentConfig(output_dimensionality=12),
    )
    assert result.embeddings and len(result.embeddings) == 2
    assert all(len(e.values or []) == 12 for e in result.embeddings)


def test_models_list_get_and_count_tokens(client: genai.Client) -> None:
    names = [model.name for model in client.models.list()]
    assert names == ["models/mock-echo", "models/mock-echo-large", "models/mock-embed"]
    assert client.models.get(model="mock-echo-large").display_name == "mock-echo-large"
    with pytest.raises(errors.ClientError) as caught:
        client.models.get(model="gemini-nowhere")
    assert caught.value.code == 404
    counted = client.models.count_tokens(model=MODEL, contents="count these tokens")
    assert counted.total_tokens == 5


@pytest.mark.parametrize("stream", [False, True])
def test_mode_any_calls_a_function_with_schema_valid_args(
    client: genai.Client, stream: bool
) -> None:
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[TIME, WEATHER])],
        tool_config=types.ToolConfig(
            function_calling_config=types.FunctionCallingConfig(
                mode=types.FunctionCallingConfigMode.ANY
            )
        ),
    )
    contents = "ask get_weather about Lima"
    if stream:
        chunks = list(
            client.models.generate_content_stream(model=MODEL, contents=contents, config=config)
        )
        calls = [call for chunk in chunks for call in chunk.function_calls or []]
    else:
        calls = (
            client.models.generate_content(
                model=MODEL, contents=contents, config=config
            ).function_calls
            or []
        )
    assert [call.name for call in calls] == ["get_weather"]
    jsonschema.validate(calls[0].args, WEATHER.parameters_json_schema)


def test_automatic_function_calling_runs_a_python_function(client: genai.Client) -> None:
    seen: list[str] = []

    def get_time(zone: str) -> str:
        """The time in a zone."""
        seen.append(zone)
        return "12:00"

    response = client.models.generate_content(
        model=MODEL,
        contents="what does get_time say?",
        config=types.GenerateContentConfig(tools=[get_time]),
    )
    assert len(seen) == 1  # the SDK ran the function once, sent its result, got a text answer
    assert response.text == "echo: what does get_time say?"


class Planet(pydantic.BaseModel):
    name: str
    moons: int
    rings: bool
    features: list[str]


def test_structured_output_parses_into_a_pydantic_model(client: genai.Client) -> None:
    response = client.models.generate_content(
        model=MODEL,
        contents="describe a planet",
        config=types.GenerateContentConfig(
            response_mime_type="application/json", response_schema=Planet
        ),
    )
    assert isinstance(response.parsed, Planet)
    json_schema = client.models.generate_content(
        model=MODEL,
        contents="json schema",
        config=types.GenerateContentConfig(
            response_mime_type="application/json",
            response_json_schema=Planet.model_json_schema(),
        ),
    )
    Planet.model_validate_json(json_schema.text or "")


def test_stop_candidates_and_logprobs(client: genai.Client) -> None:
    response = client.models.generate_content(
        model=MODEL,
        contents="red green blue",
        config=types.GenerateContentConfig(
            stop_sequences=["blue"], candidate_count=2, response_logprobs=True, logprobs=3
        ),
    )
    candidates = response.candidates or []
    assert [c.index for c in candidates] == [0, 1]
    texts = [part.text for c in candidates for part in (c.content.parts if c.content else []) or []]
    assert texts == ["echo: red green "] * 2
    result = candidates[0].logprobs_result
    assert result is not None and result.chosen_candidates and result.top_candidates
    assert [c.token for c in result.chosen_candidates] == ["echo: ", "red ", "green "]
    assert all(len(top.candidates or []) == 3 for top in result.top_candidates)


ERRORS = [
    (400, errors.ClientError),
    (401, errors.ClientError),
    (429, errors.ClientError),
    (500, errors.ServerError),
    (529, errors.ServerError),
]


@pytest.mark.parametrize(("status", "error"), ERRORS)
def test_injected_statuses_raise_the_sdk_error_class(
    client: genai.Client, status: int, error: type[errors.APIError]
) -> None:
    with pytest.raises(error) as caught:
        client.models.generate_content(
            model=MODEL,
            contents=f"fail {status}",
            config=types.GenerateContentConfig(
                http_options=types.HttpOptions(headers={"x-mock-fault": str(status)})
            ),
        )
    assert caught.value.code == status


def test_error_events(client: genai.Client) -> None:
    fault = types.GenerateContentConfig(
        http_options=types.HttpOptions(headers={"x-mock-fault": "error-event;after=1"})
    )
    with pytest.raises(errors.ServerError):  # not a 200 with an error body
        client.models.generate_content(model=MODEL, contents="x", config=fault)
    with pytest.raises(errors.APIError):
        list(client.models.generate_content_stream(model=MODEL, contents="a b c", config=fault))


def test_the_sdk_retry_meets_the_fault_n_times_on_every_call(mock_url: str) -> None:
    retry = types.HttpRetryOptions(attempts=3, initial_delay=0.001, max_delay=0.002, jitter=0.001)
    config = types.GenerateContentConfig(
        http_options=types.HttpOptions(headers={"x-mock-fault": "503;times=2"})
    )
    with make_client(mock_url, retry_options=retry) as sdk:
        for _ in range(2):  # no retry counter, no key: each call ends with its success
            response = sdk.models.generate_content(model=MODEL, contents="retry", config=config)
            assert response.text == "echo: retry"
            assert response.sdk_http_response and response.sdk_http_response.headers
            assert response.sdk_http_response.headers["x-mock-attempt"] == "3"
    short = types.HttpRetryOptions(attempts=2, initial_delay=0.001, max_delay=0.002, jitter=0.001)
    with make_client(mock_url, retry_options=short) as sdk, pytest.raises(errors.ServerError):
        sdk.models.generate_content(model=MODEL, contents="retry short", config=config)


STRICT_BODIES: list[dict[str, Any]] = [
    {"contents": [{"role": "user", "parts": [{"text": "plain"}]}]},
    {
        "contents": [{"role": "user", "parts": [{"text": "all of it"}]}],
        "generationConfig": {
            "candidateCount": 2,
            "responseLogprobs": True,
            "logprobs": 2,
            "maxOutputTokens": 2,
            "stopSequences": ["it"],
        },
    },
    {
        "contents": [{"role": "user", "parts": [{"text": "get_time please"}]}],
        "tools": [{"functionDeclarations": [{"name": "get_time"}]}],
    },
]


@pytest.mark.parametrize("body", STRICT_BODIES)
def test_every_response_and_chunk_validates_strictly(
    raw: httpx.Client, body: dict[str, Any]
) -> None:
    one = strict(
        types.GenerateContentResponse,
        raw.post(f"/models/{MODEL}:generateContent", json=body).content,
    )
    assert one.usage_metadata is not None and one.response_id and one.model_version
    streamed = raw.post(f"/models/{MODEL}:streamGenerateContent", params={"alt": "sse"}, json=body)
    events = json_events(streamed.text)
    assert events
    for event in events:
        chunk = strict(types.GenerateContentResponse, json.dumps(event))
        assert chunk.usage_metadata is not None and chunk.usage_metadata.prompt_token_count


def as_sdk_model(wire: dict[str, Any]) -> str:
    """The one field google-genai renames on the way in: the API's supportedGenerationMethods
    is its Model.supported_actions."""
    wire = dict(wire)
    wire["supportedActions"] = wire.pop("supportedGenerationMethods")
    return json.dumps(wire)


def test_models_embeddings_and_counts_validate_strictly(raw: httpx.Client) -> None:
    strict(types.Model, as_sdk_model(raw.get(f"/models/{MODEL}").json()))
    for model in raw.get("/models").json()["models"]:
        strict(types.Model, as_sdk_model(model))
    count = {"contents": [{"parts": [{"text": "x"}]}]}
    strict(types.CountTokensResponse, raw.post(f"/models/{MODEL}:countTokens", json=count).content)
    embed = {"requests": [{"model": "models/mock-embed", "content": {"parts": [{"text": "x"}]}}]}
    strict(
        types.EmbedContentResponse,
        raw.post("/models/mock-embed:batchEmbedContents", json=embed).content,
    )
