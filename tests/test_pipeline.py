"""The request pipeline through the real `AsyncClient`: retries, Retry-After, the total
deadline, idempotency keys, the concurrency bound and error mapping.

Tests run on trio's MockClock: `anyio.sleep` and `anyio.current_time` use virtual time that
jumps as soon as every task sleeps, so waits are measured exactly and cost nothing.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from email.utils import formatdate
from typing import Any

import anyio
import httpx
import pytest
import respx

import llmrelay
from llmrelay import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    NotFoundError,
    OverloadedError,
    RateLimitError,
    ResponseError,
    RetryPolicy,
    Timeout,
    UnprocessableEntityError,
)

# Marking the module (not only each item, as conftest does after collection) lets anyio's
# plugin see the marker while collecting, so parametrized async tests keep their parameters.
pytestmark = pytest.mark.anyio

API_KEY = "sk-test-0123456789abcdef"
Handler = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    import trio.testing

    return ("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})


def ok(text: str = "hi", request_id: str = "req_ok") -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "id": "chatcmpl-1",
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        },
        headers={"x-request-id": request_id},
    )


def fail(
    status: int,
    message: str = "something went wrong",
    headers: dict[str, str] | None = None,
    request_id: str | None = None,
) -> httpx.Response:
    all_headers = dict(headers or {})
    if request_id:
        all_headers["x-request-id"] = request_id
    return httpx.Response(
        status,
        json={"error": {"message": message, "type": None, "code": None}},
        headers=all_headers,
    )


class Recorder:
    """A transport handler replaying scripted responses and recording what it was sent."""

    def __init__(self, *responses: httpx.Response | Exception) -> None:
        self.script = list(responses)
        self.requests: list[httpx.Request] = []
        self.times: list[float] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.times.append(anyio.current_time())
        # The last scripted response repeats forever.
        item = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(item, Exception):
            raise item
        return item

    @property
    def attempts(self) -> int:
        return len(self.requests)

    def gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.times, self.times[1:], strict=False)]


@asynccontextmanager
async def make_client(handler: Handler, **kwargs: Any) -> AsyncIterator[llmrelay.AsyncClient]:
    kwargs.setdefault("api_key", API_KEY)
    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http,
        llmrelay.AsyncClient(provider="openai", model="m", http_client=http, **kwargs) as client,
    ):
        yield client


# -- attempt counts per status -----------------------------------------------------------------


async def test_a_500_is_retried_until_it_succeeds() -> None:
    handler = Recorder(fail(500), fail(500), ok("done"))
    async with make_client(handler) as client:
        reply = await client.chat("Hello")
        assert reply.text == "done"
        assert reply.request_id == "req_ok"
        assert handler.attempts == 3
        assert client.usage.retries == 2
        assert client.usage.requests == 1
        assert client.usage.failures == 0


@pytest.mark.parametrize(
    ("status", "error", "attempts"),
    [
        (400, BadRequestError, 1),
        (401, AuthenticationError, 1),
        (404, NotFoundError, 1),
        (422, UnprocessableEntityError, 1),
        (501, InternalServerError, 1),
        (408, APIStatusError, 3),
        (429, RateLimitError, 3),
        (500, InternalServerError, 3),
        (502, InternalServerError, 3),
        (503, InternalServerError, 3),
        (504, InternalServerError, 3),
        (529, OverloadedError, 3),
    ],
)
async def test_attempts_per_status(status: int, error: type[APIStatusError], attempts: int) -> None:
    handler = Recorder(fail(status))
    async with make_client(handler) as client:
        with pytest.raises(error) as info:
            await client.chat("Hello")
        assert type(info.value) is error
        assert info.value.status_code == status
        assert handler.attempts == attempts
        assert client.usage.retries == attempts - 1
        assert client.usage.failures == 1
        assert client.usage.requests == 0


async def test_an_overloaded_529_is_retried_and_can_succeed() -> None:
    handler = Recorder(fail(529, "Overloaded"), ok())
    async with make_client(handler) as client:
        assert (await client.chat("Hello")).text == "hi"
    assert handler.attempts == 2


async def test_max_retries_bounds_the_attempts() -> None:
    handler = Recorder(fail(503))
    # Without the circuit breaker, which would stop the second call after 5 failures in a row.
    async with make_client(handler, max_retries=0, circuit_breaker=None) as client:
        with pytest.raises(InternalServerError):
            await client.chat("Hello")
        assert handler.attempts == 1
        # A per-call override wins over the client's setting.
        with pytest.raises(InternalServerError):
            await client.chat("Hello", max_retries=4)
        assert handler.attempts == 1 + 5
        assert client.usage.retries == 4


async def test_x_should_retry_overrides_the_status() -> None:
    handler = Recorder(fail(400, headers={"x-should-retry": "true"}), ok())
    async with make_client(handler) as client:
        assert (await client.chat("Hello")).text == "hi"
    assert handler.attempts == 2

    handler = Recorder(fail(503, headers={"x-should-retry": "false"}), ok())
    async with make_client(handler) as client:
        with pytest.raises(InternalServerError):
            await client.chat("Hello")
    assert handler.attempts == 1


async def test_connection_errors_are_retried_then_raised() -> None:
    handler = Recorder(httpx.ConnectError("connection refused"))
    async with make_client(handler) as client:
        with pytest.raises(APIConnectionError) as info:
            await client.chat("Hello")
        assert type(info.value) is APIConnectionError
        assert "openai" in str(info.value)
        assert "connection refused" in str(info.value)
        assert isinstance(info.value.__cause__, httpx.ConnectError)
        assert handler.attempts == 3
        assert client.usage.retries == 2


async def test_a_dropped_connection_then_success() -> None:
    handler = Recorder(httpx.RemoteProtocolError("peer closed connection"), ok())
    async with make_client(handler) as client:
        assert (await client.chat("Hello")).text == "hi"
    assert handler.attempts == 2


async def test_read_timeouts_are_retried_then_raised_as_timeouts() -> None:
    handler = Recorder(httpx.ReadTimeout("timed out"))
    async with make_client(handler) as client:
        with pytest.raises(APITimeoutError) as info:
            await client.chat("Hello")
        assert "read" in str(info.value)
        assert isinstance(info.value.__cause__, httpx.ReadTimeout)
    assert handler.attempts == 3


def test_retries_work_on_asyncio_too() -> None:
    """The rest of this module runs on trio's fake clock; the same road works on asyncio."""
    handler = Recorder(fail(500), httpx.ConnectError("refused"), ok())

    async def main() -> None:
        async with make_client(handler, retry=RetryPolicy(backoff_base=0.001)) as client:
            assert (await client.chat("Hello")).text == "hi"
            assert client.usage.retries == 2

    anyio.run(main, backend="asyncio")
    assert handler.attempts == 3


async def test_respx_on_the_default_transport() -> None:
    """Without `http_client=` the client builds its own pool; respx still intercepts it."""
    with respx.mock(base_url="https://api.openai.com/v1", assert_all_called=True) as router:
        route = router.post("/chat/completions").mock(
            side_effect=[fail(503, headers={"retry-after": "1"}), ok("via respx")]
        )
        async with llmrelay.AsyncClient(provider="openai", api_key=API_KEY, model="m") as client:
            t0 = anyio.current_time()
            reply = await client.chat("Hello")
            elapsed = anyio.current_time() - t0
        assert reply.text == "via respx"
        assert route.call_count == 2
        assert elapsed == pytest.approx(1.0)
        sent = route.calls[0].request
        assert sent.headers["authorization"] == f"Bearer {API_KEY}"
        assert json.loads(sent.content)["messages"] == [{"role": "user", "content": "Hello"}]


# -- Retry-After and backoff on the virtual clock ----------------------------------------------


async def test_retry_after_seconds_is_waited_exactly() -> None:
    handler = Recorder(fail(429, headers={"retry-after": "2"}), ok())
    async with make_client(handler) as client:
        t0 = anyio.current_time()
        await client.chat("Hello")
        elapsed = anyio.current_time() - t0
    assert handler.gaps() == [pytest.approx(2.0, abs=1e-9)]
    assert elapsed == pytest.approx(2.0, abs=1e-9)


async def test_retry_after_ms_is_waited_exactly() -> None:
    handler = Recorder(
        fail(429, headers={"retry-after-ms": "1500", "retry-after": "9"}),
        fail(503, headers={"retry-after-ms": "250"}),
        ok(),
    )
    async with make_client(handler) as client:
        await client.chat("Hello")
    assert handler.gaps() == [pytest.approx(1.5), pytest.approx(0.25)]


async def test_retry_after_as_an_http_date() -> None:
    whole_second = math.floor(time.time())
    date = formatdate(whole_second + 3, usegmt=True)
    handler = Recorder(fail(503, headers={"retry-after": date}), ok())
    async with make_client(handler) as client:
        await client.chat("Hello")
    (gap,) = handler.gaps()
    # The date has one-second resolution and is read against the wall clock: between 2 and 3 s
    # (1 to 2 s if the wall clock ticks over a second meanwhile). The backoff would be <= 0.5 s.
    assert 1.0 < gap <= 3.0


async def test_retry_after_zero_retries_at_once() -> None:
    handler = Recorder(fail(429, headers={"retry-after": "0"}), ok())
    async with make_client(handler) as client:
        await client.chat("Hello")
    assert handler.gaps() == [0.0]


async def test_retry_after_above_the_cap_raises_at_once_with_retry_after() -> None:
    handler = Recorder(fail(429, "slow down", headers={"retry-after": "120"}), ok())
    async with make_client(handler) as client:
        t0 = anyio.current_time()
        with pytest.raises(RateLimitError) as info:
            await client.chat("Hello")
        assert anyio.current_time() - t0 == 0.0
    assert handler.attempts == 1
    assert info.value.retry_after == 120.0
    assert "slow down" in str(info.value)


async def test_a_higher_retry_after_cap_waits_the_full_time() -> None:
    handler = Recorder(fail(429, headers={"retry-after": "120"}), ok())
    async with make_client(handler, retry=RetryPolicy(retry_after_cap=300)) as client:
        t0 = anyio.current_time()
        await client.chat("Hello")
        assert anyio.current_time() - t0 == pytest.approx(120.0)
    assert handler.attempts == 2


async def test_retry_after_is_set_on_the_error_when_retries_run_out() -> None:
    handler = Recorder(fail(429, headers={"retry-after": "1"}))
    async with make_client(handler) as client:
        t0 = anyio.current_time()
        with pytest.raises(RateLimitError) as info:
            await client.chat("Hello")
        assert anyio.current_time() - t0 == pytest.approx(2.0)
    assert handler.attempts == 3
    assert info.value.retry_after == 1.0


async def test_backoff_without_retry_after_stays_within_the_jitter_bounds() -> None:
    handler = Recorder(fail(500))
    first: list[float] = []
    second: list[float] = []
    async with make_client(handler, circuit_breaker=None) as client:  # 120 failures in a row
        for _ in range(40):
            handler.times.clear()
            with pytest.raises(InternalServerError):
                await client.chat("Hello")
            gap1, gap2 = handler.gaps()
            first.append(gap1)
            second.append(gap2)
    assert all(0.0 <= g <= 0.5 for g in first)
    assert all(0.0 <= g <= 1.0 for g in second)
    # Full jitter really spreads the waits (a fixed wait would give one value).
    assert len(set(first)) > 30
    assert max(first) > 0.25
    assert max(second) > 0.5


# -- the total deadline -------------------------------------------------------------------------


async def test_the_deadline_stops_retries_that_would_pass_it() -> None:
    handler = Recorder(fail(503, "busy", headers={"retry-after": "0.6"}))
    async with make_client(handler, timeout=Timeout(total=1.0), max_retries=5) as client:
        t0 = anyio.current_time()
        with pytest.raises(InternalServerError) as info:
            await client.chat("Hello")
        elapsed = anyio.current_time() - t0
    # Attempt 1 at 0.0 s, attempt 2 at 0.6 s; a third at 1.2 s would pass the deadline.
    assert handler.attempts == 2
    assert elapsed == pytest.approx(0.6)
    assert info.value.retry_after == pytest.approx(0.6)


async def test_a_float_timeout_is_the_total_deadline() -> None:
    handler = Recorder(fail(503, headers={"retry-after": "0.6"}))
    async with make_client(handler, timeout=1.0, max_retries=5) as client:
        assert client.timeout == Timeout(total=1.0)
        with pytest.raises(InternalServerError):
            await client.chat("Hello")
    assert handler.attempts == 2


async def test_the_deadline_also_bounds_the_backoff() -> None:
    handler = Recorder(fail(500))
    async with make_client(handler, max_retries=50, circuit_breaker=None) as client:
        for _ in range(20):
            t0 = anyio.current_time()
            with pytest.raises(InternalServerError):
                await client.chat("Hello", timeout=0.3)
            assert anyio.current_time() - t0 < 0.3


async def test_a_slow_response_times_out_at_the_deadline() -> None:
    attempts = 0

    async def slow(request: httpx.Request) -> httpx.Response:
        nonlocal attempts
        attempts += 1
        await anyio.sleep(5)
        return ok()

    async with make_client(slow, timeout=Timeout(total=1.0)) as client:
        t0 = anyio.current_time()
        with pytest.raises(APITimeoutError) as info:
            await client.chat("Hello")
        elapsed = anyio.current_time() - t0
        assert "openai" in str(info.value)
        assert client.usage.failures == 1
    assert elapsed == pytest.approx(1.0)
    assert attempts == 1


async def test_the_deadline_covers_every_attempt_and_backoff() -> None:
    """Two fast failures, then a slow attempt: the deadline counts from the start of the call."""
    calls = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        await anyio.sleep(0.2)
        if calls < 3:
            return fail(503, headers={"retry-after": "0.3"})
        await anyio.sleep(10)
        return ok()

    async with make_client(handler, timeout=Timeout(total=2.0)) as client:
        t0 = anyio.current_time()
        with pytest.raises(APITimeoutError):
            await client.chat("Hello")
        assert anyio.current_time() - t0 == pytest.approx(2.0)
    assert calls == 3


async def test_the_deadline_covers_waiting_for_a_concurrency_slot() -> None:
    """A call queued behind a busy slot still fails at its own deadline."""

    async def handler(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content)["messages"][0]["content"] == "slow":
            await anyio.sleep(5)
        return ok()

    outcome: dict[str, Any] = {}
    async with make_client(handler, max_concurrency=1) as client:
        t0 = anyio.current_time()

        async def fast() -> None:
            try:
                await client.chat("fast", timeout=1.0)
                outcome["fast"] = "ok"
            except APITimeoutError as exc:
                outcome["fast"] = exc
            outcome["fast at"] = anyio.current_time() - t0

        async with anyio.create_task_group() as tg:
            tg.start_soon(client.chat, "slow")
            await anyio.sleep(0.1)
            tg.start_soon(fast)
    assert isinstance(outcome["fast"], APITimeoutError)
    assert outcome["fast at"] == pytest.approx(1.1)


# -- idempotency keys ---------------------------------------------------------------------------


async def test_every_attempt_of_a_call_carries_the_same_idempotency_key() -> None:
    handler = Recorder(fail(500), httpx.ConnectError("refused"), ok(), fail(500), ok())
    async with make_client(handler) as client:
        await client.chat("one")
        await client.chat("two")
    keys = [r.headers.get_list("idempotency-key") for r in handler.requests]
    assert all(len(k) == 1 and k[0] for k in keys)
    first, second = [k[0] for k in keys[:3]], [k[0] for k in keys[3:]]
    assert len(set(first)) == 1
    assert len(set(second)) == 1
    assert first[0] != second[0]


async def test_a_callers_idempotency_key_is_used_and_not_doubled() -> None:
    handler = Recorder(fail(500), ok())
    async with make_client(handler) as client:
        await client.chat("Hello", extra_headers={"Idempotency-Key": "mine-123"})
    for request in handler.requests:
        assert request.headers.get_list("idempotency-key") == ["mine-123"]


async def test_caller_headers_replace_defaults_whatever_their_case() -> None:
    handler = Recorder(ok())
    async with make_client(handler, headers={"X-Team": "a"}) as client:
        await client.chat("Hello", extra_headers={"x-team": "b", "Authorization": "Bearer other"})
    (request,) = handler.requests
    assert request.headers.get_list("x-team") == ["b"]
    assert request.headers.get_list("authorization") == ["Bearer other"]


async def test_get_requests_carry_no_idempotency_key() -> None:
    handler = Recorder(httpx.Response(200, json={"object": "list", "data": [{"id": "m1"}]}))
    async with make_client(handler) as client:
        assert [m.id for m in await client.models()] == ["m1"]
    assert "idempotency-key" not in handler.requests[0].headers


# -- the concurrency bound ------------------------------------------------------------------------


async def test_max_concurrency_bounds_requests_in_flight() -> None:
    in_flight = 0
    peak = 0
    served = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak, served
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            await anyio.sleep(0.1)
        finally:
            in_flight -= 1
        served += 1
        return ok()

    async with make_client(handler, max_concurrency=3) as client:
        t0 = anyio.current_time()
        async with anyio.create_task_group() as tg:
            for i in range(20):
                tg.start_soon(client.chat, f"prompt {i}")
        elapsed = anyio.current_time() - t0
    assert peak == 3
    assert served == 20
    assert elapsed == pytest.approx(0.1 * math.ceil(20 / 3))


async def test_a_backoff_sleep_does_not_hold_a_concurrency_slot() -> None:
    a_failed = anyio.Event()
    done: list[tuple[str, float]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        prompt = json.loads(request.content)["messages"][0]["content"]
        if prompt == "A" and not a_failed.is_set():
            a_failed.set()
            return fail(429, headers={"retry-after": "5"})
        return ok(prompt)

    async with make_client(handler, max_concurrency=1) as client:
        t0 = anyio.current_time()

        async def call(prompt: str) -> None:
            reply = await client.chat(prompt)
            done.append((reply.text, anyio.current_time() - t0))

        async with anyio.create_task_group() as tg:
            tg.start_soon(call, "A")
            await a_failed.wait()
            tg.start_soon(call, "B")
    assert [name for name, _ in done] == ["B", "A"]
    assert done[0][1] == pytest.approx(0.0)
    assert done[1][1] == pytest.approx(5.0)


# -- bodies we cannot read, and what error messages say --------------------------------------------


async def test_a_200_that_is_not_json_is_a_response_error() -> None:
    handler = Recorder(
        httpx.Response(200, text="<html>gateway</html>", headers={"x-request-id": "req_html"})
    )
    async with make_client(handler) as client:
        with pytest.raises(ResponseError) as info:
            await client.chat("Hello")
    assert not isinstance(info.value, ValueError)
    assert "openai" in str(info.value)
    assert "not JSON" in str(info.value)
    assert info.value.request_id == "req_html"
    assert handler.attempts == 1


@pytest.mark.parametrize(
    "body",
    [{"id": "x", "object": "chat.completion"}, {"choices": []}, [1, 2], "text", None],
    ids=["no choices", "empty choices", "a list", "a string", "null"],
)
async def test_a_200_json_without_choices_is_a_response_error(body: Any) -> None:
    handler = Recorder(httpx.Response(200, json=body))
    async with make_client(handler) as client:
        with pytest.raises(ResponseError) as info:
            await client.chat("Hello")
    assert "openai" in str(info.value)
    assert handler.attempts == 1


async def test_status_errors_name_provider_status_message_and_request_id() -> None:
    handler = Recorder(
        fail(500, "The server had an error processing your request", request_id="req_abc")
    )
    async with make_client(handler, max_retries=0) as client:
        with pytest.raises(InternalServerError) as info:
            await client.chat("Hello")
    err = info.value
    text = str(err)
    assert "openai" in text
    assert "500" in text
    assert "The server had an error processing your request" in text
    assert "req_abc" in text
    assert (err.status_code, err.provider, err.request_id) == (500, "openai", "req_abc")
    assert err.body == {
        "error": {
            "message": "The server had an error processing your request",
            "type": None,
            "code": None,
        }
    }


async def test_a_non_json_error_body_is_the_message() -> None:
    handler = Recorder(httpx.Response(502, text="Bad Gateway from the proxy"))
    async with make_client(handler, max_retries=0) as client:
        with pytest.raises(InternalServerError) as info:
            await client.chat("Hello")
    assert "502" in str(info.value)
    assert "Bad Gateway from the proxy" in str(info.value)


@pytest.mark.parametrize(
    "response",
    [
        fail(401, f"Incorrect API key provided: {API_KEY}. Find your key at ..."),
        httpx.Response(401, text=f"bad key {API_KEY}"),
        # The key straddles the point where long messages are cut.
        httpx.Response(400, text="x" * 490 + API_KEY + "y" * 100),
        httpx.Response(400, json={"error": {"code": 400, "detail": "x" * 465 + API_KEY}}),
        httpx.Response(200, text="not json " + API_KEY),
        httpx.Response(200, text="z" * 190 + API_KEY),
    ],
    ids=["json message", "text body", "cut text", "cut json", "200 not json", "200 cut"],
)
async def test_error_messages_never_contain_the_key(response: httpx.Response) -> None:
    handler = Recorder(response)
    async with make_client(handler, max_retries=0) as client:
        with pytest.raises(llmrelay.LLMError) as info:
            await client.chat("Hello")
    err = info.value
    for text in [str(err), repr(err), err.message, repr(getattr(err, "body", None))]:
        assert API_KEY not in text
        assert API_KEY[:8] not in text  # not even the start of it


async def test_usage_counts_retries_across_calls() -> None:
    handler = Recorder(fail(500), ok(), fail(503), fail(503), ok())
    async with make_client(handler) as client:
        await client.chat("one")
        await client.chat("two")
        assert client.usage.retries == 3
        assert client.usage.requests == 2
        assert client.usage.failures == 0
