"""`RateLimitStage` over a fake inner stage: calls wait for the request and token budgets, in
the order they came, and a reply's reported usage settles the token estimate made up front
(when the reply is finished: a stream's at its end)."""

from __future__ import annotations

import anyio
import pytest

from llmrelay import APIConnectionError, RateLimit, StreamError, Usage
from llmrelay.stages._ratelimit import RateLimitStage

from ._fakes import Inner, finished_reply, make_call, open_reply

pytestmark = pytest.mark.anyio

# 600 tokens a minute: 10 a second, and a burst of at most one second's worth.
TOKENS = RateLimit(tokens_per_minute=600)


async def test_requests_per_minute_spaces_calls_out() -> None:
    inner = Inner(finished_reply())
    stage = RateLimitStage(inner, limit=RateLimit(requests_per_minute=60))
    for _ in range(4):
        await stage.send(make_call())
    assert inner.times == [0.0, 1.0, 2.0, 3.0]


async def test_waiting_callers_go_in_the_order_they_came() -> None:
    inner = Inner(finished_reply())
    stage = RateLimitStage(inner, limit=RateLimit(requests_per_minute=60))
    order: list[int] = []

    async def caller(n: int) -> None:
        await stage.send(make_call())
        order.append(n)

    async with anyio.create_task_group() as tg:
        for n in range(4):
            tg.start_soon(caller, n)
            await anyio.sleep(0.01)  # arrive in this order
    assert order == [0, 1, 2, 3]
    assert inner.times == [0.0, 1.0, 2.0, 3.0]


async def test_tokens_per_minute_waits_for_the_estimate() -> None:
    inner = Inner(finished_reply())
    stage = RateLimitStage(inner, limit=TOKENS)
    await stage.send(make_call(estimated_tokens=10))
    await stage.send(make_call(estimated_tokens=5))
    await stage.send(make_call(estimated_tokens=5))
    assert inner.times == [0.0, 0.5, 1.0]


async def test_a_request_larger_than_the_burst_waits_but_is_not_stuck() -> None:
    inner = Inner(finished_reply())
    stage = RateLimitStage(inner, limit=TOKENS)
    await stage.send(make_call(estimated_tokens=50))  # five times the bucket
    await stage.send(make_call(estimated_tokens=10))
    assert inner.times == [0.0, 5.0]  # the first went; its debt delays the next


@pytest.mark.parametrize(
    ("used", "next_at"),
    [
        (30, 3.0),  # 20 more than estimated: the next call waits for those too
        (10, 1.0),  # as estimated
        (2, 0.2),  # 8 fewer: given back
    ],
)
async def test_the_reported_usage_settles_the_estimate(used: int, next_at: float) -> None:
    usage = Usage(prompt_tokens=1, completion_tokens=used - 1, total_tokens=used)
    inner = Inner(finished_reply(usage))
    stage = RateLimitStage(inner, limit=TOKENS)
    await stage.send(make_call(estimated_tokens=10))
    await stage.send(make_call(estimated_tokens=10))
    assert inner.times == [0.0, next_at]


@pytest.mark.parametrize(
    "finish",
    [
        {"error": StreamError("cut", provider="fake")},
        {"usage": Usage()},  # a provider that reports no counts
        {},
    ],
    ids=["failed", "zero-usage", "no-usage"],
)
async def test_without_a_reported_count_the_estimate_stands(finish: dict[str, object]) -> None:
    inner = Inner(open_reply())
    stage = RateLimitStage(inner, limit=TOKENS)
    reply = await stage.send(make_call(estimated_tokens=10))
    reply.finish(**finish)  # type: ignore[arg-type]
    await stage.send(make_call(estimated_tokens=10))
    assert inner.times == [0.0, 1.0]


async def test_a_stream_settles_when_it_ends() -> None:
    inner = Inner(open_reply())
    stage = RateLimitStage(inner, limit=TOKENS)
    stream = await stage.send(make_call(estimated_tokens=10))
    second = await stage.send(make_call(estimated_tokens=10))  # the stream is still open
    await stream.aclose(Usage(prompt_tokens=5, completion_tokens=25, total_tokens=30))
    await second.aclose(Usage(prompt_tokens=5, completion_tokens=5, total_tokens=10))
    await stage.send(make_call(estimated_tokens=10))
    # 0 s: 10 taken; 1 s: 10 more; then the stream's 20 extra: 3 s more for the third.
    assert inner.times == [0.0, 1.0, 4.0]


async def test_a_failed_attempt_still_spends_its_request() -> None:
    """Each attempt (a retry too) goes through the limiter: the server saw it."""
    inner = Inner(APIConnectionError("reset", provider="fake"), finished_reply())
    stage = RateLimitStage(inner, limit=RateLimit(requests_per_minute=60))
    with pytest.raises(APIConnectionError):
        await stage.send(make_call())
    await stage.send(make_call())
    assert inner.times == [0.0, 1.0]
