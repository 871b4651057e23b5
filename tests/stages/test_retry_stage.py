"""`RetryStage` over a fake inner stage: which failures are retried and how often, the waits
between attempts (backoff, `Retry-After`, its cap), the total deadline, and the `retries` /
`failures` counters (a failure is counted once, a stream's too)."""

from __future__ import annotations

import logging
import random
import time
from email.utils import formatdate

import anyio
import pytest

from llmrelay import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    BadRequestError,
    ConfigError,
    InternalServerError,
    LLMError,
    RateLimitError,
    ResponseError,
    RetryPolicy,
    StreamError,
    Usage,
)
from llmrelay._usage import UsageTotals
from llmrelay.stages import Call, Reply
from llmrelay.stages._retry import RetryStage

from ._fakes import Inner, finished_reply, make_call, open_reply, status_error

pytestmark = pytest.mark.anyio


class FixedRandom(random.Random):
    """Full jitter picks a uniform fraction of the backoff ceiling; this one always picks
    `value`, so waits are exact."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def random(self) -> float:
        return self.value


def retry_over(inner: Inner, jitter: float | None = 0.5) -> tuple[RetryStage, UsageTotals]:
    usage = UsageTotals()
    stage = RetryStage(inner, usage=usage, provider="fake")
    if jitter is not None:
        stage._rand = FixedRandom(jitter)
    return stage, usage


async def test_a_success_passes_through_untouched() -> None:
    reply = Reply(200, {}, "req_1")
    inner = Inner(reply)
    stage, usage = retry_over(inner)
    assert await stage.send(make_call()) is reply
    assert inner.attempts == [0]
    assert (usage.retries, usage.failures) == (0, 0)


RETRYABLE: list[LLMError] = [
    *(status_error(status) for status in (408, 429, 500, 502, 503, 504, 529)),
    APIConnectionError("fake: connection refused", provider="fake"),
    APITimeoutError("fake: reading timed out", provider="fake"),
]


@pytest.mark.parametrize("error", RETRYABLE, ids=lambda e: type(e).__name__ + str(e)[:14])
async def test_retryable_failures_are_retried_up_to_max_retries(error: LLMError) -> None:
    inner = Inner(error)
    stage, usage = retry_over(inner)
    with pytest.raises(type(error)) as info:
        await stage.send(make_call(retry=RetryPolicy(max_retries=3)))
    assert info.value is error  # the last failure, as it came
    assert inner.attempts == [0, 1, 2, 3]
    assert (usage.retries, usage.failures) == (3, 1)  # one call failed, once


NOT_RETRYABLE: list[LLMError] = [
    *(status_error(status) for status in (400, 401, 403, 404, 409, 422)),
    ResponseError("fake returned status 200 with a body that is not JSON", provider="fake"),
    StreamError("fake stream failed", provider="fake"),
    ConfigError("bad argument"),
]


@pytest.mark.parametrize("error", NOT_RETRYABLE, ids=lambda e: type(e).__name__ + str(e)[:14])
async def test_other_failures_are_raised_at_once(error: LLMError) -> None:
    inner = Inner(error)
    stage, usage = retry_over(inner)
    with pytest.raises(type(error)):
        await stage.send(make_call())
    assert inner.attempts == [0]
    assert (usage.retries, usage.failures) == (0, 1)
    assert anyio.current_time() == 0


async def test_a_call_that_recovers_counts_retries_but_no_failure() -> None:
    reply = Reply(200, {}, "req_ok")
    inner = Inner(status_error(503), APIConnectionError("reset", provider="fake"), reply)
    stage, usage = retry_over(inner)
    assert await stage.send(make_call()) is reply
    assert inner.attempts == [0, 1, 2]
    assert (usage.retries, usage.failures) == (2, 0)


async def test_max_retries_zero_means_one_attempt() -> None:
    inner = Inner(status_error(503))
    stage, usage = retry_over(inner)
    with pytest.raises(InternalServerError):
        await stage.send(make_call(retry=RetryPolicy(max_retries=0)))
    assert inner.attempts == [0]
    assert (usage.retries, usage.failures) == (0, 1)


async def test_backoff_doubles_up_to_its_cap() -> None:
    inner = Inner(status_error(500))
    stage, _ = retry_over(inner, jitter=0.5)
    policy = RetryPolicy(max_retries=5, backoff_base=1.0, backoff_cap=3.0)
    with pytest.raises(InternalServerError):
        await stage.send(make_call(retry=policy))
    # Half of min(cap, base * 2**n): 0.5, 1, then the 3 s cap.
    assert inner.gaps() == [0.5, 1.0, 1.5, 1.5, 1.5]


async def test_backoff_is_jittered_below_its_ceiling() -> None:
    inner = Inner(APIConnectionError("reset", provider="fake"))
    stage, _ = retry_over(inner, jitter=None)  # the stage's own random source
    policy = RetryPolicy(max_retries=6, backoff_base=0.5, backoff_cap=8.0)
    with pytest.raises(APIConnectionError):
        await stage.send(make_call(retry=policy))
    ceilings = [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert all(0 <= gap < ceiling for gap, ceiling in zip(inner.gaps(), ceilings, strict=True))


@pytest.mark.parametrize(
    ("error", "wait"),
    [
        (status_error(429, {"retry-after": "3"}), 3.0),
        (status_error(503, {"retry-after": "0"}), 0.0),
        (status_error(429, {"retry-after-ms": "250"}), 0.25),
        (status_error(429, {"retry-after-ms": "250", "retry-after": "9"}), 0.25),
        (status_error(429, {"retry-after": "soon"}), 0.25),  # unusable: the backoff
        (status_error(429, retry_after=2.5), 2.5),  # a wait found in the body (Gemini)
        (status_error(429, {"retry-after": "1"}, retry_after=2.5), 1.0),  # the header wins
    ],
    ids=["seconds", "zero", "ms", "ms-wins", "garbage", "body-hint", "header-over-hint"],
)
async def test_the_server_requested_wait_replaces_the_backoff(
    error: APIStatusError, wait: float
) -> None:
    inner = Inner(error, Reply(200, {}, "req_ok"))
    stage, usage = retry_over(inner, jitter=0.5)
    await stage.send(make_call(retry=RetryPolicy(backoff_base=0.5)))
    assert inner.gaps() == [wait]
    assert usage.retries == 1


async def test_retry_after_as_an_http_date() -> None:
    error = status_error(503, {"retry-after": formatdate(time.time() + 10, usegmt=True)})
    inner = Inner(error, Reply(200, {}, "req_ok"))
    stage, _ = retry_over(inner)
    await stage.send(make_call())
    (gap,) = inner.gaps()
    assert 8 < gap <= 10  # the date has whole seconds


@pytest.mark.parametrize(
    ("error", "total", "asked"),
    [
        (status_error(429, {"retry-after": "120"}), None, 120.0),  # above the 60 s cap
        (status_error(429, retry_after=90.0), None, 90.0),
        (status_error(503, {"retry-after": "20"}), 10.0, 20.0),  # longer than the time left
    ],
    ids=["header-above-cap", "hint-above-cap", "past-the-deadline"],
)
async def test_a_wait_too_long_fails_at_once_and_tells_how_long(
    error: APIStatusError, total: float | None, asked: float
) -> None:
    inner = Inner(error)
    stage, usage = retry_over(inner)
    with pytest.raises(type(error)) as info:
        await stage.send(make_call(total=total))
    assert inner.attempts == [0]
    assert anyio.current_time() == 0  # no waiting for a retry that will not happen
    assert info.value.retry_after == asked  # the caller can schedule its own retry
    assert (usage.retries, usage.failures) == (0, 1)


async def test_the_retry_after_cap_is_the_policy_s() -> None:
    inner = Inner(status_error(429, {"retry-after": "120"}), Reply(200, {}, "req_ok"))
    stage, _ = retry_over(inner)
    await stage.send(make_call(retry=RetryPolicy(retry_after_cap=300)))
    assert inner.gaps() == [120.0]


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (status_error(503, {"x-should-retry": "false"}), False),
        (status_error(400, {"x-should-retry": "true"}), True),
        (status_error(429, should_retry=False), False),  # e.g. a spend limit: final
        (status_error(409, should_retry=True), True),
        (status_error(429, {"x-should-retry": "true"}, should_retry=False), True),  # header first
    ],
    ids=["header-false", "header-true", "body-false", "body-true", "header-over-body"],
)
async def test_the_server_s_word_on_retrying_decides(error: APIStatusError, retried: bool) -> None:
    inner = Inner(error, Reply(200, {}, "req_ok"))
    stage, _ = retry_over(inner)
    if retried:
        await stage.send(make_call())
    else:
        with pytest.raises(type(error)):
            await stage.send(make_call())
    assert len(inner.attempts) == (2 if retried else 1)


async def test_the_total_deadline_cuts_a_hanging_attempt() -> None:
    async def hang(call: Call) -> Reply:
        await anyio.sleep_forever()
        raise AssertionError

    inner = Inner(hang)
    stage, usage = retry_over(inner)
    with pytest.raises(APITimeoutError, match="total timeout ran out"):
        await stage.send(make_call(total=5.0))
    assert anyio.current_time() == 5.0
    assert inner.deadlines == [5.0]  # below, the stream opener reads under the same deadline
    assert (usage.retries, usage.failures) == (0, 1)


async def test_the_total_deadline_covers_every_attempt_and_wait() -> None:
    async def slow_failure(call: Call) -> Reply:
        await anyio.sleep(2.0)
        raise APIConnectionError("fake: connection reset", provider="fake")

    inner = Inner(slow_failure)
    stage, usage = retry_over(inner)
    policy = RetryPolicy(max_retries=10, backoff_base=0.0)
    with pytest.raises(APITimeoutError):
        await stage.send(make_call(total=5.0, retry=policy))
    assert inner.times == [0.0, 2.0, 4.0]  # the third attempt is cut at 5 s
    assert anyio.current_time() == 5.0
    assert inner.deadlines == [5.0, 5.0, 5.0]  # one deadline for the whole call
    assert (usage.retries, usage.failures) == (2, 1)


async def test_no_total_timeout_means_no_deadline() -> None:
    inner = Inner(Reply(200, {}, None))
    stage, _ = retry_over(inner)
    call = make_call(total=None)
    await stage.send(call)
    assert inner.deadlines == [None]
    assert call.deadline is None


async def test_a_stream_that_fails_later_is_one_failure() -> None:
    inner = Inner(status_error(503), open_reply())
    stage, usage = retry_over(inner)
    reply = await stage.send(make_call(stream=True))
    assert (usage.retries, usage.failures) == (1, 0)  # open: nothing has failed yet
    error = StreamError("fake stream failed after 5 characters", provider="fake")
    reply.finish(error=error)
    reply.finish(error=error)  # finishing twice changes nothing
    await reply.aclose(error=error)
    assert (usage.retries, usage.failures) == (1, 1)


async def test_a_stream_that_completes_is_no_failure() -> None:
    inner = Inner(open_reply())
    stage, usage = retry_over(inner)
    reply = await stage.send(make_call(stream=True))
    await reply.aclose(Usage(prompt_tokens=1, completion_tokens=2, total_tokens=3))
    await reply.aclose(error=StreamError("late", provider="fake"))  # already finished
    assert usage.failures == 0


async def test_a_finished_call_is_no_failure() -> None:
    inner = Inner(finished_reply(Usage(total_tokens=3)))
    stage, usage = retry_over(inner)
    await stage.send(make_call())
    assert (usage.retries, usage.failures) == (0, 0)


async def test_cancelling_during_the_backoff_stops_quietly() -> None:
    inner = Inner(status_error(429, {"retry-after": "5"}), Reply(200, {}, None))
    stage, usage = retry_over(inner)
    with anyio.move_on_after(1.0) as scope:
        await stage.send(make_call())
    assert scope.cancelled_caught
    assert inner.attempts == [0]  # no attempt after the caller left
    assert usage.failures == 0  # the caller's own cancellation is not a failure


async def test_logs_name_the_path_only(caplog: pytest.LogCaptureFixture) -> None:
    inner = Inner(status_error(503), status_error(400))
    stage, _ = retry_over(inner)
    call = make_call()
    call.url = "https://user:secret@tenant.example.com/v1/chat/completions?key=secret"
    with caplog.at_level(logging.INFO, logger="llmrelay"), pytest.raises(BadRequestError):
        await stage.send(call)
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2
    assert "retrying POST /v1/chat/completions after InternalServerError" in messages[0]
    assert "giving up on POST /v1/chat/completions after 1 retries" in messages[1]
    assert not any("secret" in m or "tenant" in m for m in messages)


async def test_a_rate_limit_error_keeps_its_type_and_wait() -> None:
    inner = Inner(status_error(429, {"retry-after": "2"}))
    stage, _ = retry_over(inner)
    with pytest.raises(RateLimitError) as info:
        await stage.send(make_call(retry=RetryPolicy(max_retries=1)))
    assert info.value.retry_after == 2.0
    assert inner.gaps() == [2.0]
