"""Limits that follow the server: `x-ratelimit-*`, `anthropic-ratelimit-*` and a 429's
`Retry-After` hold every later request until the announced reset.

The client tests run on trio's MockClock: a 20 s reset costs nothing and is measured exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio
import httpx
import pytest

import llmrelay
from _fake_openai import OK_BODY, mock_clock_backend, openai_client
from llmrelay import RateLimit, RateLimitError
from llmrelay._server_limits import parse_duration, parse_reset_time, server_wait

NOW = 1_765_000_000.0  # an epoch second for the RFC 3339 cases


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("20ms", 0.02),
        ("1h2m3.5s", 3723.5),
        ("7.66s", 7.66),
        ("0s", 0.0),
        ("2", 2.0),
        ("1.5", 1.5),
        ("250us", 0.00025),
        ("1m30.012s", 90.012),
        ("", None),
        ("soon", None),
        ("1x", None),
        ("s1", None),
        ("1s garbage", None),
        ("-1s", None),
        ("nan", None),
        ("inf", None),
    ],
)
def test_openai_durations(text: str, seconds: float | None) -> None:
    assert parse_duration(text) == (pytest.approx(seconds) if seconds is not None else None)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2025-12-06T05:46:50Z", 10.0),
        ("2025-12-06T05:46:40.5+00:00", 0.5),
        ("2025-12-06T06:46:40+01:00", 0.0),
        ("2025-12-06T05:40:00Z", 0.0),  # passed
        ("2025-12-06T05:46:50", None),  # no zone: unknowable
        ("tomorrow", None),
    ],
)
def test_anthropic_reset_times(text: str, seconds: float | None) -> None:
    assert parse_reset_time(text, NOW) == seconds


@pytest.mark.parametrize(
    ("headers", "status", "wait"),
    [
        ({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "20s"}, 200, 20.0),
        ({"x-ratelimit-remaining-requests": "3", "x-ratelimit-reset-requests": "20s"}, 200, None),
        ({"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "6m0s"}, 200, 360.0),
        (
            {
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-requests": "1s",
                "x-ratelimit-remaining-tokens": "0",
                "x-ratelimit-reset-tokens": "20ms",
            },
            200,
            1.0,
        ),
        ({"x-ratelimit-remaining-requests": "0"}, 200, None),  # no reset: nothing to go by
        ({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "?"}, 200, None),
        (
            {
                "anthropic-ratelimit-requests-remaining": "0",
                "anthropic-ratelimit-requests-reset": "2025-12-06T05:46:52Z",
            },
            200,
            12.0,
        ),
        (
            {
                "anthropic-ratelimit-output-tokens-remaining": "0",
                "anthropic-ratelimit-output-tokens-reset": "2025-12-06T05:46:45Z",
            },
            200,
            5.0,
        ),
        ({"retry-after": "7"}, 429, 7.0),
        ({"retry-after-ms": "1500"}, 429, 1.5),
        ({"retry-after": "7"}, 503, None),  # a 5xx's Retry-After is the retry stage's business
        ({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "3h"}, 200, None),
        ({}, 200, None),
    ],
)
def test_server_wait(headers: dict[str, str], status: int, wait: float | None) -> None:
    assert server_wait(headers, status, NOW) == wait


# -- through the client, on a fake clock ------------------------------------------------------

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    return mock_clock_backend()


class Server:
    """Answers every request with `headers` (a 200, or `status` for the first `failures`),
    recording when each request arrives."""

    def __init__(self, headers: Mapping[str, str], *, status: int = 200, failures: int = 0) -> None:
        self.t0 = anyio.current_time()
        self.times: list[float] = []
        self.headers = dict(headers)
        self.status = status
        self.failures = failures

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.times.append(anyio.current_time() - self.t0)
        if len(self.times) <= self.failures:
            body = {"error": {"message": "slow down", "type": "requests"}}
            return httpx.Response(self.status, json=body, headers=self.headers)
        return httpx.Response(200, json=OK_BODY, headers=self.headers)

    def sent_before(self, seconds: float) -> int:
        return sum(1 for t in self.times if t < seconds)


SPENT_FOR_20S = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "20s"}


async def test_the_issue_repro_a_spent_budget_holds_requests_until_its_reset() -> None:
    # Every reply says: no requests left, reset in 20 s. rpm=120 alone would send 21 in 10 s.
    server = Server(SPENT_FOR_20S)
    async with openai_client(server, rate_limit=RateLimit(requests_per_minute=120)) as client:
        with anyio.move_on_after(10):
            while True:
                await client.chat("Hello")
    assert server.times == [0.0]


async def test_concurrent_calls_wait_for_the_reset_too() -> None:
    server = Server(SPENT_FOR_20S)
    limit = RateLimit(requests_per_minute=120)
    async with openai_client(server, rate_limit=limit) as client, anyio.create_task_group() as tg:
        for _ in range(30):
            tg.start_soon(client.chat, "Hello")
    # At most the first burst (rpm=120 holds 2 at once) goes before a reply tells the client
    # about the budget; then one request per reset.
    assert 1 <= server.sent_before(10) <= 2
    later = server.times[server.sent_before(10) :][:3]
    assert later == pytest.approx([20.0, 40.0, 60.0])


async def test_without_follow_server_the_headers_are_ignored() -> None:
    server = Server(SPENT_FOR_20S)
    limit = RateLimit(requests_per_minute=120, follow_server=False)
    async with openai_client(server, rate_limit=limit) as client:
        with anyio.move_on_after(10):
            while True:
                await client.chat("Hello")
    assert server.sent_before(10) == 21  # the client's own pace only (2 at once, then 2/s)


async def test_a_rate_limit_with_no_numbers_only_follows_the_server() -> None:
    server = Server({"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "1m0s"})
    async with openai_client(server, rate_limit=RateLimit()) as client:
        for _ in range(3):
            await client.chat("Hello")
    assert server.times == pytest.approx([0.0, 60.0, 120.0])


async def test_a_budget_with_some_left_sends_at_the_clients_own_pace() -> None:
    server = Server({"x-ratelimit-remaining-requests": "5", "x-ratelimit-reset-requests": "20s"})
    async with openai_client(server, rate_limit=RateLimit(requests_per_minute=60)) as client:
        for _ in range(3):
            await client.chat("Hello")
    assert server.times == pytest.approx([0.0, 1.0, 2.0])


async def test_anthropic_headers_hold_requests_until_the_rfc3339_reset() -> None:
    import time

    reset = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 30))
    headers = {
        "anthropic-ratelimit-requests-remaining": "0",
        "anthropic-ratelimit-requests-reset": reset,
    }
    server = Server(headers)
    async with openai_client(server, rate_limit=RateLimit()) as client:
        await client.chat("Hello")
        await client.chat("Hello")
    # Whole seconds in the header, wall clock against the fake loop clock: 29-30 s later.
    assert 28.5 <= server.times[1] <= 30.5


async def test_a_429_retry_after_holds_every_other_call_as_well() -> None:
    server = Server({"retry-after": "5"}, status=429, failures=1)
    limit = RateLimit(requests_per_minute=6000)
    async with openai_client(server, rate_limit=limit) as client:
        await client.chat("Hello")  # 429, retried after 5 s
        assert server.times == pytest.approx([0.0, 5.0])

    server = Server({"retry-after": "5"}, status=429, failures=1)
    async with openai_client(server, rate_limit=limit, max_retries=0) as client:
        with pytest.raises(RateLimitError):
            await client.chat("Hello")
        await client.chat("Hello")  # another call: held until the 429's Retry-After
    assert server.times == pytest.approx([0.0, 5.0])


# -- adaptive concurrency (AIMD) --------------------------------------------------------------


class Narrow:
    """A server that takes `capacity` requests at once (each for 1 s) and answers 429 (no
    Retry-After) beyond that; it records the most it ever had in flight."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.in_flight = 0
        self.rejected = 0
        self.served = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.in_flight >= self.capacity:
            self.rejected += 1
            return httpx.Response(429, json={"error": {"message": "too many at once"}})
        self.in_flight += 1
        try:
            await anyio.sleep(1.0)
        finally:
            self.in_flight -= 1
        self.served += 1
        return httpx.Response(200, json=OK_BODY)


@pytest.mark.parametrize("adaptive", [False, True])
async def test_adaptive_concurrency_finds_what_the_server_takes(adaptive: bool) -> None:
    server = Narrow(capacity=4)
    limit = RateLimit(adaptive_concurrency=adaptive)
    retry = llmrelay.RetryPolicy(max_retries=20, backoff_base=0.5, backoff_cap=2.0)
    async with openai_client(server, rate_limit=limit, max_concurrency=16, retry=retry) as client:
        replies = await client.batch([f"prompt {i}" for i in range(60)])
    assert len(replies) == server.served == 60
    print(f"adaptive={adaptive}: {server.rejected} requests refused with 429")
    if adaptive:
        # Halved on the first burst of 429s (16 → 8 → 4), then it stays near what fits.
        assert server.rejected <= 40
    else:
        assert server.rejected > 100  # 16 at a time against room for 4, again and again


def test_adaptive_concurrency_must_be_a_bool() -> None:
    with pytest.raises(llmrelay.ConfigError, match="adaptive_concurrency must be a bool"):
        RateLimit(adaptive_concurrency="yes")  # type: ignore[arg-type]


async def test_a_waiter_cancelled_while_waiting_for_room_leaves_none_taken() -> None:
    from llmrelay._aimd import AdaptiveConcurrency

    gate = AdaptiveConcurrency(4)
    windows = [await gate.acquire() for _ in range(4)]
    gate.overloaded(windows[0])  # 4 → 2 (the others of that window do not count again)
    gate.overloaded(windows[1])
    assert (gate.limit, gate.in_flight) == (2.0, 4)
    for _ in range(3):
        gate.release()
    assert gate.in_flight == 1
    await gate.acquire()  # room for a second
    with anyio.move_on_after(1):
        await gate.acquire()  # no room for a third: cancelled while waiting
    gate.release()
    gate.release()
    assert gate.in_flight == 0
    assert [await gate.acquire() for _ in range(2)] == [1, 1]  # both there at once
