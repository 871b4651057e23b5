"""The Anthropic Messages adapter: request building and reply parsing as pure translation (dicts
in, dicts out), then auth, headers and error mapping through the real `AsyncClient` over
`httpx.MockTransport`."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

import llmrelay
from llmrelay import APIStatusError, AsyncClient, ConfigError, Message, ResponseError, Usage
from llmrelay._request import ChatRequest, build_params, normalize_messages
from llmrelay.providers import anthropic

# Marked at collection time so anyio's plugin uses conftest's `anyio_backend` fixture (asyncio).
pytestmark = pytest.mark.anyio

KEY = "sk-ant-test"
MODEL = "claude-sonnet-4-5"


def provider(**options: Any) -> llmrelay.Provider:
    return anthropic.preset(**options)


def wire(
    messages: Any, *, stream: bool = False, extra_body: Any = None, **params: Any
) -> dict[str, Any]:
    """The JSON body `build_chat` makes for these (user-facing) arguments."""
    named = {
        name: params.pop(name, None)
        for name in (
            "temperature",
            "max_tokens",
            "top_p",
            "stop",
            "tools",
            "tool_choice",
            "response_format",
            "seed",
        )
    }
    assert not params, params
    request = ChatRequest(
        model=MODEL,
        messages=normalize_messages(messages),
        params=build_params(**named),
        extra_body=extra_body,
        stream=stream,
    )
    built = anthropic.build_chat(provider(), request)
    assert built.method == "POST"
    assert built.path == "messages"
    body: dict[str, Any] = built.json
    return body


def reply(**fields: Any) -> dict[str, Any]:
    body = {
        "id": "msg_01Abc",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [{"type": "text", "text": "Hi!"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 3},
    }
    body.update(fields)
    return body


def parse(data: Any) -> llmrelay.ChatResponse:
    return anthropic.parse_chat(provider(), data, "req_1")


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
    "url", ["data:image/png,notbase64", "data:;base64,abc", "ftp://example.com/a.png", "cat.png"]
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


def test_a_reply_with_thinking_and_tool_calls_can_be_sent_back() -> None:
    first = parse(
        reply(
            content=[
                {"type": "thinking", "thinking": "Need the weather.", "signature": "SIG"},
                {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Oslo"}},
            ],
            stop_reason="tool_use",
        )
    )
    body = wire(
        [
            {"role": "user", "content": "Weather in Oslo?"},
            first.message,
            {"role": "tool", "tool_call_id": "toolu_1", "content": "-3C"},
        ]
    )
    assert body["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Need the weather.", "signature": "SIG"},
                {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Oslo"}},
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "-3C"}],
        },
    ]


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
    with pytest.raises(ConfigError, match=r"no response_format.*tool"):
        wire("Hi", response_format={"type": "json_object"})
    with pytest.raises(ConfigError, match="no seed"):
        wire("Hi", seed=1)


def test_extra_body_is_merged_last() -> None:
    thinking = {"type": "enabled", "budget_tokens": 2048}
    body = wire("Hi", max_tokens=10, extra_body={"thinking": thinking, "max_tokens": 8000})
    assert body["thinking"] == thinking
    assert body["max_tokens"] == 8000


# -- replies -----------------------------------------------------------------------------------


def test_a_text_reply() -> None:
    got = parse(reply())
    assert got == llmrelay.ChatResponse(
        text="Hi!",
        finish_reason="stop",
        usage=Usage(prompt_tokens=10, completion_tokens=3, total_tokens=13),
        model="claude-sonnet-4-5-20250929",
        id="msg_01Abc",
        request_id="req_1",
        provider="anthropic",
    )
    assert got.raw["type"] == "message"


def test_usage_counts_cache_reads_and_writes_as_prompt_tokens() -> None:
    usage = {
        "input_tokens": 50,
        "cache_creation_input_tokens": 1000,
        "cache_read_input_tokens": 3000,
        "output_tokens": 20,
        "service_tier": "standard",
    }
    assert parse(reply(usage=usage)).usage == Usage(
        prompt_tokens=4050,
        completion_tokens=20,
        total_tokens=4070,
        cached_tokens=3000,
        cache_write_tokens=1000,
    )


def test_tool_use_blocks_become_tool_calls() -> None:
    got = parse(
        reply(
            content=[
                {"type": "text", "text": "Let me look."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "weather",
                    "input": {"city": "Zürich"},
                },
                {"type": "tool_use", "id": "toolu_2", "name": "now", "input": {}},
            ],
            stop_reason="tool_use",
        )
    )
    assert got.text == "Let me look."
    assert got.finish_reason == "tool_calls"
    assert [(c.id, c.name, c.arguments, c.parsed_arguments) for c in got.tool_calls] == [
        ("toolu_1", "weather", '{"city": "Zürich"}', {"city": "Zürich"}),
        ("toolu_2", "now", "{}", {}),
    ]


def test_thinking_becomes_reasoning_with_its_signature() -> None:
    got = parse(
        reply(
            content=[
                {"type": "thinking", "thinking": "Step one.", "signature": "SIG1"},
                {"type": "redacted_thinking", "data": "opaque"},
                {"type": "text", "text": "Done."},
            ]
        )
    )
    assert (got.text, got.reasoning, got.reasoning_signature) == ("Done.", "Step one.", "SIG1")
    assert got.message.to_dict()["reasoning_signature"] == "SIG1"


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("max_tokens", "length"),
        ("stop_sequence", "stop"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "pause_turn"),
        ("model_context_window_exceeded", "model_context_window_exceeded"),
        (None, None),
    ],
)
def test_stop_reasons(stop_reason: str | None, finish_reason: str | None) -> None:
    assert parse(reply(stop_reason=stop_reason)).finish_reason == finish_reason


# -- embeddings and models ---------------------------------------------------------------------


def test_embed_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="anthropic has no embeddings endpoint"):
        anthropic.build_embed(provider(), "voyage-3", ["a"], None)


def test_models_reply() -> None:
    data = {
        "data": [
            {
                "type": "model",
                "id": "claude-sonnet-4-5-20250929",
                "display_name": "Claude Sonnet 4.5",
                "created_at": "2025-09-29T00:00:00Z",
            },
            {"type": "model", "id": "claude-x", "display_name": "X", "created_at": "garbage"},
        ],
        "has_more": False,
    }
    models = anthropic.parse_models(provider(), data)
    assert [(m.id, m.created) for m in models] == [
        ("claude-sonnet-4-5-20250929", 1_759_104_000),
        ("claude-x", None),
    ]
    assert models[0].raw["display_name"] == "Claude Sonnet 4.5"
    with pytest.raises(ResponseError):
        anthropic.parse_models(provider(), {"data": [{"display_name": "no id"}]})


# -- through the client: auth, headers, presets ------------------------------------------------


class Fake:
    """Records requests and answers with `respond` (a reply body by default)."""

    def __init__(self, respond: Callable[[httpx.Request], httpx.Response] | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self._respond = respond or (
            lambda request: httpx.Response(200, json=reply(), headers={"request-id": "req_abc"})
        )

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self._respond(request)

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self))

    def client(self, **kwargs: Any) -> AsyncClient:
        kwargs.setdefault("provider", "anthropic")
        kwargs.setdefault("model", MODEL)
        kwargs.setdefault("max_retries", 0)
        return AsyncClient(http_client=self.http(), **kwargs)


async def test_the_wire_request_headers_and_url() -> None:
    fake = Fake()
    async with fake.client(api_key=KEY) as client:
        got = await client.chat(
            [{"role": "system", "content": "S"}, {"role": "user", "content": "Hi"}]
        )
    assert got.text == "Hi!"
    assert got.request_id == "req_abc"
    sent = fake.requests[0]
    assert str(sent.url) == "https://api.anthropic.com/v1/messages"
    assert sent.headers["x-api-key"] == KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in sent.headers
    body = json.loads(sent.content)
    assert body["system"] == "S"
    assert all(m["role"] in ("user", "assistant") for m in body["messages"])


async def test_the_key_is_read_from_anthropic_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-env")
    monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", "token-ignored")
    fake = Fake()
    async with fake.client() as client:
        await client.chat("Hi")
    assert fake.requests[0].headers["x-api-key"] == "sk-ant-env"
    assert "authorization" not in fake.requests[0].headers


async def test_an_auth_token_alone_is_sent_as_bearer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", "oauth-token")
    fake = Fake()
    async with fake.client() as client:
        await client.chat("Hi")
    assert fake.requests[0].headers["authorization"] == "Bearer oauth-token"
    assert "x-api-key" not in fake.requests[0].headers


async def test_bearer_auth_chosen_in_the_preset() -> None:
    fake = Fake()
    async with fake.client(provider=anthropic.preset(auth="bearer"), api_key="tok") as client:
        await client.chat("Hi")
    assert fake.requests[0].headers["authorization"] == "Bearer tok"
    assert "x-api-key" not in fake.requests[0].headers
    with pytest.raises(ConfigError, match="auth must be"):
        anthropic.preset(auth="basic")


def test_a_missing_key_names_the_env_var() -> None:
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY"):
        AsyncClient(provider="anthropic")


async def test_the_version_can_be_changed_and_betas_added() -> None:
    fake = Fake()
    preset = anthropic.preset(version="2026-10-21", beta=["a-2025-01-01", "b-2025-02-02"])
    async with fake.client(provider=preset, api_key=KEY) as client:
        await client.chat("Hi")
    async with fake.client(api_key=KEY, headers={"Anthropic-Version": "2099-01-01"}) as client:
        await client.chat("Hi")
        await client.chat("Hi", extra_headers={"anthropic-beta": "c-1"})
    first, second, third = fake.requests
    assert first.headers["anthropic-version"] == "2026-10-21"
    assert first.headers["anthropic-beta"] == "a-2025-01-01,b-2025-02-02"
    assert second.headers.get_list("anthropic-version") == ["2099-01-01"]
    assert "anthropic-beta" not in second.headers
    assert third.headers["anthropic-beta"] == "c-1"


async def test_base_url_env_and_preset_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "https://proxy.example/v1")
    fake = Fake()
    async with fake.client(api_key=KEY) as client:
        await client.chat("Hi")
    preset = anthropic.preset(base_url="https://gateway.example/anthropic/v1")
    async with fake.client(provider=preset, api_key=KEY) as client:
        await client.chat("Hi")
    assert [str(r.url) for r in fake.requests] == [
        "https://proxy.example/v1/messages",
        "https://gateway.example/anthropic/v1/messages",
    ]


async def test_models_through_the_client() -> None:
    data = {
        "data": [
            {
                "type": "model",
                "id": "claude-opus-4-1",
                "display_name": "Opus",
                "created_at": "2025-08-05T00:00:00Z",
            }
        ],
        "has_more": False,
    }
    fake = Fake(lambda request: httpx.Response(200, json=data))
    async with fake.client(api_key=KEY) as client:
        models = await client.models()
        with pytest.raises(ConfigError, match="no embeddings endpoint"):
            await client.embed("hello")
    assert [m.id for m in models] == ["claude-opus-4-1"]
    assert len(fake.requests) == 1  # embed sent nothing
    assert fake.requests[0].method == "GET"
    assert fake.requests[0].url.path == "/v1/models"
    assert fake.requests[0].url.params["limit"] == "1000"


# -- through the client: errors ----------------------------------------------------------------

ERRORS = [
    (400, "invalid_request_error", llmrelay.BadRequestError),
    (401, "authentication_error", llmrelay.AuthenticationError),
    (403, "permission_error", llmrelay.PermissionDeniedError),
    (404, "not_found_error", llmrelay.NotFoundError),
    (413, "request_too_large", APIStatusError),
    (429, "rate_limit_error", llmrelay.RateLimitError),
    (500, "api_error", llmrelay.InternalServerError),
    (529, "overloaded_error", llmrelay.OverloadedError),
]


@pytest.mark.parametrize(("status", "kind", "cls"), ERRORS)
async def test_error_statuses_are_typed(status: int, kind: str, cls: type[APIStatusError]) -> None:
    body = {
        "type": "error",
        "error": {"type": kind, "message": f"Something specific ({kind})"},
        "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy",
    }
    fake = Fake(
        lambda request: httpx.Response(
            status, json=body, headers={"request-id": "req_011CSHoEeqs5C35K2UUqR7Fy"}
        )
    )
    async with fake.client(api_key=KEY) as client:
        with pytest.raises(APIStatusError) as info:
            await client.chat("Hi")
    error = info.value
    assert type(error) is cls
    assert (error.status_code, error.code, error.provider) == (status, kind, "anthropic")
    assert error.request_id == "req_011CSHoEeqs5C35K2UUqR7Fy"
    assert error.body == body
    for part in ("anthropic", str(status), f"Something specific ({kind})"):
        assert part in str(error)
    assert KEY not in str(error)


async def test_a_rate_limit_error_carries_retry_after_and_spend_limit_details() -> None:
    body = {
        "type": "error",
        "error": {
            "type": "rate_limit_error",
            "message": "Spend limit reached",
            "details": {"error_code": "enforced_spend_limit_reached"},
        },
    }
    fake = Fake(lambda request: httpx.Response(429, json=body, headers={"retry-after": "7"}))
    async with fake.client(api_key=KEY) as client:
        with pytest.raises(llmrelay.RateLimitError) as info:
            await client.chat("Hi")
    assert info.value.retry_after == 7.0
    assert "enforced_spend_limit_reached" in str(info.value)


async def test_an_overloaded_529_is_retried() -> None:
    answers = iter(
        [
            httpx.Response(
                529,
                json={
                    "type": "error",
                    "error": {"type": "overloaded_error", "message": "Overloaded"},
                },
            ),
            httpx.Response(200, json=reply(content=[{"type": "text", "text": "Finally"}])),
        ]
    )
    fake = Fake(lambda request: next(answers))
    policy = llmrelay.RetryPolicy(max_retries=2, backoff_base=0.001, backoff_cap=0.01)
    async with fake.client(api_key=KEY, max_retries=None, retry=policy) as client:
        got = await client.chat("Hi")
    assert got.text == "Finally"
    assert client.usage.retries == 1


async def test_an_error_object_in_a_200_body_is_a_typed_error() -> None:
    body = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    fake = Fake(lambda request: httpx.Response(200, json=body, headers={"request-id": "req_9"}))
    async with fake.client(api_key=KEY) as client:
        with pytest.raises(llmrelay.OverloadedError) as info:
            await client.chat("Hi")
    assert info.value.status_code == 529
    assert info.value.request_id == "req_9"


@pytest.mark.parametrize(
    "body",
    [
        [1, 2],
        {"id": "msg_1", "type": "message"},
        reply(content="just a string"),
        reply(content=["not a block"]),
        reply(content=[{"type": "text"}]),
        reply(content=[{"type": "tool_use", "name": "f", "input": {}}]),
    ],
)
async def test_malformed_200_bodies_are_response_errors(body: Any) -> None:
    fake = Fake(lambda request: httpx.Response(200, json=body))
    async with fake.client(api_key=KEY) as client:
        with pytest.raises(ResponseError, match="anthropic returned an unexpected response"):
            await client.chat("Hi")


async def test_a_spend_limit_429_is_final_and_keeps_the_body_request_id() -> None:
    """Waiting does not lift a spend limit: one attempt, no retry, and the request id comes
    from the body when the header is missing."""
    attempts = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal attempts
        attempts += 1
        return httpx.Response(
            429,
            json={
                "type": "error",
                "error": {
                    "type": "rate_limit_error",
                    "message": "spend limit reached",
                    "details": {"error_code": "enforced_spend_limit_reached"},
                },
                "request_id": "req_body_1",
            },
        )

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    async with AsyncClient(
        "anthropic", api_key="sk-ant-test", model="claude-x", http_client=http, max_retries=3
    ) as client:
        with pytest.raises(llmrelay.RateLimitError) as caught:
            await client.chat("hi")
    assert attempts == 1
    assert caught.value.request_id == "req_body_1"
    assert "enforced_spend_limit_reached" in str(caught.value)
