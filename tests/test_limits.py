"""Client-side rate limits (`RateLimit`), observed as the times requests reach the transport.

Tests run on trio's MockClock, so a minute of spacing costs nothing and is measured exactly.
"""

from __future__ import annotations

import math
from typing import Any

import anyio
import httpx
import pytest

import llmrelay
from _fake_openai import OK_BODY, mock_clock_backend, openai_client
from llmrelay import APITimeoutError, ConfigError, RateLimit, Timeout
from llmrelay import _constants as C

# Marking the module lets anyio's plugin see the marker while collecting (see conftest).
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    return mock_clock_backend()


class Stamps:
    """A transport handler that records when each request arrives (relative to its creation)."""

    def __init__(self, *statuses: int) -> None:
        self.t0 = anyio.current_time()
        self.times: list[float] = []
        self.statuses = list(statuses)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.times.append(anyio.current_time() - self.t0)
        status = self.statuses.pop(0) if self.statuses else 200
        if status != 200:
            return httpx.Response(status, json={"error": {"message": "busy"}})
        return httpx.Response(200, json=OK_BODY)


def tokens_of(prompt: str) -> int:
    return max(1, len(prompt) // C.CHARS_PER_TOKEN_ESTIMATE)


# -- requests per minute -----------------------------------------------------------------------


async def test_requests_per_minute_spreads_a_burst() -> None:
    handler = Stamps()
    limit = RateLimit(requests_per_minute=60)
    async with openai_client(handler, rate_limit=limit) as client, anyio.create_task_group() as tg:
        for i in range(5):
            tg.start_soon(client.chat, f"prompt {i}")
    assert handler.times == pytest.approx([0.0, 1.0, 2.0, 3.0, 4.0])


async def test_requests_per_minute_applies_to_sequential_calls() -> None:
    handler = Stamps()
    async with openai_client(handler, rate_limit=RateLimit(requests_per_minute=60)) as client:
        for _ in range(3):
            await client.chat("Hello")
    assert handler.times == pytest.approx([0.0, 1.0, 2.0])


async def test_the_burst_is_at_most_one_second_of_budget() -> None:
    handler = Stamps()
    async with openai_client(handler, rate_limit=RateLimit(requests_per_minute=120)) as client:

        async def burst(n: int) -> None:
            async with anyio.create_task_group() as tg:
                for _ in range(n):
                    tg.start_soon(client.chat, "Hello")

        await burst(5)
        # A long idle time does not build up more than one second's worth (2 requests).
        await anyio.sleep(600)
        before = anyio.current_time() - handler.t0
        handler.times.clear()
        await burst(4)
    later = [t - before for t in handler.times]
    assert later == pytest.approx([0.0, 0.0, 0.5, 1.0])


async def test_retries_are_rate_limited_too() -> None:
    handler = Stamps(500)
    limit = RateLimit(requests_per_minute=60)
    async with openai_client(
        handler, rate_limit=limit, retry=llmrelay.RetryPolicy(backoff_base=0)
    ) as client:
        await client.chat("Hello")
        assert client.usage.retries == 1
    assert handler.times == pytest.approx([0.0, 1.0])


# -- tokens per minute -------------------------------------------------------------------------


async def test_tokens_per_minute_delays_the_call_after_a_large_prompt() -> None:
    handler = Stamps()
    large = "x" * 400  # 100 tokens by the client's estimate
    assert tokens_of(large) == 100
    # 600 tokens a minute: 10 a second, and a burst of at most one second's worth (10).
    async with openai_client(handler, rate_limit=RateLimit(tokens_per_minute=600)) as client:
        await client.chat(large)  # a full bucket lets one large prompt through at once...
        await client.chat(large)  # ...but its 90-token overdraft, plus a full bucket, is 10 s
        await client.chat("hi")  # 100 more tokens owed: 10 s more before one token is there
    assert handler.times == pytest.approx([0.0, 10.0, 10.0 + 9.1])


async def test_max_tokens_counts_against_the_token_budget() -> None:
    handler = Stamps()
    async with openai_client(handler, rate_limit=RateLimit(tokens_per_minute=600)) as client:
        await client.chat("hi", max_tokens=199)  # 1 + 199 = 200 tokens
        await client.chat("hi")
    # 200 tokens from a 10-token bucket leaves -190; one more token is 19.1 s away.
    assert handler.times == pytest.approx([0.0, 19.1])


async def test_both_budgets_apply_and_the_stricter_one_wins() -> None:
    handler = Stamps()
    limit = RateLimit(requests_per_minute=6000, tokens_per_minute=60)  # 1 token a second
    async with openai_client(handler, rate_limit=limit) as client:
        for _ in range(3):
            await client.chat("four")  # 1 token each
    assert handler.times == pytest.approx([0.0, 1.0, 2.0])


# -- deadlines and configuration ----------------------------------------------------------------


async def test_a_rate_limit_wait_counts_against_the_total_deadline() -> None:
    handler = Stamps()
    async with openai_client(handler, rate_limit=RateLimit(requests_per_minute=60)) as client:
        await client.chat("first")
        t0 = anyio.current_time()
        with pytest.raises(APITimeoutError):
            await client.chat("second", timeout=Timeout(total=0.5))
        assert anyio.current_time() - t0 == pytest.approx(0.5)
        # The budget the timed-out call did not use is still there for the next one.
        await client.chat("third")
    assert handler.times == pytest.approx([0.0, 1.0])


def test_a_rate_limited_client_can_be_built_outside_an_event_loop() -> None:
    handler_box: list[Stamps] = []

    def handler(request: httpx.Request) -> httpx.Response:
        return handler_box[0](request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    client = llmrelay.AsyncClient(
        provider="openai",
        api_key="sk-test",
        model="m",
        http_client=http,
        rate_limit=RateLimit(requests_per_minute=60),
    )

    async def main() -> None:
        handler_box.append(Stamps())
        async with http, client:
            for _ in range(3):
                assert (await client.chat("Hello")).text == "ok"

    import trio.testing

    anyio.run(
        main,
        backend="trio",
        backend_options={"clock": trio.testing.MockClock(autojump_threshold=0)},
    )
    assert handler_box[0].times == pytest.approx([0.0, 1.0, 2.0])


@pytest.mark.parametrize("field", ["requests_per_minute", "tokens_per_minute"])
@pytest.mark.parametrize("value", [0, -1, -0.5, math.nan, "60", True, [60]])
def test_bad_rate_limits_are_config_errors(field: str, value: Any) -> None:
    with pytest.raises(ConfigError) as info:
        RateLimit(**{field: value})
    assert field in str(info.value)
    assert isinstance(info.value, ValueError)


def test_good_rate_limits() -> None:
    assert RateLimit() == RateLimit(requests_per_minute=None, tokens_per_minute=None)
    assert RateLimit(requests_per_minute=0.5).requests_per_minute == 0.5
    assert RateLimit(requests_per_minute=60, tokens_per_minute=90_000).tokens_per_minute == 90_000


async def test_an_empty_rate_limit_does_not_slow_anything() -> None:
    handler = Stamps()
    async with openai_client(handler, rate_limit=RateLimit()) as client:
        for _ in range(5):
            await client.chat("Hello")
    assert handler.times == [0.0] * 5


async def test_the_token_budget_is_corrected_by_the_usage_a_reply_reports() -> None:
    """The estimate for "hi" is one token; the reply says it cost 120. The next request waits
    for those 120 tokens to refill (600 per minute = 10 per second), not for one."""
    body = {
        **OK_BODY,
        "usage": {"prompt_tokens": 20, "completion_tokens": 100, "total_tokens": 120},
    }
    times: list[float] = []
    t0 = anyio.current_time()

    def handler(request: httpx.Request) -> httpx.Response:
        times.append(anyio.current_time() - t0)
        return httpx.Response(200, json=body)

    async with openai_client(handler, rate_limit=RateLimit(tokens_per_minute=600)) as client:
        await client.chat("hi")
        await client.chat("hi")
    assert times[0] == 0
    # 120 tokens spent from a bucket of 10: ~11 s until the next one-token request fits.
    assert times[1] == pytest.approx(11.1, abs=0.2)
