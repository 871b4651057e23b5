"""A request body JSON cannot carry never leaves: NaN and ±Infinity (Python's encoder writes
them as `NaN`/`Infinity`, which servers answer 400 or 500 to, and a 500 was retried), and values
JSON has no type for (a set...), which used to end in a raw `TypeError`. Each is a `ConfigError`
saying where in the body it is, before anything is sent, on our own pool and through a user's
`http_client` alike; the loopback server sees no request at all."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx
import pytest

import llmrelay
from _loopback import Request, Response, chat_completion, json_response, loopback
from llmrelay import AsyncClient, ConfigError, RetryPolicy

pytestmark = pytest.mark.anyio

BOUND = 10
NAN, INF = math.nan, math.inf

Use = Callable[[AsyncClient], Awaitable[Any]]


async def _stream(client: AsyncClient, **kwargs: Any) -> Any:
    return await client.stream("hi", **kwargs).final()


CASES: list[tuple[str, Use, list[str]]] = [
    (
        "temperature nan",
        lambda c: c.chat("hi", temperature=NAN),
        ["temperature must be a finite number, got nan"],
    ),
    ("top_p nan", lambda c: c.chat("hi", top_p=NAN), ["top_p must be a finite number"]),
    ("temperature inf", lambda c: c.chat("hi", temperature=INF), ["temperature", "inf"]),
    (
        "extra_body inf",
        lambda c: c.chat("hi", extra_body={"top_p": INF}),
        ["cannot be sent as JSON", "top_p is inf", "no NaN or Infinity"],
    ),
    (
        "extra_body -inf nested",
        lambda c: c.chat("hi", extra_body={"logit_bias": {"50256": -INF}}),
        ["logit_bias.50256 is -inf"],
    ),
    (
        "extra_body nan in a list",
        lambda c: c.chat("hi", extra_body={"weights": [1.0, NAN]}),
        ["weights[1] is nan"],
    ),
    (
        "a set in extra_body",
        lambda c: c.chat("hi", extra_body={"tags": {"a", "b"}}),
        ["tags is of type set, which JSON cannot encode"],
    ),
    (
        "an object in extra_body",
        lambda c: c.chat("hi", extra_body={"metadata": {"when": object()}}),
        ["metadata.when is of type object"],
    ),
    (
        "a tuple key",
        lambda c: c.chat("hi", extra_body={"logit_bias": {(1, 2): 1}}),
        ["logit_bias has a key of type tuple"],
    ),
    (
        "nan in a tool schema",
        lambda c: c.chat(
            "hi",
            tools=[
                {
                    "type": "function",
                    "function": {"name": "f", "parameters": {"type": "number", "maximum": NAN}},
                }
            ],
        ),
        ["tools[0].function.parameters.maximum is nan"],
    ),
    (
        "stream with inf",
        lambda c: _stream(c, extra_body={"top_p": INF}),
        ["top_p is inf"],
    ),
    (
        "embed with nan",
        lambda c: c.embed(["hi"], extra_body={"scale": NAN}),
        ["scale is nan"],
    ),
]


def _any_reply(request: Request) -> Response:
    return json_response({"error": {"message": "bad JSON"}}, status=500)  # retryable


@pytest.mark.parametrize("own_http_client", [False, True], ids=["pool", "http_client"])
@pytest.mark.parametrize(("use", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_a_body_json_cannot_carry_is_a_config_error_and_nothing_is_sent(
    use: Use, words: list[str], own_http_client: bool
) -> None:
    async with loopback(_any_reply) as server:
        http = httpx.AsyncClient() if own_http_client else None
        async with AsyncClient(
            "openai",
            api_key="sk-x",
            base_url=server.base_url,
            model="m",
            http_client=http,
            retry=RetryPolicy(max_retries=2, backoff_base=0.0),
        ) as client:
            with anyio.fail_after(BOUND), pytest.raises(ConfigError) as info:
                await use(client)
            assert client.usage.retries == 0
        if http is not None:
            await http.aclose()
    for word in words:
        assert word in str(info.value), (word, str(info.value))
    assert type(info.value.__cause__) is not TypeError  # no raw encoder error behind it
    assert server.requests == [] and server.opened == 0


@pytest.mark.parametrize("provider", ["anthropic", "gemini"])
async def test_every_wire_family_refuses_non_finite_numbers(provider: str) -> None:
    async with (
        loopback(_any_reply) as server,
        AsyncClient(provider, api_key="sk-x", base_url=server.base_url, model="m") as client,
    ):
        with anyio.fail_after(BOUND):
            with pytest.raises(ConfigError, match="temperature must be a finite number"):
                await client.chat("hi", temperature=NAN)
            with pytest.raises(ConfigError, match=r"is inf \(JSON has no NaN or Infinity\)"):
                await client.chat("hi", extra_body={"x": INF})
    assert server.requests == []


def test_the_sync_client_refuses_them_too() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json=chat_completion("ok"))

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    with llmrelay.Client("openai", api_key="sk-x", model="m", http_client=http) as client:
        with pytest.raises(ConfigError, match="temperature must be a finite number"):
            client.chat("hi", temperature=NAN)
        with pytest.raises(ConfigError, match="top_p is inf"):
            client.chat("hi", extra_body={"top_p": INF})
        with pytest.raises(ConfigError, match="tags is of type set"):
            client.chat("hi", extra_body={"tags": {1}})
        assert client.chat("hi", temperature=0.5, extra_body={"top_p": 1.0}).text == "ok"
    assert len(sent) == 1


async def test_text_that_is_not_valid_unicode_is_a_config_error_before_sending() -> None:
    import llmrelay

    async with llmrelay.AsyncClient(provider="mock") as client:
        with pytest.raises(llmrelay.ConfigError, match="surrogate"):
            await client.chat("caf\udce9")  # what os.fsdecode gives for a Latin-1 byte
        assert client.usage.requests == 0 and client.usage.failures == 0
