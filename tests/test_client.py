"""`AsyncClient` against a fake OpenAI wire (httpx.MockTransport): lifecycle, key handling,
argument checking, typed replies, error mapping and secrets."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest

import llmrelay
from llmrelay import (
    APIStatusError,
    AsyncClient,
    ClientStateError,
    ConfigError,
    Message,
    ModelInfo,
    ResponseError,
    RetryPolicy,
    ToolCall,
    Usage,
)
from llmrelay.providers import openai as openai_adapter

# Marked at collection time so anyio's plugin uses conftest's `anyio_backend` fixture (asyncio).
pytestmark = pytest.mark.anyio

KEY = "sk-test-SECRET-0123456789abcdef"
BASE = "https://api.openai.com/v1"

Handler = Callable[[httpx.Request], httpx.Response]


def completion(
    text: str | None = "Hello there",
    *,
    finish_reason: str = "stop",
    tool_calls: list[dict[str, Any]] | None = None,
    usage: dict[str, Any] | None = None,
    **message_extra: Any,
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
    if tool_calls is not None:
        message["tool_calls"] = tool_calls
    message.update(message_extra)
    return {
        "id": "chatcmpl-abc123",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_1",
        "choices": [{"index": 0, "finish_reason": finish_reason, "message": message}],
        "usage": usage
        or {
            "prompt_tokens": 12,
            "completion_tokens": 3,
            "total_tokens": 15,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    }


class FakeOpenAI:
    """A MockTransport handler that records every request and answers with `respond`."""

    def __init__(self, respond: Handler | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self._respond = respond or (lambda request: httpx.Response(200, json=completion()))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self._respond(request)

    @property
    def bodies(self) -> list[Any]:
        return [json.loads(r.content) if r.content else None for r in self.requests]

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self))


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    return KEY


def make_client(fake: FakeOpenAI, **kwargs: Any) -> AsyncClient:
    kwargs.setdefault("model", "gpt-4o-mini")
    kwargs.setdefault("max_retries", 0)
    return AsyncClient(provider="openai", http_client=fake.http(), **kwargs)


class RecordingTransport(httpx.MockTransport):
    closed = 0

    async def aclose(self) -> None:
        self.closed += 1


def fake_provider(transport: httpx.AsyncBaseTransport) -> llmrelay.Provider:
    return llmrelay.Provider(
        name="fakeopenai",
        adapter=openai_adapter,
        base_url=BASE,
        key_required=False,
        default_model="m",
        transport_factory=lambda: transport,
    )


# -- lifecycle -------------------------------------------------------------------------------


async def test_async_with_returns_the_client_and_closes_its_own_connections() -> None:
    fake = FakeOpenAI()
    transport = RecordingTransport(fake)
    async with AsyncClient(provider=fake_provider(transport)) as client:
        assert isinstance(client, AsyncClient)
        reply = await client.chat("hi")
        assert reply.text == "Hello there"
        assert transport.closed == 0
    assert transport.closed == 1
    await client.aclose()  # closing twice is harmless
    assert transport.closed == 1


async def test_a_closer_that_fails_does_not_keep_the_connections_open() -> None:
    # e.g. a shared rate limit whose Redis went away: its close fails, the pool still closes.
    fake = FakeOpenAI()
    transport = RecordingTransport(fake)
    client = AsyncClient(provider=fake_provider(transport))

    async def redis_gone() -> None:
        raise ConnectionError("redis went away")

    client._closers.insert(0, redis_gone)
    with pytest.raises(ConnectionError, match="redis went away"):
        await client.aclose()
    assert transport.closed == 1


async def test_a_passed_in_http_client_is_used_and_left_open(key: str) -> None:
    fake = FakeOpenAI()
    http = fake.http()
    async with AsyncClient(provider="openai", model="gpt-4o-mini", http_client=http) as client:
        await client.chat("hi")
    assert len(fake.requests) == 1
    assert not http.is_closed
    response = await http.get(f"{BASE}/models")  # still usable by its owner
    assert response.status_code == 200
    await http.aclose()


async def test_use_after_close_raises_client_state_error_without_hanging(key: str) -> None:
    fake = FakeOpenAI()
    client = make_client(fake)
    await client.chat("hi")
    await client.aclose()
    with anyio.fail_after(2):
        with pytest.raises(ClientStateError, match="closed") as info:
            await client.chat("hi")
        with pytest.raises(ClientStateError):
            client.stream("hi")
        with pytest.raises(ClientStateError):
            await client.embed("hi", model="text-embedding-3-small")
        with pytest.raises(ClientStateError):
            await client.models()
        with pytest.raises(ClientStateError):
            await client.batch(["a", "b"])
        with pytest.raises(ClientStateError):
            async with client:
                pass
    assert isinstance(info.value, llmrelay.LLMError)
    assert isinstance(info.value, RuntimeError)
    assert len(fake.requests) == 1


def test_use_from_a_second_event_loop_raises_client_state_error(key: str) -> None:
    fake = FakeOpenAI()
    client = make_client(fake)

    async def use() -> str:
        return (await client.chat("hi")).text

    assert anyio.run(use) == "Hello there"
    with pytest.raises(ClientStateError, match="event loop"):
        anyio.run(use)
    assert len(fake.requests) == 1


def test_the_same_loop_may_use_the_client_many_times_on_trio(key: str) -> None:
    fake = FakeOpenAI()
    client = make_client(fake)

    async def use() -> list[str]:
        return [(await client.chat("hi")).text for _ in range(3)]

    assert anyio.run(use, backend="trio") == ["Hello there"] * 3
    with pytest.raises(ClientStateError, match="event loop"):
        anyio.run(use, backend="trio")


# -- the API key -----------------------------------------------------------------------------


async def test_key_is_read_from_the_env_var_when_the_client_is_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # llmrelay is already imported: the key set now must still be found.
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    fake = FakeOpenAI()
    client = make_client(fake)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-changed-later")  # read once, at build time
    async with client:
        await client.chat("hi")
    assert fake.requests[0].headers["authorization"] == f"Bearer {KEY}"
    assert str(fake.requests[0].url) == f"{BASE}/chat/completions"


async def test_explicit_api_key_wins_over_the_env_var(key: str) -> None:
    fake = FakeOpenAI()
    async with make_client(fake, api_key="sk-explicit") as client:
        await client.chat("hi")
    assert fake.requests[0].headers["authorization"] == "Bearer sk-explicit"


def test_missing_key_is_a_config_error_naming_the_env_var() -> None:
    fake = FakeOpenAI()
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        make_client(fake)
    assert fake.requests == []


def test_unknown_provider_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no-such-provider"):
        AsyncClient(provider="no-such-provider")


# -- what reaches the wire -------------------------------------------------------------------


async def test_a_string_prompt_becomes_one_user_message(key: str) -> None:
    fake = FakeOpenAI()
    async with make_client(fake) as client:
        await client.chat("Hello")
    request = fake.requests[0]
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/json"
    assert fake.bodies[0] == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Hello"}],
    }


async def test_dicts_and_messages_are_sent_as_openai_messages(key: str) -> None:
    fake = FakeOpenAI()
    dicts = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "What is this?"}]},
    ]
    typed = [Message(role="system", content="Be brief."), Message(role="user", content="Hi")]
    async with make_client(fake) as client:
        await client.chat(dicts, model="gpt-4o")
        await client.chat(typed)
    assert fake.bodies[0]["model"] == "gpt-4o"
    assert fake.bodies[0]["messages"] == dicts
    assert fake.bodies[1]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]


async def test_named_parameters_and_extras_reach_the_body(key: str) -> None:
    fake = FakeOpenAI()
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    response_format = {"type": "json_object"}
    async with make_client(fake) as client:
        await client.chat(
            "Hello",
            temperature=0.2,
            max_tokens=100,
            top_p=0.9,
            stop="END",
            tools=tools,
            tool_choice="auto",
            response_format=response_format,
            seed=7,
            extra_body={"reasoning_effort": "low", "parallel_tool_calls": False},
            extra_headers={"OpenAI-Project": "proj_1"},
        )
    body = fake.bodies[0]
    assert body["temperature"] == 0.2
    assert body["max_completion_tokens"] == 100
    assert "max_tokens" not in body
    assert body["top_p"] == 0.9
    assert body["stop"] == "END"  # sent as given (a list stays a list)
    assert body["tools"] == tools
    assert body["tool_choice"] == "auto"
    assert body["response_format"] == response_format
    assert body["seed"] == 7
    assert body["reasoning_effort"] == "low"
    assert body["parallel_tool_calls"] is False
    assert "stream" not in body
    assert fake.requests[0].headers["openai-project"] == "proj_1"


async def test_stop_list_and_zero_values_are_sent(key: str) -> None:
    fake = FakeOpenAI()
    async with make_client(fake) as client:
        await client.chat("Hello", stop=["a", "b"], temperature=0, top_p=0.0, seed=0)
    body = fake.bodies[0]
    assert body["stop"] == ["a", "b"]
    assert body["temperature"] == 0
    assert body["top_p"] == 0
    assert body["seed"] == 0


async def test_client_headers_and_per_call_headers(key: str) -> None:
    fake = FakeOpenAI()
    async with make_client(fake, headers={"x-team": "search"}) as client:
        await client.chat("Hello", extra_headers={"x-trace": "t1"})
    headers = fake.requests[0].headers
    assert headers["x-team"] == "search"
    assert headers["x-trace"] == "t1"
    assert headers["authorization"] == f"Bearer {KEY}"


BAD_CALLS: list[tuple[str, Any, dict[str, Any]]] = [
    ("empty prompt", "", {}),
    ("empty list", [], {}),
    ("bad role", [{"role": "robot", "content": "hi"}], {}),
    ("no role", [{"content": "hi"}], {}),
    ("non-str content", [{"role": "user", "content": 42}], {}),
    ("user without content", [{"role": "user"}], {}),
    ("not a message", ["hi"], {}),
    ("a single dict", {"role": "user", "content": "hi"}, {}),
    ("tool message without tool_call_id", [{"role": "tool", "content": "42"}], {}),
    ("temperature 3", "hi", {"temperature": 3}),
    ("temperature negative", "hi", {"temperature": -0.1}),
    ("temperature str", "hi", {"temperature": "0.5"}),
    ("max_tokens 0", "hi", {"max_tokens": 0}),
    ("max_tokens True", "hi", {"max_tokens": True}),
    ("max_tokens float", "hi", {"max_tokens": 10.0}),
    ("top_p 1.5", "hi", {"top_p": 1.5}),
    ("stop not str", "hi", {"stop": ["ok", 3]}),
    ("seed not int", "hi", {"seed": "7"}),
    ("tool without function name", "hi", {"tools": [{"type": "function", "function": {}}]}),
    ("tool without function", "hi", {"tools": [{"type": "function"}]}),
]


@pytest.mark.parametrize(
    ("messages", "kwargs"), [c[1:] for c in BAD_CALLS], ids=[c[0] for c in BAD_CALLS]
)
async def test_bad_input_is_a_config_error_before_anything_is_sent(
    key: str, messages: Any, kwargs: dict[str, Any]
) -> None:
    fake = FakeOpenAI()
    async with make_client(fake) as client:
        with pytest.raises(ConfigError):
            await client.chat(messages, **kwargs)
        with pytest.raises(ConfigError):
            client.stream(messages, **kwargs)
        with pytest.raises(ConfigError):
            await client.batch([messages], **kwargs)
    assert fake.requests == []


async def test_no_model_anywhere_is_a_config_error_before_sending(key: str) -> None:
    fake = FakeOpenAI()
    async with make_client(fake, model=None) as client:
        with pytest.raises(ConfigError, match="model"):
            await client.chat("hi")
        with pytest.raises(ConfigError, match="model"):
            await client.embed(["hi"])
    assert fake.requests == []


# -- typed replies ---------------------------------------------------------------------------


async def test_reply_fields(key: str) -> None:
    usage = {
        "prompt_tokens": 2006,
        "completion_tokens": 300,
        "total_tokens": 2306,
        "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 256, "audio_tokens": 0},
    }
    data = completion("The answer is 4.", finish_reason="length", usage=usage)
    fake = FakeOpenAI(
        lambda request: httpx.Response(200, json=data, headers={"x-request-id": "req_42"})
    )
    async with make_client(fake) as client:
        reply = await client.chat("2+2?")
    assert reply.text == "The answer is 4."
    assert reply.finish_reason == "length"
    assert reply.usage == Usage(
        prompt_tokens=2006,
        completion_tokens=300,
        total_tokens=2306,
        cached_tokens=1920,
        reasoning_tokens=256,
    )
    assert reply.id == "chatcmpl-abc123"
    assert reply.model == "gpt-4o-mini-2024-07-18"
    assert reply.request_id == "req_42"
    assert reply.provider == "openai"
    assert reply.raw == data
    assert reply.tool_calls == ()
    assert reply.reasoning is None
    assert reply.refusal is None
    assert client.usage.requests == 1
    assert client.usage.prompt_tokens == 2006


async def test_tool_calls_are_parsed_and_invalid_json_is_kept(key: str) -> None:
    calls = [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        },
        {
            "id": "call_2",
            "type": "function",
            "function": {"name": "get_time", "arguments": '{"tz": "Europe/Par'},
        },
    ]
    data = completion(None, finish_reason="tool_calls", tool_calls=calls)
    fake = FakeOpenAI(lambda request: httpx.Response(200, json=data))
    async with make_client(fake) as client:
        reply = await client.chat("Weather and time in Paris?")
    assert reply.text == ""
    assert reply.finish_reason == "tool_calls"
    first, second = reply.tool_calls
    assert first == ToolCall(
        id="call_1",
        name="get_weather",
        arguments='{"city": "Paris"}',
        parsed_arguments={"city": "Paris"},
    )
    assert second.id == "call_2"
    assert second.name == "get_time"
    assert second.arguments == '{"tz": "Europe/Par'
    assert second.parsed_arguments is None


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
async def test_reasoning_text_becomes_reasoning(key: str, field: str) -> None:
    data = completion("42", **{field: "Let me think step by step."})
    fake = FakeOpenAI(lambda request: httpx.Response(200, json=data))
    async with make_client(fake) as client:
        reply = await client.chat("question")
    assert reply.text == "42"
    assert reply.reasoning == "Let me think step by step."


async def test_refusal(key: str) -> None:
    data = completion(None, refusal="I can't help with that.")
    fake = FakeOpenAI(lambda request: httpx.Response(200, json=data))
    async with make_client(fake) as client:
        reply = await client.chat("something bad")
    assert reply.refusal == "I can't help with that."
    assert reply.text == ""


async def test_reply_message_can_be_appended_and_sent_back(key: str) -> None:
    calls = [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
        }
    ]
    replies = iter(
        [
            completion(
                None,
                finish_reason="tool_calls",
                tool_calls=calls,
                reasoning_content="need the tool",
            ),
            completion("It is sunny in Paris."),
        ]
    )
    fake = FakeOpenAI(lambda request: httpx.Response(200, json=next(replies)))
    async with make_client(fake) as client:
        conversation: list[Message | dict[str, Any]] = [Message(role="user", content="Weather?")]
        first = await client.chat(conversation, tools=[{"function": {"name": "get_weather"}}])
        conversation.append(first.message)
        conversation.append({"role": "tool", "tool_call_id": "call_1", "content": "sunny"})
        second = await client.chat(conversation)
    assert first.message.role == "assistant"
    assert first.message.tool_calls == first.tool_calls
    assert second.text == "It is sunny in Paris."
    sent = fake.bodies[1]["messages"]
    assert sent == [
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },  # OpenAI itself takes no reasoning back: it is not replayed
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]


@pytest.mark.parametrize(
    ("error", "cls", "status"),
    [
        (
            {"message": "Rate limit reached", "type": "rate_limit_exceeded"},
            llmrelay.RateLimitError,
            429,
        ),
        ({"message": "The server had an error", "type": "server_error"}, None, 500),
        ({"message": "Bad model", "code": 400}, llmrelay.BadRequestError, 400),
        ({"message": "overloaded", "type": "overloaded_error"}, llmrelay.OverloadedError, 529),
    ],
)
async def test_a_200_with_an_error_payload_is_a_typed_status_error(
    key: str, error: dict[str, Any], cls: type[APIStatusError] | None, status: int
) -> None:
    fake = FakeOpenAI(
        lambda request: httpx.Response(
            200, json={"error": error}, headers={"x-request-id": "req_e"}
        )
    )
    async with make_client(fake) as client:
        with pytest.raises(APIStatusError) as info:
            await client.chat("hi")
    expected = cls or llmrelay.InternalServerError
    assert type(info.value) is expected
    assert info.value.status_code == status
    assert info.value.provider == "openai"
    assert info.value.request_id == "req_e"
    assert error["message"] in str(info.value)
    assert "openai" in str(info.value)
    assert "req_e" in str(info.value)


@pytest.mark.parametrize(
    "body",
    [b"<html>oops</html>", b'{"choices": []}', b"[1, 2]", b'{"choices": [{"index": 0}]}'],
)
async def test_an_unreadable_200_is_a_response_error(key: str, body: bytes) -> None:
    fake = FakeOpenAI(lambda request: httpx.Response(200, content=body))
    async with make_client(fake) as client:
        with pytest.raises(ResponseError, match="openai"):
            await client.chat("hi")


# -- embeddings and models -------------------------------------------------------------------


async def test_embed_returns_vectors_in_input_order(key: str) -> None:
    data = {
        "object": "list",
        "data": [
            {"object": "embedding", "index": 2, "embedding": [2.0, 2.5]},
            {"object": "embedding", "index": 0, "embedding": [0.0, 0.5]},
            {"object": "embedding", "index": 1, "embedding": [1.0, 1.5]},
        ],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 6, "total_tokens": 6},
    }
    fake = FakeOpenAI(
        lambda request: httpx.Response(200, json=data, headers={"x-request-id": "req_emb"})
    )
    async with make_client(fake) as client:
        result = await client.embed(["a", "b", "c"], model="text-embedding-3-small")
    assert result.vectors == [[0.0, 0.5], [1.0, 1.5], [2.0, 2.5]]
    assert result.model == "text-embedding-3-small"
    assert result.usage is not None and result.usage.prompt_tokens == 6
    assert result.request_id == "req_emb"
    assert str(fake.requests[0].url) == f"{BASE}/embeddings"
    assert fake.bodies[0] == {"model": "text-embedding-3-small", "input": ["a", "b", "c"]}


async def test_embed_one_string_and_extra_body(key: str) -> None:
    data = {"object": "list", "data": [{"index": 0, "embedding": [0.1]}], "model": "e"}
    fake = FakeOpenAI(lambda request: httpx.Response(200, json=data))
    async with make_client(fake) as client:
        result = await client.embed("one", model="e", extra_body={"dimensions": 1})
    assert result.vectors == [[0.1]]
    assert fake.bodies[0] == {"model": "e", "input": ["one"], "dimensions": 1}


@pytest.mark.parametrize("inputs", [[], [1, 2], ["ok", None]])
async def test_embed_bad_input_is_a_config_error(key: str, inputs: Any) -> None:
    fake = FakeOpenAI()
    async with make_client(fake) as client:
        with pytest.raises(ConfigError):
            await client.embed(inputs, model="e")
    assert fake.requests == []


async def test_models_returns_model_info(key: str) -> None:
    data = {
        "object": "list",
        "data": [
            {"id": "gpt-4o", "object": "model", "created": 1715367049, "owned_by": "system"},
            {"id": "ft:gpt-4o-mini:acme", "object": "model", "created": 1, "owned_by": "acme"},
        ],
    }
    fake = FakeOpenAI(lambda request: httpx.Response(200, json=data))
    async with make_client(fake) as client:
        models = await client.models()
    assert [m.id for m in models] == ["gpt-4o", "ft:gpt-4o-mini:acme"]
    assert models[0] == ModelInfo(id="gpt-4o", owned_by="system", created=1715367049)
    assert models[0].raw == data["data"][0]
    assert fake.requests[0].method == "GET"
    assert str(fake.requests[0].url) == f"{BASE}/models"
    assert fake.requests[0].headers["authorization"] == f"Bearer {KEY}"


# -- status errors ---------------------------------------------------------------------------

STATUS_CLASSES = [
    (400, llmrelay.BadRequestError),
    (401, llmrelay.AuthenticationError),
    (403, llmrelay.PermissionDeniedError),
    (404, llmrelay.NotFoundError),
    (409, llmrelay.ConflictError),
    (422, llmrelay.UnprocessableEntityError),
    (429, llmrelay.RateLimitError),
    (500, llmrelay.InternalServerError),
    (503, llmrelay.InternalServerError),
    (529, llmrelay.OverloadedError),
]


@pytest.mark.parametrize(("status", "cls"), STATUS_CLASSES)
async def test_status_errors_are_typed_and_say_what_happened(
    key: str, status: int, cls: type[APIStatusError]
) -> None:
    body = {
        "error": {
            "message": f"Something specific went wrong ({status})",
            "type": "some_error_type",
            "param": None,
            "code": None,
        }
    }
    fake = FakeOpenAI(
        lambda request: httpx.Response(status, json=body, headers={"x-request-id": "req_xyz"})
    )
    async with make_client(fake) as client:
        with pytest.raises(APIStatusError) as info:
            await client.chat("hi")
    error = info.value
    assert type(error) is cls
    assert error.status_code == status
    assert error.provider == "openai"
    assert error.request_id == "req_xyz"
    assert error.body == body
    message = str(error)
    for part in ("openai", str(status), f"Something specific went wrong ({status})", "req_xyz"):
        assert part in message
    assert len(fake.requests) == 1  # max_retries=0
    assert client.usage.failures == 1


async def test_rate_limit_error_carries_retry_after(key: str) -> None:
    fake = FakeOpenAI(
        lambda request: httpx.Response(
            429,
            json={"error": {"message": "slow down", "type": "requests"}},
            headers={"retry-after": "7"},
        )
    )
    async with make_client(fake) as client:
        with pytest.raises(llmrelay.RateLimitError) as info:
            await client.chat("hi")
    assert info.value.retry_after == 7.0


async def test_a_non_json_error_body_still_gives_a_typed_error(key: str) -> None:
    fake = FakeOpenAI(lambda request: httpx.Response(502, text="<html>Bad gateway</html>"))
    async with make_client(fake) as client:
        with pytest.raises(llmrelay.InternalServerError, match="502") as info:
            await client.chat("hi")
    assert "Bad gateway" in str(info.value)


async def test_retries_then_succeeds(key: str) -> None:
    statuses = iter([503, 500, 200])

    def respond(request: httpx.Request) -> httpx.Response:
        status = next(statuses)
        if status == 200:
            return httpx.Response(200, json=completion("finally"))
        return httpx.Response(status, json={"error": {"message": "try again"}})

    fake = FakeOpenAI(respond)
    async with make_client(
        fake, max_retries=None, retry=RetryPolicy(max_retries=2, backoff_base=0)
    ) as client:
        reply = await client.chat("hi")
    assert reply.text == "finally"
    assert len(fake.requests) == 3
    assert client.usage.retries == 2
    # every attempt carries the same idempotency key
    assert len({r.headers["idempotency-key"] for r in fake.requests}) == 1


async def test_connection_errors_are_typed(key: str) -> None:
    def respond(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    fake = FakeOpenAI(respond)
    async with make_client(fake) as client:
        with pytest.raises(llmrelay.APIConnectionError, match="openai") as info:
            await client.chat("hi")
    assert not isinstance(info.value, llmrelay.APITimeoutError)


# -- secrets ---------------------------------------------------------------------------------


def _error_texts(error: BaseException) -> list[str]:
    texts = []
    seen: BaseException | None = error
    while seen is not None:
        texts += [str(seen), repr(seen)]
        seen = seen.__cause__ or seen.__context__
    return texts


async def test_the_key_is_not_in_the_client_repr(key: str) -> None:
    fake = FakeOpenAI()
    async with make_client(fake) as client:
        assert KEY not in repr(client)
        assert KEY not in str(client)
        assert "openai" in repr(client)
    explicit = make_client(fake, api_key="sk-explicit-key-999")
    assert "sk-explicit-key-999" not in repr(explicit)
    await explicit.aclose()


@pytest.mark.parametrize("status", [400, 401, 403, 404, 429, 500])
async def test_the_key_never_appears_in_errors_even_when_echoed(key: str, status: int) -> None:
    body = {"error": {"message": f"Incorrect API key provided: {KEY}.", "type": "invalid"}}
    fake = FakeOpenAI(lambda request: httpx.Response(status, json=body))
    async with make_client(fake) as client:
        with pytest.raises(APIStatusError) as info:
            await client.chat("hi")
    assert "Incorrect API key provided" in str(info.value)
    for text in _error_texts(info.value):
        assert KEY not in text


async def test_the_key_is_not_in_an_echoing_200_error_payload(key: str) -> None:
    body = {"error": {"message": f"Invalid key {KEY}", "type": "authentication_error"}}
    fake = FakeOpenAI(lambda request: httpx.Response(200, json=body))
    async with make_client(fake) as client:
        with pytest.raises(llmrelay.AuthenticationError) as info:
            await client.chat("hi")
    assert "Invalid key" in str(info.value)
    for text in _error_texts(info.value):
        assert KEY not in text


async def test_the_key_is_not_in_an_echoing_non_json_200(key: str) -> None:
    fake = FakeOpenAI(lambda request: httpx.Response(200, text=f"proxy says: bad key {KEY}"))
    async with make_client(fake) as client:
        with pytest.raises(ResponseError) as info:
            await client.chat("hi")
    for text in _error_texts(info.value):
        assert KEY not in text


async def test_the_key_is_not_logged_at_debug_through_retries(
    key: str, caplog: pytest.LogCaptureFixture
) -> None:
    body = {"error": {"message": f"upstream rejected key {KEY}", "type": "server_error"}}
    fake = FakeOpenAI(
        lambda request: httpx.Response(500, json=body, headers={"x-request-id": "req_log"})
    )
    caplog.set_level(logging.DEBUG, logger="llmrelay")
    caplog.set_level(logging.DEBUG)  # and everything else (httpx) too
    async with make_client(
        fake, max_retries=None, retry=RetryPolicy(max_retries=2, backoff_base=0)
    ) as client:
        with pytest.raises(llmrelay.InternalServerError) as info:
            await client.chat("hi")
    assert len(fake.requests) == 3
    llmrelay_records = [r for r in caplog.records if r.name.startswith("llmrelay")]
    assert llmrelay_records, "expected the retries to be logged"
    assert any(r.levelno == logging.DEBUG for r in llmrelay_records)
    for record in caplog.records:
        assert KEY not in record.getMessage()
        assert KEY not in repr(record.args)
    assert KEY not in caplog.text
    for text in _error_texts(info.value):
        assert KEY not in text


async def test_the_key_is_not_in_an_echoing_stream_error_event(key: str) -> None:
    event = {"error": {"message": f"bad key {KEY}", "type": "server_error"}}
    fake = FakeOpenAI(
        lambda request: httpx.Response(
            200,
            content=f"data: {json.dumps(event)}\n\n".encode(),
            headers={"content-type": "text/event-stream"},
        )
    )
    async with make_client(fake) as client:
        with pytest.raises(llmrelay.StreamError) as info:
            async for _ in client.stream("hi"):
                pass
    assert "bad key" in str(info.value)
    for text in _error_texts(info.value):
        assert KEY not in text
