"""The Anthropic Messages adapter, request side, as pure translation: OpenAI-shaped messages
and named params in, the Messages API body out (see `providers/_anthropic_request.py`)."""

from __future__ import annotations

import json
from typing import Any

import pytest

import llmrelay
from _params import named_params
from llmrelay import ConfigError, Message
from llmrelay._request import ChatRequest, normalize_messages
from llmrelay.providers import anthropic

MODEL = "claude-sonnet-4-5"


def provider(**options: Any) -> llmrelay.Provider:
    return anthropic.preset(**options)


def wire(
    messages: Any, *, stream: bool = False, extra_body: Any = None, **params: Any
) -> dict[str, Any]:
    """The JSON body `build_chat` makes for these (user-facing) arguments."""
    request = ChatRequest(
        model=MODEL,
        messages=normalize_messages(messages),
        params=named_params(**params),
        extra_body=extra_body,
        stream=stream,
    )
    built = anthropic.build_chat(provider(), request)
    assert built.method == "POST"
    assert built.path == "messages"
    body: dict[str, Any] = built.json
    return body


# -- requests: messages ------------------------------------------------------------------------


def test_a_prompt_becomes_one_user_turn_with_the_default_max_tokens() -> None:
    assert wire("Hello") == {
        "model": MODEL,
        "max_tokens": anthropic.ANTHROPIC_DEFAULT_MAX_TOKENS,
        "messages": [{"role": "user", "content": "Hello"}],
    }
    assert anthropic.ANTHROPIC_DEFAULT_MAX_TOKENS == 4096


def test_max_tokens_given_or_from_the_preset_option() -> None:
    assert wire("Hi", max_tokens=50)["max_tokens"] == 50
    request = ChatRequest(model=MODEL, messages=normalize_messages("Hi"), params={})
    built = anthropic.build_chat(provider(default_max_tokens=1000), request)
    assert built.json["max_tokens"] == 1000


def test_system_and_developer_messages_are_lifted_to_system() -> None:
    body = wire([{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hi"}])
    assert body["system"] == "Be terse."
    assert body["messages"] == [{"role": "user", "content": "Hi"}]

    body = wire(
        [
            {"role": "system", "content": "Rule one."},
            {"role": "user", "content": "Hi"},
            {
                "role": "developer",
                "content": [
                    {"type": "text", "text": "Rule two.", "cache_control": {"type": "ephemeral"}}
                ],
            },
        ]
    )
    assert body["system"] == [
        {"type": "text", "text": "Rule one."},
        {"type": "text", "text": "Rule two.", "cache_control": {"type": "ephemeral"}},
    ]
    assert [m["role"] for m in body["messages"]] == ["user"]


def test_only_system_messages_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="at least one user or assistant message"):
        wire([{"role": "system", "content": "Be terse."}])


def test_consecutive_same_role_turns_are_merged_so_roles_alternate() -> None:
    body = wire(
        [
            {"role": "user", "content": "First."},
            {"role": "user", "content": [{"type": "text", "text": "Second."}]},
            {"role": "assistant", "content": "A."},
            {"role": "assistant", "content": "B."},
            {"role": "user", "content": "Third."},
        ]
    )
    assert body["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "First."}, {"type": "text", "text": "Second."}],
        },
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "A."}, {"type": "text", "text": "B."}],
        },
        {"role": "user", "content": "Third."},
    ]


def test_tool_calls_and_tool_results_become_tool_use_and_one_user_turn() -> None:
    body = wire(
        [
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [
                    {
                        "id": "toolu_1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                    },
                    {
                        "id": "toolu_2",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city": "Rome"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
            {"role": "tool", "tool_call_id": "toolu_2", "content": "24C"},
            {"role": "user", "content": "Thanks!"},
        ]
    )
    assert body["messages"] == [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "weather",
                    "input": {"city": "Paris"},
                },
                {"type": "tool_use", "id": "toolu_2", "name": "weather", "input": {"city": "Rome"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "24C"},
                {"type": "text", "text": "Thanks!"},
            ],
        },
    ]


def test_an_assistant_turn_with_only_tool_calls_and_a_structured_error_result() -> None:
    body = wire(
        [
            {"role": "user", "content": "Go"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "toolu_9",
                        "type": "function",
                        "function": {"name": "noargs", "arguments": ""},
                    }
                ],
            },
            {
                "role": "tool",
                "tool_call_id": "toolu_9",
                "content": [{"type": "text", "text": "boom"}],
                "is_error": True,
            },
        ]
    )
    assert body["messages"][1] == {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": "toolu_9", "name": "noargs", "input": {}}],
    }
    assert body["messages"][2] == {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": "toolu_9",
                "content": [{"type": "text", "text": "boom"}],
                "is_error": True,
            }
        ],
    }


@pytest.mark.parametrize("arguments", ["{not json", "[1, 2]"])
def test_tool_call_arguments_that_are_not_a_json_object_are_a_config_error(
    arguments: str,
) -> None:
    messages = [
        {"role": "user", "content": "Go"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "t1", "type": "function", "function": {"name": "f", "arguments": arguments}}
            ],
        },
    ]
    with pytest.raises(ConfigError, match="arguments of tool call 't1'"):
        wire(messages)


def test_images_data_urls_become_base64_and_http_urls_url_sources() -> None:
    body = wire(
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Compare these."},
                    {
                        "type": "image_url",
                        "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="},
                    },
                    {
                        "type": "image_url",
                        "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"},
                    },
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/gif", "data": "R0lGOD"},
                    },
                ],
            }
        ]
    )
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "Compare these."},
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
        },
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/gif", "data": "R0lGOD"},
        },
    ]


@pytest.mark.parametrize(
    "url", ["data:image/png;base64", "data:;base64,abc", "ftp://example.com/a.png", "cat.png"]
)
def test_unusable_image_urls_are_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match="image"):
        wire([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}])


def test_thinking_with_its_signature_is_replayed_as_a_leading_block() -> None:
    turn = Message(
        role="assistant", content="12,231", reasoning="27*453...", reasoning_signature="sig=="
    )
    body = wire(
        [Message(role="user", content="27*453?"), turn, Message(role="user", content="x2?")]
    )
    assert body["messages"][1] == {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "27*453...", "signature": "sig=="},
            {"type": "text", "text": "12,231"},
        ],
    }
    # Without a signature Anthropic would reject the block: it is left out.
    unsigned = wire(
        [
            {"role": "user", "content": "Q"},
            {"role": "assistant", "content": "A", "reasoning_content": "hmm"},
            {"role": "user", "content": "Q2"},
        ]
    )
    assert unsigned["messages"][1] == {"role": "assistant", "content": "A"}


def test_reasoning_blocks_are_replayed_in_order_each_with_its_signature() -> None:
    turn = Message(
        role="assistant",
        content="Done.",
        # The single-block fields are what a reader sees; the blocks are what goes back.
        reasoning="onetwo",
        reasoning_signature="S2",
        reasoning_blocks=(
            llmrelay.ReasoningBlock(text="one", signature="S1"),
            llmrelay.ReasoningBlock(redacted="R"),
            llmrelay.ReasoningBlock(text="", signature="S0"),
            llmrelay.ReasoningBlock(text="unsigned"),  # Anthropic would reject it: left out
            llmrelay.ReasoningBlock(text="two", signature="S2"),
        ),
    )
    body = wire([Message(role="user", content="Q"), turn, Message(role="user", content="Q2")])
    assert body["messages"][1] == {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "one", "signature": "S1"},
            {"type": "redacted_thinking", "data": "R"},
            {"type": "thinking", "thinking": "", "signature": "S0"},
            {"type": "thinking", "thinking": "two", "signature": "S2"},
            {"type": "text", "text": "Done."},
        ],
    }


def test_reasoning_blocks_written_as_dicts_are_replayed() -> None:
    # What `Message.to_dict()` produces, so a conversation stored as JSON replays the same.
    turn = Message(
        role="assistant",
        content="A",
        reasoning_blocks=(
            llmrelay.ReasoningBlock(redacted="R"),
            llmrelay.ReasoningBlock(text="t", signature="S"),
        ),
    ).to_dict()
    stored = json.loads(json.dumps(turn))
    assert stored["reasoning_blocks"] == [
        {"text": "", "redacted": "R"},
        {"text": "t", "signature": "S"},
    ]
    body = wire([{"role": "user", "content": "Q"}, stored, {"role": "user", "content": "Q2"}])
    assert body["messages"][1]["content"] == [
        {"type": "redacted_thinking", "data": "R"},
        {"type": "thinking", "thinking": "t", "signature": "S"},
        {"type": "text", "text": "A"},
    ]


@pytest.mark.parametrize(
    ("blocks", "match"),
    [
        ("not a list", "must be a list"),
        (["text"], "holds a str"),
        ([{"text": 1, "signature": "S"}], "must be strings"),
        ([{"text": "t", "signature": 5}], "must be strings"),
    ],
)
def test_malformed_reasoning_blocks_are_a_config_error(blocks: Any, match: str) -> None:
    turn = {"role": "assistant", "content": "A", "reasoning_blocks": blocks}
    with pytest.raises(ConfigError, match=match):
        wire([{"role": "user", "content": "Q"}, turn])


def test_input_messages_are_not_modified() -> None:
    messages = [
        {"role": "system", "content": [{"type": "text", "text": "S"}]},
        {"role": "user", "content": [{"type": "text", "text": "A"}]},
        {"role": "user", "content": [{"type": "text", "text": "B"}]},
    ]
    before = json.dumps(messages)
    wire(messages)
    assert json.dumps(messages) == before


# -- requests: parameters ----------------------------------------------------------------------


def test_sampling_parameters_stop_and_stream() -> None:
    body = wire("Hi", temperature=0.3, top_p=0.9, stop=["END", "STOP"], max_tokens=7, stream=True)
    assert body["temperature"] == 0.3
    assert body["top_p"] == 0.9
    assert body["stop_sequences"] == ["END", "STOP"]
    assert "stop" not in body
    assert body["max_tokens"] == 7
    assert body["stream"] is True
    assert wire("Hi", stop="END")["stop_sequences"] == ["END"]


def test_tools_become_name_description_input_schema() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    body = wire(
        "Hi",
        tools=[
            {
                "type": "function",
                "function": {
                    "name": "weather",
                    "description": "Current weather",
                    "parameters": schema,
                },
            },
            {"type": "function", "function": {"name": "ping"}},
        ],
    )
    assert body["tools"] == [
        {"name": "weather", "description": "Current weather", "input_schema": schema},
        {"name": "ping", "input_schema": {"type": "object", "properties": {}}},
    ]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("required", {"type": "any"}),
        ("none", {"type": "none"}),
        (
            {"type": "function", "function": {"name": "weather"}},
            {"type": "tool", "name": "weather"},
        ),
        (
            {"type": "any", "disable_parallel_tool_use": True},
            {"type": "any", "disable_parallel_tool_use": True},
        ),
    ],
)
def test_tool_choice(choice: Any, expected: dict[str, Any]) -> None:
    assert wire("Hi", tool_choice=choice)["tool_choice"] == expected


@pytest.mark.parametrize("choice", ["sometimes", {"type": "function"}, 3])
def test_a_bad_tool_choice_is_a_config_error(choice: Any) -> None:
    with pytest.raises(ConfigError, match="tool_choice"):
        wire("Hi", tool_choice=choice)


def test_response_format_and_seed_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"no JSON mode without a schema"):
        wire("Hi", response_format={"type": "json_object"})
    with pytest.raises(ConfigError, match="no seed"):
        wire("Hi", seed=1)


def test_extra_body_is_merged_last() -> None:
    thinking = {"type": "enabled", "budget_tokens": 2048}
    body = wire("Hi", max_tokens=10, extra_body={"thinking": thinking, "max_tokens": 8000})
    assert body["thinking"] == thinking
    assert body["max_tokens"] == 8000


@pytest.mark.parametrize("param", ["temperature", "top_p"])
def test_sampling_params_are_refused_where_the_api_version_rejects_them(param: str) -> None:
    messages = [{"role": "user", "content": "Hi"}]
    request = ChatRequest(model=MODEL, messages=messages, params={param: 0.5})
    with pytest.raises(ConfigError, match=rf"2026-10-21 rejects {param}.*2023-06-01"):
        anthropic.build_chat(anthropic.preset(version="2026-10-21"), request)
    body = anthropic.build_chat(anthropic.preset(), request).json
    assert body[param] == 0.5  # 2023-06-01, the default, still takes them
