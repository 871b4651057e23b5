"""The circuit breaker: a server that is down (connection refused, or 5xx in a row) makes calls
fail fast with `CircuitOpenError` for a cool-down, then one probe call decides.

The batch tests drive the real client against a loopback server (or a port nothing listens
on) and count what the server saw; the state tests run on trio's MockClock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest

import llmrelay
from _fake_openai import OK_BODY, mock_clock_backend, openai_client
from _loopback import Request, Response, json_response, loopback
from _redis import free_port
from llmrelay import (
    APIConnectionError,
    CircuitBreaker,
    CircuitOpenError,
    ConfigError,
    InternalServerError,
    RetryPolicy,
)
from llmrelay import _constants as C

NO_WAIT = RetryPolicy(max_retries=2, backoff_base=0.0)
PROMPTS = [f"prompt {i}" for i in range(40)]


def client_at(base_url: str, **kwargs: Any) -> llmrelay.AsyncClient:
    kwargs.setdefault("retry", NO_WAIT)
    return llmrelay.AsyncClient(
        provider="openai", api_key="sk-test", model="m", base_url=base_url, **kwargs
    )


@pytest.mark.parametrize("breaker", [CircuitBreaker(min_span=0), None], ids=["breaker", "none"])
async def test_a_batch_against_a_dead_server_stops_burning_retries(
    breaker: CircuitBreaker | None,
) -> None:
    base_url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens: connection refused
    async with client_at(base_url, circuit_breaker=breaker) as client:
        outcomes = await client.batch(PROMPTS, return_exceptions=True)
        retries = client.usage.retries
    assert all(isinstance(outcome, APIConnectionError) for outcome in outcomes)
    if breaker is None:
        assert retries == 2 * len(PROMPTS)  # every prompt spent its two retries
        return
    fast = [outcome for outcome in outcomes if isinstance(outcome, CircuitOpenError)]
    assert len(fast) >= len(PROMPTS) - 2 * C.DEFAULT_MAX_CONCURRENCY
    assert retries <= 2 * C.DEFAULT_MAX_CONCURRENCY  # only calls already under way retried
    assert isinstance(fast[0].__cause__, APIConnectionError)
    assert fast[0].retry_in > 0
    assert "circuit open" in str(fast[0])


@pytest.mark.parametrize("breaker", [CircuitBreaker(min_span=0), None], ids=["breaker", "none"])
async def test_a_batch_against_a_server_answering_503_stops_after_a_few_attempts(
    breaker: CircuitBreaker | None,
) -> None:
    def down(request: Request) -> Response:
        return json_response({"error": {"message": "down for maintenance"}}, status=503)

    async with loopback(down) as server, client_at(server.base_url, circuit_breaker=breaker) as c:
        outcomes = await c.batch(PROMPTS, return_exceptions=True)
    assert all(
        isinstance(outcome, APIConnectionError | InternalServerError) for outcome in outcomes
    )
    if breaker is None:
        assert len(server.requests) == 3 * len(PROMPTS)
    else:
        assert len(server.requests) < len(PROMPTS)  # fewer attempts than prompts, not 3 each


async def test_one_call_keeps_all_of_its_retries() -> None:
    # A single call's retries are its RetryPolicy's business: the breaker needs failures from
    # two calls at least.
    def down(request: Request) -> Response:
        return json_response({"error": {"message": "down"}}, status=500)

    policy = RetryPolicy(max_retries=10, backoff_base=0.0)
    breaker = CircuitBreaker(min_span=0)
    async with (
        loopback(down) as server,
        client_at(server.base_url, retry=policy, circuit_breaker=breaker) as client,
    ):
        with pytest.raises(InternalServerError):
            await client.chat("Hello")
        assert len(server.requests) == 11
        with pytest.raises(CircuitOpenError):  # the next call finds the circuit open
            await client.chat("Hello")
        assert len(server.requests) == 12


def test_bad_breaker_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="failures must be >= 1"):
        CircuitBreaker(min_span=0, failures=0)
    with pytest.raises(ConfigError, match="cooldown must be positive"):
        CircuitBreaker(cooldown=0)
    with pytest.raises(ConfigError, match="min_span must be positive"):
        CircuitBreaker(min_span=-1)
    with pytest.raises(ConfigError, match="circuit_breaker must be a CircuitBreaker"):
        llmrelay.AsyncClient(provider="mock", circuit_breaker=5)  # type: ignore[arg-type]


# -- the states, on a fake clock -----------------------------------------------------------------


class Flaky:
    """Answers `status` while `down`, else 200; after `delay` seconds of (fake) time."""

    def __init__(self, status: int = 503, delay: float = 0.0) -> None:
        self.status = status
        self.down = True
        self.delay = delay
        self.requests = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        await anyio.sleep(self.delay)
        if self.down:
            return httpx.Response(self.status, json={"error": {"message": "nope"}})
        return httpx.Response(200, json=OK_BODY)


@asynccontextmanager
async def client_on(handler: Flaky, **kwargs: Any) -> AsyncIterator[llmrelay.AsyncClient]:
    kwargs.setdefault("retry", RetryPolicy(max_retries=0))
    async with openai_client(handler, **kwargs) as client:
        yield client


async def fail_times(client: llmrelay.AsyncClient, n: int) -> None:
    for _ in range(n):
        with pytest.raises(InternalServerError):
            await client.chat("Hello")


class TestStates:
    @pytest.fixture
    def anyio_backend(self) -> tuple[str, dict[str, Any]]:
        return mock_clock_backend()

    async def test_open_then_half_open_then_closed(self) -> None:
        server = Flaky()
        async with client_on(
            server, circuit_breaker=CircuitBreaker(min_span=0, failures=3, cooldown=10)
        ) as c:
            breaker = c.breaker
            assert breaker is not None
            await fail_times(c, 2)
            assert (breaker.state, breaker.is_open) == ("closed", False)
            await fail_times(c, 1)
            assert (breaker.state, breaker.is_open) == ("open", True)
            assert breaker.retry_in == pytest.approx(10.0)
            with pytest.raises(CircuitOpenError) as info:
                await c.chat("Hello")
            assert server.requests == 3  # failed fast: not sent
            assert info.value.retry_in == pytest.approx(10.0)
            assert isinstance(info.value.__cause__, InternalServerError)

            await anyio.sleep(10)
            assert (breaker.state, breaker.is_open) == ("half-open", False)
            await fail_times(c, 1)  # the probe went, and failed: open for another cool-down
            assert server.requests == 4
            assert (breaker.state, breaker.retry_in) == ("open", pytest.approx(10.0))

            await anyio.sleep(10)
            server.down = False
            assert (await c.chat("Hello")).text == "ok"  # the probe succeeded
            assert (breaker.state, breaker.is_open, breaker.retry_in) == ("closed", False, 0.0)
            await fail_times(c, 0)

    async def test_a_brief_burst_of_failures_does_not_open_it(self) -> None:
        # Eight concurrent calls meet the same short 503 burst; their retries (after the
        # backoff) find the server back. A server that is down keeps failing past `min_span`.
        server = Flaky()
        policy = RetryPolicy(max_retries=2, backoff_base=0.3, backoff_cap=0.3)
        async with client_on(server, retry=policy, circuit_breaker=CircuitBreaker()) as client:
            breaker = client.breaker
            assert breaker is not None

            async def recover() -> None:
                await anyio.sleep(0.01)
                server.down = False

            async with anyio.create_task_group() as tg:
                tg.start_soon(recover)
                for _ in range(8):
                    tg.start_soon(client.chat, "Hello")
            assert breaker.state == "closed"
            assert client.usage.failures == 0

            server.down = True  # now down for good: failures go on past min_span, and it opens
            with anyio.fail_after(30):
                while breaker.state == "closed":
                    with pytest.raises((InternalServerError, CircuitOpenError)):
                        await client.chat("Hello")
            assert breaker.is_open

    async def test_while_the_probe_is_out_other_calls_fail_fast(self) -> None:
        server = Flaky(delay=1.0)
        async with client_on(
            server, circuit_breaker=CircuitBreaker(min_span=0, failures=2, cooldown=5)
        ) as c:
            breaker = c.breaker
            assert breaker is not None
            await fail_times(c, 2)
            await anyio.sleep(5)
            server.down = False
            async with anyio.create_task_group() as tg:
                tg.start_soon(c.chat, "probe")
                await anyio.sleep(0.5)
                assert breaker.is_open and breaker.state == "half-open"
                with pytest.raises(CircuitOpenError):
                    await c.chat("Hello")
            assert server.requests == 3
            assert not breaker.is_open

    @pytest.mark.parametrize("status", [400, 404, 429, 529])
    async def test_answers_that_show_a_live_server_never_open_it(self, status: int) -> None:
        server = Flaky(status=status)
        async with client_on(
            server, circuit_breaker=CircuitBreaker(min_span=0, failures=2)
        ) as client:
            for _ in range(6):
                with pytest.raises(llmrelay.APIStatusError):
                    await client.chat("Hello")
            assert client.breaker is not None and client.breaker.state == "closed"
        assert server.requests == 6

    async def test_a_success_resets_the_count(self) -> None:
        server = Flaky()
        async with client_on(
            server, circuit_breaker=CircuitBreaker(min_span=0, failures=3)
        ) as client:
            for _ in range(3):
                server.down = True
                await fail_times(client, 2)
                server.down = False
                await client.chat("Hello")
            assert client.breaker is not None and client.breaker.state == "closed"

    async def test_none_turns_it_off(self) -> None:
        server = Flaky()
        async with client_on(server, circuit_breaker=None) as client:
            await fail_times(client, 20)
            assert client.breaker is None
        assert server.requests == 20
