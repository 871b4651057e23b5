"""The Gemini adapter, request side, as pure translation: OpenAI-shaped messages and named
params in, the ``generateContent`` body, path and query out (see `_gemini_request.py`).

No HTTP here; `test_gemini_client.py` runs the same adapter through the real client.
"""

from __future__ import annotations

from typing import Any

import pytest

from _params import named_params
from llmrelay import ConfigError, Message, ToolCall
from llmrelay._request import ChatRequest
from llmrelay.providers import gemini as adapter
from llmrelay.providers import get_provider

PROVIDER = adapter.preset()


def request(
    messages: list[dict[str, Any]] | str,
    *,
    model: str = "gemini-2.5-flash",
    stream: bool = False,
    extra_body: dict[str, Any] | None = None,
    **params: Any,
) -> ChatRequest:
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    return ChatRequest(
        model=model,
        messages=messages,
        params=named_params(**params),
        extra_body=extra_body,
        stream=stream,
    )


def body_of(req: ChatRequest) -> dict[str, Any]:
    wire = adapter.build_chat(PROVIDER, req)
    assert isinstance(wire.json, dict)
    return wire.json


# -- preset -------------------------------------------------------------------------------------


def test_preset_is_registered() -> None:
    provider = get_provider("gemini")
    assert provider.name == "gemini"
    assert provider.adapter is adapter
    assert provider.base_url == "https://generativelanguage.googleapis.com/v1beta"
    assert provider.api_key_env == ("GEMINI_API_KEY", "GOOGLE_API_KEY")
    assert provider.base_url_env == ("GEMINI_BASE_URL",)


def test_auth_header_is_x_goog_api_key() -> None:
    assert adapter.auth_headers(PROVIDER, "g-key") == {"x-goog-api-key": "g-key"}
    assert adapter.auth_headers(PROVIDER, None) == {}


# -- endpoints ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "path"),
    [
        ("gemini-2.5-flash", "models/gemini-2.5-flash"),
        ("models/gemini-2.5-flash", "models/gemini-2.5-flash"),
        ("tunedModels/my-tune-42", "tunedModels/my-tune-42"),
        ("odd name?x#y", "models/odd%20name%3Fx%23y"),
    ],
)
def test_chat_endpoint_and_model_normalisation(model: str, path: str) -> None:
    wire = adapter.build_chat(PROVIDER, request("hi", model=model))
    assert (wire.method, wire.path, wire.params) == ("POST", f"{path}:generateContent", None)


def test_stream_endpoint_asks_for_sse() -> None:
    wire = adapter.build_chat(PROVIDER, request("hi", stream=True))
    assert wire.path == "models/gemini-2.5-flash:streamGenerateContent"
    assert wire.params == {"alt": "sse"}
    assert "stream" not in (wire.json or {})


# -- messages -----------------------------------------------------------------------------------


def test_roles_system_instruction_and_multi_turn() -> None:
    body = body_of(
        request(
            [
                {"role": "system", "content": "Be terse."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello."},
                {"role": "developer", "content": [{"type": "text", "text": "No emoji."}]},
                {"role": "user", "content": "Bye"},
            ]
        )
    )
    assert body == {
        "systemInstruction": {"parts": [{"text": "Be terse."}, {"text": "No emoji."}]},
        "contents": [
            {"role": "user", "parts": [{"text": "Hi"}]},
            {"role": "model", "parts": [{"text": "Hello."}]},
            {"role": "user", "parts": [{"text": "Bye"}]},
        ],
    }


def test_images_and_audio_become_inline_and_file_data() -> None:
    body = body_of(
        request(
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Compare"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}},
                        {"type": "image_url", "image_url": "https://x.test/cat.webp?size=2"},
                        {"type": "image_url", "image_url": {"url": "https://x.test/photo"}},
                        {"type": "image_url", "image_url": {"url": "data:text/plain,a%20b"}},
                        {"type": "input_audio", "input_audio": {"data": "UklG", "format": "mp3"}},
                    ],
                }
            ]
        )
    )
    assert body["contents"][0]["parts"] == [
        {"text": "Compare"},
        {"inlineData": {"mimeType": "image/png", "data": "iVBO"}},
        {"fileData": {"fileUri": "https://x.test/cat.webp?size=2", "mimeType": "image/webp"}},
        {"fileData": {"fileUri": "https://x.test/photo", "mimeType": "image/jpeg"}},
        {"inlineData": {"mimeType": "text/plain", "data": "YSBi"}},  # "a b", base64-encoded
        {"inlineData": {"mimeType": "audio/mp3", "data": "UklG"}},
    ]


def test_unknown_content_part_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="'file'"):
        body_of(request([{"role": "user", "content": [{"type": "file", "file": {}}]}]))


def test_tool_round_trip_names_ids_signature_and_grouped_results() -> None:
    calls = (
        ToolCall(id="fc-1", name="get_weather", arguments='{"city": "Paris"}'),
        ToolCall(id="call_1", name="get_time", arguments=""),
    )
    messages = [
        Message(role="user", content="Weather and time in Paris?").to_dict(),
        Message(
            role="assistant",
            content="Checking.",
            tool_calls=calls,
            reasoning="private thoughts",
            reasoning_signature="c2ln",
        ).to_dict(),
        Message(role="tool", tool_call_id="fc-1", content='{"temp_c": 21}').to_dict(),
        Message(role="tool", tool_call_id="call_1", content="14:05").to_dict(),
        Message(role="user", content="Thanks").to_dict(),
    ]
    assert body_of(request(messages))["contents"] == [
        {"role": "user", "parts": [{"text": "Weather and time in Paris?"}]},
        {
            "role": "model",
            "parts": [
                {"text": "Checking."},
                {
                    "functionCall": {
                        "name": "get_weather",
                        "args": {"city": "Paris"},
                        "id": "fc-1",
                    },
                    "thoughtSignature": "c2ln",
                },
                {"functionCall": {"name": "get_time", "args": {}, "id": "call_1"}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {
                    "functionResponse": {
                        "name": "get_weather",
                        "response": {"temp_c": 21},
                        "id": "fc-1",
                    }
                },
                {
                    "functionResponse": {
                        "name": "get_time",
                        "response": {"output": "14:05"},
                        "id": "call_1",
                    }
                },
            ],
        },
        {"role": "user", "parts": [{"text": "Thanks"}]},
    ]


def test_signature_on_a_text_only_turn_and_on_an_empty_turn() -> None:
    contents = body_of(
        request(
            [
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": "b", "reasoning_signature": "s1"},
                {"role": "user", "content": "c"},
                {"role": "assistant", "content": None, "reasoning_signature": "s2"},
                {"role": "user", "content": "d"},
            ]
        )
    )["contents"]
    assert contents[1] == {"role": "model", "parts": [{"text": "b", "thoughtSignature": "s1"}]}
    assert contents[3] == {"role": "model", "parts": [{"text": "", "thoughtSignature": "s2"}]}


def test_tool_result_name_comes_from_the_latest_call_with_that_id() -> None:
    def turn(name: str) -> dict[str, Any]:
        call = {"id": "call_0", "type": "function", "function": {"name": name, "arguments": "{}"}}
        return {"role": "assistant", "content": None, "tool_calls": [call]}

    contents = body_of(
        request(
            [
                {"role": "user", "content": "go"},
                turn("first"),
                {"role": "tool", "tool_call_id": "call_0", "content": "[1, 2]"},
                turn("second"),
                {"role": "tool", "tool_call_id": "call_0", "content": "ok"},
            ]
        )
    )["contents"]
    assert contents[2]["parts"][0]["functionResponse"] == {
        "name": "first",
        "response": {"output": [1, 2]},
        "id": "call_0",
    }
    assert contents[4]["parts"][0]["functionResponse"]["name"] == "second"


def test_tool_result_without_a_matching_call_is_a_config_error() -> None:
    messages = [
        {"role": "user", "content": "go"},
        {"role": "tool", "tool_call_id": "nope", "content": "x"},
    ]
    with pytest.raises(ConfigError, match="'nope'"):
        body_of(request(messages))
    # A tool message that names its function needs no lookup.
    messages[1]["name"] = "lookup"
    part = body_of(request(messages))["contents"][1]["parts"][0]
    assert part["functionResponse"]["name"] == "lookup"


def test_tool_call_arguments_must_be_a_json_object() -> None:
    bad = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}
    with pytest.raises(ConfigError, match="JSON object"):
        body_of(request([{"role": "assistant", "content": None, "tool_calls": [bad]}]))


# -- parameters ---------------------------------------------------------------------------------


def test_generation_config_mapping() -> None:
    body = body_of(
        request("hi", temperature=0.3, top_p=0.9, max_tokens=64, stop=["END", "##"], seed=7)
    )
    assert body["generationConfig"] == {
        "temperature": 0.3,
        "topP": 0.9,
        "maxOutputTokens": 64,
        "stopSequences": ["END", "##"],
        "seed": 7,
    }
    assert "generationConfig" not in body_of(request("hi"))


@pytest.mark.parametrize(
    ("fmt", "config"),
    [
        ({"type": "text"}, None),
        ({"type": "json_object"}, {"responseMimeType": "application/json"}),
        (
            {"type": "json_schema", "json_schema": {"name": "p", "schema": {"type": "object"}}},
            {"responseMimeType": "application/json", "responseJsonSchema": {"type": "object"}},
        ),
    ],
)
def test_response_format(fmt: dict[str, Any], config: dict[str, Any] | None) -> None:
    assert body_of(request("hi", response_format=fmt)).get("generationConfig") == config


def test_unknown_response_format_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="response_format"):
        body_of(request("hi", response_format={"type": "yaml"}))


TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        ("auto", {"mode": "AUTO"}),
        ("required", {"mode": "ANY"}),
        ("none", {"mode": "NONE"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"mode": "ANY", "allowedFunctionNames": ["get_weather"]},
        ),
    ],
)
def test_tools_and_tool_choice(choice: Any, config: dict[str, Any]) -> None:
    body = body_of(request("hi", tools=[TOOL], tool_choice=choice))
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Current weather",
                    "parameters": TOOL["function"]["parameters"],  # type: ignore[index]
                }
            ]
        }
    ]
    assert body["toolConfig"] == {"functionCallingConfig": config}


def test_bad_tool_choice_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="tool_choice"):
        body_of(request("hi", tools=[TOOL], tool_choice="sometimes"))


def test_extra_body_merges_one_level_deep() -> None:
    body = body_of(
        request(
            "hi",
            temperature=0.5,
            extra_body={
                "generationConfig": {"thinkingConfig": {"includeThoughts": True}},
                "safetySettings": [{"category": "HARM_CATEGORY_HATE_SPEECH"}],
            },
        )
    )
    assert body["generationConfig"] == {
        "temperature": 0.5,
        "thinkingConfig": {"includeThoughts": True},
    }
    assert body["safetySettings"] == [{"category": "HARM_CATEGORY_HATE_SPEECH"}]
