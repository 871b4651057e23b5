"""The Anthropic Messages adapter, reply side: reply parsing as pure translation, then auth,
headers, models and error mapping through the real `AsyncClient` over `httpx.MockTransport`.
Request translation is in `test_anthropic_request.py`, streams in `test_anthropic_stream.py`."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

import llmrelay
from llmrelay import APIStatusError, AsyncClient, ConfigError, ResponseError, Usage
from llmrelay._request import ChatRequest, normalize_messages
from llmrelay.providers import anthropic

from ._helpers import client_over

# Marked at collection time so anyio's plugin uses conftest's `anyio_backend` fixture (asyncio).
pytestmark = pytest.mark.anyio

KEY = "sk-ant-test"
MODEL = "claude-sonnet-4-5"


def provider(**options: Any) -> llmrelay.Provider:
    return anthropic.preset(**options)


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
    assert got.reasoning_blocks == (
        llmrelay.ReasoningBlock(text="Step one.", signature="SIG1"),
        llmrelay.ReasoningBlock(redacted="opaque"),
    )


@pytest.mark.parametrize(
    ("content", "blocks"),
    [
        # A signed block whose text was left out is still a block (its signature goes back).
        (
            [{"type": "thinking", "thinking": "", "signature": "S"}],
            (llmrelay.ReasoningBlock(text="", signature="S"),),
        ),
        # Only redacted thinking: no reasoning text, no signature, one block.
        (
            [
                {"type": "redacted_thinking", "data": "R1"},
                {"type": "redacted_thinking", "data": "R2"},
            ],
            (llmrelay.ReasoningBlock(redacted="R1"), llmrelay.ReasoningBlock(redacted="R2")),
        ),
        # Unsigned text (not something Anthropic sends) stays one unsigned block before the
        # redacted one, in order.
        (
            [{"type": "thinking", "thinking": "a"}, {"type": "redacted_thinking", "data": "R"}],
            (llmrelay.ReasoningBlock(text="a"), llmrelay.ReasoningBlock(redacted="R")),
        ),
        ([{"type": "text", "text": "no thinking"}], ()),
    ],
    ids=["signature-only", "redacted-only", "unsigned-then-redacted", "none"],
)
def test_reasoning_blocks_in_order(content: list[dict[str, Any]], blocks: Any) -> None:
    assert parse(reply(content=content)).reasoning_blocks == blocks


@pytest.mark.parametrize("data", [None, "", 7])
def test_a_redacted_thinking_block_without_data_is_a_response_error(data: Any) -> None:
    with pytest.raises(ResponseError, match="redacted_thinking block has no 'data'"):
        parse(reply(content=[{"type": "redacted_thinking", "data": data}]))


async def test_an_anthropic_reply_replayed_to_an_openai_service_sends_no_internal_keys() -> None:
    got = parse(
        reply(
            content=[
                {"type": "thinking", "thinking": "Hmm.", "signature": "SIG"},
                {"type": "redacted_thinking", "data": "opaque"},
                {"type": "text", "text": "Hi!"},
            ]
        )
    )
    sent: list[dict[str, Any]] = []

    def openai_server(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(
            200,
            json={
                "id": "c1",
                "model": "gpt-4o-mini",
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": "ok"},
                    }
                ],
            },
        )

    async with client_over(
        openai_server, provider="openai", api_key="sk-x", model="gpt-4o-mini"
    ) as client:
        await client.chat([{"role": "user", "content": "Hi"}, got.message])
    assert sent[0]["messages"][1] == {"role": "assistant", "content": "Hi!"}


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
    messages = [
        {"role": "user", "content": "Weather in Oslo?"},
        first.message,
        {"role": "tool", "tool_call_id": "toolu_1", "content": "-3C"},
    ]
    request = ChatRequest(model=MODEL, messages=normalize_messages(messages), params={})
    body = anthropic.build_chat(provider(), request).json
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

    def client(self, **kwargs: Any) -> AsyncClient:
        kwargs.setdefault("provider", "anthropic")
        kwargs.setdefault("model", MODEL)
        kwargs.setdefault("max_retries", 0)
        return client_over(self, **kwargs)


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


@pytest.mark.parametrize(
    ("env", "header", "value", "absent"),
    [
        # The API key wins when both are set.
        (
            {"ANTHROPIC_API_KEY": "sk-ant-env", "ANTHROPIC_AUTH_TOKEN": "token-ignored"},
            "x-api-key",
            "sk-ant-env",
            "authorization",
        ),
        # An auth token alone is sent as a Bearer token.
        (
            {"ANTHROPIC_AUTH_TOKEN": "oauth-token"},
            "authorization",
            "Bearer oauth-token",
            "x-api-key",
        ),
    ],
    ids=["api-key", "auth-token"],
)
async def test_the_login_header_follows_the_env(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], header: str, value: str, absent: str
) -> None:
    for name, env_value in env.items():
        monkeypatch.setenv(name, env_value)
    fake = Fake()
    async with fake.client() as client:
        await client.chat("Hi")
    assert fake.requests[0].headers[header] == value
    assert absent not in fake.requests[0].headers


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
    """Waiting does not lift a spend limit: one attempt, no retry, the code in the message, the
    server's wait in `retry_after`, and the request id from the body when the header is
    missing."""
    body = {
        "type": "error",
        "error": {
            "type": "rate_limit_error",
            "message": "Spend limit reached",
            "details": {"error_code": "enforced_spend_limit_reached"},
        },
        "request_id": "req_body_1",
    }
    fake = Fake(lambda request: httpx.Response(429, json=body, headers={"retry-after": "7"}))
    async with fake.client(api_key=KEY, max_retries=3) as client:
        with pytest.raises(llmrelay.RateLimitError) as caught:
            await client.chat("hi")
        assert client.usage.retries == 0
    assert caught.value.retry_after == 7.0
    assert caught.value.request_id == "req_body_1"
    assert "Spend limit reached (enforced_spend_limit_reached)" in str(caught.value)
