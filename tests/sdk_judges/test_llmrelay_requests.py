"""The judges turned around: what llmrelay's own client sends validates strictly against the
official SDKs' request parameter types (OpenAI ``CompletionCreateParams``, Anthropic
``MessageCreateParams``), and carries no top-level field they do not declare.

One allowance: the Anthropic SDK's types follow API version 2026-10-21, which has no sampling
fields; llmrelay sends ``anthropic-version: 2023-06-01`` by default, where ``temperature``,
``top_p`` and ``top_k`` are still part of the API (and refuses them itself on the newer version).
"""

from __future__ import annotations

import typing
from collections.abc import Iterator
from typing import Any

import pydantic
import pytest
from anthropic.types import message_create_params as anthropic_params
from openai.types.chat import completion_create_params as openai_params

import llmrelay
from _recording import RecordingEngine, recording_server

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
CONVERSATION: list[Any] = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "weather in Paris?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    {"role": "user", "content": "and tomorrow?"},
]
CASES: list[dict[str, Any]] = [
    {},
    {"tools": [WEATHER], "tool_choice": "required"},
    {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
    {"stop": ["x"], "temperature": 0.5, "max_tokens": 50},
]


@pytest.fixture(scope="module")
def recorded() -> Iterator[tuple[str, RecordingEngine]]:
    with recording_server() as served:
        yield served


OLD_ANTHROPIC_SAMPLING = {"temperature", "top_p", "top_k"}
PARAMS = {
    ("openai", False): openai_params.CompletionCreateParamsNonStreaming,
    ("openai", True): openai_params.CompletionCreateParamsStreaming,
    ("anthropic", False): anthropic_params.MessageCreateParamsNonStreaming,
    ("anthropic", True): anthropic_params.MessageCreateParamsStreaming,
}


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize("case", CASES)
async def test_llmrelay_requests_validate_against_the_sdk_params(
    recorded: tuple[str, RecordingEngine], provider: str, case: dict[str, Any]
) -> None:
    url, recorder = recorded
    recorder.requests.clear()
    async with llmrelay.AsyncClient(
        provider=provider, base_url=f"{url}/v1", api_key="k", model="mock-echo"
    ) as client:
        await client.chat(CONVERSATION, **case)
        stream = client.stream(CONVERSATION, **case)
        async with stream:
            async for _ in stream:
                pass
    posts = [(seen.headers, seen.json()) for seen in recorder.requests if seen.method == "POST"]
    assert len(posts) == 2
    for headers, body in posts:
        params = PARAMS[provider, body.get("stream") is True]
        declared = set(typing.get_type_hints(params))
        if headers.get("anthropic-version") == "2023-06-01":
            declared |= OLD_ANTHROPIC_SAMPLING
            body = {k: v for k, v in body.items() if k not in OLD_ANTHROPIC_SAMPLING}
        pydantic.TypeAdapter(params).validate_python(body, strict=True)
        unknown = set(body) - declared
        assert not unknown, f"fields the {provider} SDK does not declare: {unknown}"
