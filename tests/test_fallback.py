"""Fallback routes: `AsyncClient(..., fallbacks=[Route(...)])`.

On the in-process mock with faults per route (a route's model carries its fault, e.g.
``mock-echo+fault=503``), then over the exact-bytes loopback server, where each route is a
real server with its own key, and what each server received is looked at.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

import llmrelay
from _loopback import Request, Response, chat_completion, json_response, loopback, sse
from llmrelay import (
    AllRoutesFailedError,
    APIConnectionError,
    APITimeoutError,
    AsyncClient,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    OverloadedError,
    RateLimitError,
    Route,
    StreamError,
)
from llmrelay.stages import _route_breaker


def mock_client(primary_fault: str | None, *routes: Route, **options: Any) -> AsyncClient:
    model = "mock-echo" if primary_fault is None else f"mock-echo+fault={primary_fault}"
    options.setdefault("max_retries", 0)
    return AsyncClient("mock", model=model, fallbacks=list(routes), **options)


def route(fault: str | None = None, **options: Any) -> Route:
    options.setdefault("max_retries", 0)
    model = "mock-echo" if fault is None else f"mock-echo+fault={fault}"
    return Route("mock", model=model, **options)


@pytest.mark.parametrize(
    "fault", ["503", "500", "529", "429", "408", "reset;after=0", "stall;seconds=1"]
)
async def test_a_provider_side_failure_moves_on_to_the_next_route(fault: str) -> None:
    async with mock_client(fault, route(), timeout=llmrelay.Timeout(read=0.2, total=5)) as client:
        reply = await client.chat("hello")
    assert reply.text == "echo: hello"
    assert reply.provider == "mock" and reply.model == "mock-echo"
    used = client.route_usage
    assert [u.requests for u in used.values()] == [0, 1]
    assert next(iter(used.values())).failures == 1


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("400", BadRequestError),
        ("401", AuthenticationError),
        ("403", llmrelay.PermissionDeniedError),
        ("404", llmrelay.NotFoundError),
        ("422", llmrelay.UnprocessableEntityError),
    ],
)
async def test_a_caller_error_does_not_fall_back(fault: str, error: type[Exception]) -> None:
    async with mock_client(fault, route()) as client:
        with pytest.raises(error) as caught:
            await client.chat("hello")
        assert not isinstance(caught.value, AllRoutesFailedError)  # raised as it is
        assert list(client.route_usage.values())[1].requests == 0  # the fallback was not tried
        assert client.usage.failures == 1


async def test_a_route_falls_back_only_after_its_own_retries() -> None:
    primary = "503;times=1"  # the primary's one retry cures it
    async with mock_client(primary, route(), max_retries=1, retry=None) as client:
        reply = await client.chat("hello")
    assert reply.text == "echo: hello"
    first, second = client.route_usage.values()
    assert (first.requests, first.retries, second.requests) == (1, 1, 0)
    assert client.usage.retries == 1


async def test_when_every_route_fails_one_error_carries_each_and_keeps_the_last_class() -> None:
    async with mock_client("503", route("529"), route("429;retry-after=7")) as client:
        with pytest.raises(RateLimitError) as caught:  # the last route's class still catches
            await client.chat("hello")
    error = caught.value
    assert isinstance(error, AllRoutesFailedError) and isinstance(error, llmrelay.LLMError)
    assert error.status_code == 429 and error.retry_after == 7
    assert [type(e) for _, e in error.errors] == [
        InternalServerError,
        OverloadedError,
        RateLimitError,
    ]
    assert [label for label, _ in error.errors] == [
        "mock:mock-echo+fault=503",
        "mock:mock-echo+fault=529",
        "mock:mock-echo+fault=429;retry-after=7",
    ]
    assert error.__cause__ is error.errors[-1][1]
    assert "every route failed (3 tried)" in str(error) and "529" in str(error)
    assert client.usage.failures == 1


async def test_a_caller_error_on_a_later_route_stops_with_every_error_so_far() -> None:
    async with mock_client("503", route("401"), route()) as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.chat("hello")
    assert isinstance(caught.value, AllRoutesFailedError)
    assert [type(e) for _, e in caught.value.errors] == [InternalServerError, AuthenticationError]
    assert list(client.route_usage.values())[2].requests == 0


async def test_connection_errors_fall_back_and_every_failure_is_an_api_connection_error() -> None:
    async with mock_client("reset;after=0", route("reset;after=0")) as client:
        with pytest.raises(APIConnectionError) as caught:
            await client.chat("hello")
    assert isinstance(caught.value, AllRoutesFailedError)


async def test_a_stream_falls_back_before_its_first_chunk() -> None:
    async with mock_client("503", route()) as client, client.stream("one two three") as stream:
        text = "".join([chunk.text async for chunk in stream])
        final = await stream.final()
    assert text == "echo: one two three"
    assert final.provider == "mock" and final.text == text
    assert [u.requests for u in client.route_usage.values()] == [0, 1]
    assert client.usage.requests == 1


async def test_a_stream_cut_before_its_first_content_chunk_falls_back() -> None:
    async with mock_client("error-event;after=0", route()) as client:
        final = await client.stream("one two three").final()
    assert final.text == "echo: one two three"


async def test_a_stream_does_not_fall_back_after_its_first_chunk() -> None:
    async with mock_client("reset;after=2", route()) as client:
        stream = client.stream("one two three four five", extra_headers={"x-mock-chunks": "5"})
        seen = []
        with pytest.raises(StreamError) as caught:
            async for chunk in stream:
                seen.append(chunk.text)
    assert seen and caught.value.partial == "".join(seen)  # what the primary sent, no more
    assert list(client.route_usage.values())[1].requests == 0


async def test_the_total_deadline_covers_every_route() -> None:
    timeout = llmrelay.Timeout(read=5, total=0.3)
    async with mock_client("stall;seconds=1", route("stall;seconds=1"), timeout=timeout) as client:
        started = time.monotonic()
        with pytest.raises(APITimeoutError) as caught:
            await client.chat("hello")
        elapsed = time.monotonic() - started
    assert elapsed < 0.9  # one deadline for both routes (not 0.3 s each, nor the 1 s stalls)
    error = caught.value
    assert isinstance(error, AllRoutesFailedError)
    # The primary used the whole deadline: the second route had none left.
    assert [str(e) for _, e in error.errors][1] == "the total timeout ran out before this route"


async def test_an_info_line_says_why_a_route_was_left(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="llmrelay")
    async with mock_client("503", route()) as client:
        await client.chat("hello")
    lines = [r.getMessage() for r in caplog.records if "route" in r.getMessage()]
    assert lines == [
        "route mock:mock-echo+fault=503 failed with InternalServerError after 0 retries; "
        "falling back to mock:mock-echo"
    ]


async def test_a_failing_route_is_skipped_for_a_cool_down_then_tried_again(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    now = [1000.0]
    monkeypatch.setattr(_route_breaker, "_now", lambda: now[0])
    caplog.set_level(logging.INFO, logger="llmrelay")
    async with mock_client("503", route()) as client:
        primary, fallback = client.route_usage.values()
        for _ in range(llmrelay._constants.ROUTE_BREAKER_FAILURES):
            await client.chat("hello")
        assert primary.failures == 3
        await client.chat("hello")  # the primary is cooling down: not tried
        assert primary.failures == 3 and fallback.requests == 4
        assert any("skipped: 3 failures in a row" in r.getMessage() for r in caplog.records)
        now[0] += llmrelay._constants.ROUTE_BREAKER_COOLDOWN + 1
        await client.chat("hello")  # cool-down over: tried once more (and fails again)
        assert primary.failures == 4 and fallback.requests == 5


async def test_every_route_cooling_down_still_tries_the_primary(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_route_breaker, "_now", lambda: 0.0)
    async with mock_client("503", route("503")) as client:
        for _ in range(3):
            with pytest.raises(InternalServerError):
                await client.chat("hello")
        with pytest.raises(InternalServerError):
            await client.chat("hello")
        primary, fallback = client.route_usage.values()
    assert (primary.failures, fallback.failures) == (4, 3)


async def test_usage_is_counted_per_route_and_in_total_with_cost() -> None:
    prices = {"mock-echo": (1_000_000.0, 0.0)}  # $1 per prompt token
    async with mock_client("503", route(), prices=prices) as client:
        reply = await client.chat("hello")
        assert reply.usage is not None
        tokens = reply.usage.prompt_tokens
        assert client.usage.cost == pytest.approx(tokens)
        assert list(client.route_usage.values())[1].cost == pytest.approx(tokens)


async def test_embeddings_stay_with_the_primary() -> None:
    # Another provider's vectors are not interchangeable: a failing primary is the error, and
    # the route (which would answer) gets nothing.
    async with mock_client(None, route()) as client:
        result = await client.embed(["a", "b"], model="mock-embed")
        assert len(result.vectors) == 2
        with pytest.raises(InternalServerError) as caught:
            await client.embed(["a", "b"], model="mock-embed+fault=503")
        assert not isinstance(caught.value, AllRoutesFailedError)
        assert list(client.route_usage.values())[1].requests == 0


def test_the_sync_client_takes_fallbacks() -> None:
    with llmrelay.Client(
        "mock", model="mock-echo+fault=503", max_retries=0, fallbacks=[route()]
    ) as client:
        assert client.chat("hello").text == "echo: hello"
        assert [u.requests for u in client.route_usage.values()] == [0, 1]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"fallbacks": Route("mock")}, "fallbacks must be a list of llmrelay.Route"),
        ({"fallbacks": ["mock"]}, "fallbacks must be a list of llmrelay.Route, got an item 'mock'"),
    ],
)
def test_bad_fallbacks_are_a_config_error(kwargs: dict[str, Any], error: str) -> None:
    with pytest.raises(llmrelay.ConfigError, match=error):
        AsyncClient("mock", **kwargs)


@pytest.mark.parametrize(
    "fallbacks",
    [
        [{"provider": "anthropic", "api_key": "sk-ant-SECRET-0123"}],
        {"provider": "anthropic", "api_key": "sk-ant-SECRET-0123"},
        [("anthropic", "sk-ant-SECRET-0123")],
    ],
)
def test_a_route_given_as_plain_settings_is_refused_without_echoing_its_key(
    fallbacks: Any,
) -> None:
    with pytest.raises(llmrelay.ConfigError, match=r"must be a list of llmrelay\.Route") as caught:
        AsyncClient("mock", fallbacks=fallbacks)
    assert "SECRET" not in str(caught.value)


def test_a_misspelt_route_option_is_a_type_error_with_a_hint() -> None:
    with pytest.raises(TypeError, match="'max_retry'; did you mean 'max_retries'"):
        Route("mock", max_retry=1)  # type: ignore[call-arg]


def test_a_route_repr_hides_its_key() -> None:
    shown = repr(Route("openai", model="gpt-4o-mini", api_key="sk-secret-value-1234"))
    assert "sk-secret" not in shown and "api_key" in shown


def test_a_route_without_its_key_fails_when_the_client_is_built() -> None:
    with pytest.raises(llmrelay.ConfigError, match="no API key for provider 'anthropic'"):
        AsyncClient("mock", fallbacks=[Route("anthropic", model="claude-sonnet-4-5")])


# -- over real HTTP: each route a server of its own, with its own key ----------------------------


async def test_each_route_is_its_own_server_with_its_own_key_and_body() -> None:
    def failing(request: Request) -> Response:
        return json_response({"error": {"message": "down", "type": "server_error"}}, status=503)

    def answering(request: Request) -> Response:
        return json_response(chat_completion("from the second"))

    async with (
        loopback(failing) as first,
        loopback(answering) as second,
        AsyncClient(
            "openai",
            api_key="key-one-aaaaaaaa",
            base_url=first.base_url,
            model="gpt-4o-mini",
            max_retries=1,
            retry=None,
            fallbacks=[
                Route(
                    "openai",
                    model="gpt-4.1-mini",
                    api_key="key-two-bbbbbbbb",
                    base_url=second.base_url,
                    max_retries=0,
                )
            ],
        ) as client,
    ):
        reply = await client.chat("hi")
    assert reply.text == "from the second"
    assert len(first.requests) == 2  # its own retry first
    assert [r.headers["authorization"] for r in first.requests] == ["Bearer key-one-aaaaaaaa"] * 2
    (sent,) = second.requests
    assert sent.headers["authorization"] == "Bearer key-two-bbbbbbbb"
    assert sent.json["model"] == "gpt-4.1-mini"
    assert sent.json["messages"] == [{"role": "user", "content": "hi"}]


async def test_over_http_a_stream_moves_on_when_the_first_route_is_cut_before_content() -> None:
    from _loopback import CUT

    def cut(request: Request) -> Response:
        return sse([b'data: {"choices":[{"index":0,"delta":{"role":"assistant"}}]}\n\n', CUT])

    def answering(request: Request) -> Response:
        return json_response(chat_completion("whole"))

    async with (
        loopback(cut) as first,
        loopback(answering) as second,
        AsyncClient(
            "openai",
            api_key="k1",
            base_url=first.base_url,
            model="m1",
            max_retries=0,
            fallbacks=[Route("openai", model="m2", api_key="k2", base_url=second.base_url)],
        ) as client,
    ):
        final = await client.stream("hi").final()
    assert final.text == "whole"
    assert len(first.requests) == 1 and len(second.requests) == 1


async def test_a_route_of_another_wire_family_gets_the_call_in_its_own_format() -> None:
    # OpenAI-style primary down; the fallback speaks Anthropic Messages to the mock server,
    # and then Gemini: each rebuilt from the provider-neutral request.
    from llmrelay.mock import serve

    with serve() as url:
        for provider, base in (("anthropic", f"{url}/v1"), ("gemini", f"{url}/v1beta")):
            async with AsyncClient(
                "mock",
                model="mock-echo+fault=503",
                max_retries=0,
                fallbacks=[Route(provider, model="mock-echo", api_key="k", base_url=base)],
            ) as client:
                reply = await client.chat(
                    [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
                    max_tokens=20,
                )
                streamed = await client.stream("one two", max_tokens=20).final()
            assert reply.provider == provider and reply.text == "echo: hi"
            assert streamed.provider == provider and streamed.text == "echo: one two"


async def test_a_per_call_timeout_is_the_deadline_over_every_route() -> None:
    async with mock_client("stall;seconds=1", route("stall;seconds=1")) as client:
        started = time.monotonic()
        with pytest.raises(APITimeoutError):
            await client.chat("hello", timeout=0.2)
        assert time.monotonic() - started < 0.9


@pytest.mark.parametrize(
    ("fault", "total"),
    [("429;retry-after=120", 5.0), ("503;retry-after=3", 1.0)],  # beyond the cap; the deadline
)
async def test_a_wait_the_route_cannot_afford_moves_on_at_once(fault: str, total: float) -> None:
    timeout = llmrelay.Timeout(total=total)
    async with mock_client(fault, route(), max_retries=3, timeout=timeout) as client:
        started = time.monotonic()
        reply = await client.chat("hello")
        assert time.monotonic() - started < 0.5  # no waiting on the primary's Retry-After
    assert reply.text == "echo: hello"
    assert next(iter(client.route_usage.values())).retries == 0


async def test_a_route_whose_circuit_is_open_is_skipped_without_an_attempt(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The route's own client breaker (server down: connection refused) opens after two calls
    # failed to connect; the third call goes straight to the next route.
    from _redis import free_port

    caplog.set_level(logging.INFO, logger="llmrelay")
    async with AsyncClient(
        "openai",
        api_key="sk-test",
        base_url=f"http://127.0.0.1:{free_port()}/v1",  # nothing listens there
        model="gpt-4o-mini",
        max_retries=0,
        circuit_breaker=llmrelay.CircuitBreaker(failures=2, cooldown=60.0, min_span=0),
        fallbacks=[route()],
    ) as client:
        for _ in range(3):
            reply = await client.chat("hello")
            assert reply.provider == "mock"
        primary, fallback = client.route_usage.values()
        assert client.breaker is not None and client.breaker.is_open
    assert (primary.failures, fallback.requests) == (2, 3)
    assert any("circuit is open" in r.getMessage() for r in caplog.records)


async def test_a_typed_response_format_reaches_a_route_of_another_family_as_written() -> None:
    # Gemini takes JSON Schema as written (an optional property stays optional); the route
    # rebuilt from the primary's request must get that schema, not OpenAI's strict form.
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name"],
    }
    answer = {
        "candidates": [
            {"content": {"role": "model", "parts": [{"text": '{"name": "Rex"}'}]}, "index": 0}
        ],
        "modelVersion": "gemini-2.5-flash",
    }
    async with (
        loopback(lambda request: json_response(answer)) as server,
        mock_client(
            "503",
            Route("gemini", model="gemini-2.5-flash", api_key="k", base_url=server.base_url),
        ) as client,
    ):
        reply = await client.chat("a dog", response_format=schema)
    assert reply.provider == "gemini" and reply.parsed == {"name": "Rex"}
    sent = server.requests[0].json["generationConfig"]["responseJsonSchema"]
    assert sent["required"] == ["name"] and sent["properties"]["age"] == {"type": "integer"}


async def test_a_calls_own_credential_header_never_reaches_another_route() -> None:
    # A per-call key for the primary (a tenant's, in extra_headers) is not sent to the fallback
    # provider's server: the route authenticates with its own key; other headers go along.
    def down(request: Request) -> Response:
        return json_response({"error": {"message": "down", "type": "server_error"}}, status=503)

    async with (
        loopback(down) as first,
        loopback(lambda request: json_response(chat_completion("fine"))) as second,
        AsyncClient(
            "openai",
            api_key="sk-primary",
            base_url=first.base_url,
            model="gpt-4o",
            max_retries=0,
            fallbacks=[
                Route(
                    "deepseek", model="deepseek-chat", api_key="sk-route", base_url=second.base_url
                )
            ],
        ) as client,
    ):
        extra = {"Authorization": "Bearer sk-TENANT", "X-Api-Key": "sk-TENANT", "X-Trace": "t1"}
        reply = await client.chat("hi", extra_headers=extra)
    assert reply.text == "fine"
    assert first.requests[0].headers["authorization"] == "Bearer sk-TENANT"
    sent = second.requests[0].headers
    assert sent["authorization"] == "Bearer sk-route" and "x-api-key" not in sent
    assert sent["x-trace"] == "t1"


async def test_a_route_whose_shared_limit_cannot_reach_redis_falls_back() -> None:
    # The primary's shared rate limit has no Redis (a refused port): it can send nothing, so
    # the call moves on to the next route instead of failing.
    pytest.importorskip("redis")
    from _redis import free_port

    limit = llmrelay.RateLimit(
        requests_per_minute=60, redis_url=f"redis://127.0.0.1:{free_port()}/0", key="k"
    )
    async with mock_client(None, route(), rate_limit=limit) as client:
        reply = await client.chat("hello")
        assert reply.text == "echo: hello"
        primary, fallback = client.route_usage.values()
        assert (primary.requests, fallback.requests) == (0, 1)
