"""Pure tests of the retry rules: `parse_retry_after`, `backoff_delay` and `decide`.

No I/O and no clock: every function takes "now" and the random pick as arguments.
"""

from __future__ import annotations

from email.utils import formatdate

import httpx
import pytest

from llmrelay import _constants as C
from llmrelay._config import RetryPolicy
from llmrelay._exceptions import ConfigError
from llmrelay._retry import RetryDecision, backoff_delay, decide, parse_retry_after

NOW = 1_700_000_000.0  # a fixed wall-clock "now" (2023-11-14T22:13:20Z)
DEFAULT = RetryPolicy()


def http_date(epoch: float) -> str:
    return formatdate(epoch, usegmt=True)


# -- parse_retry_after ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({}, None, id="no header"),
        # Retry-After in seconds (read leniently as a float).
        pytest.param({"retry-after": "1"}, 1.0, id="seconds"),
        pytest.param({"retry-after": "1.5"}, 1.5, id="fractional seconds"),
        pytest.param({"retry-after": " 2 "}, 2.0, id="surrounding spaces"),
        pytest.param({"retry-after": "0"}, 0.0, id="zero: retry now"),
        # A negative wait is nonsense; it is read as "the time has passed", i.e. retry now,
        # exactly like an HTTP-date in the past.
        pytest.param({"retry-after": "-3"}, 0.0, id="negative clamps to 0"),
        # Huge but finite values are returned as they are: `decide` turns them into "fail now".
        pytest.param({"retry-after": "1e9"}, 1e9, id="huge"),
        pytest.param({"retry-after": "86400"}, 86400.0, id="one day"),
        # Unusable values give None (the caller falls back to its own backoff).
        pytest.param({"retry-after": "inf"}, None, id="inf"),
        pytest.param({"retry-after": "-inf"}, None, id="-inf"),
        pytest.param({"retry-after": "1e999"}, None, id="overflows to inf"),
        pytest.param({"retry-after": "nan"}, None, id="nan"),
        pytest.param({"retry-after": "garbage"}, None, id="garbage"),
        pytest.param({"retry-after": ""}, None, id="empty"),
        pytest.param({"retry-after": "   "}, None, id="blank"),
        pytest.param({"retry-after": "soon, 12 Foo 99"}, None, id="date-like garbage"),
        # Retry-After as an HTTP-date, relative to now_epoch.
        pytest.param({"retry-after": http_date(NOW + 30)}, 30.0, id="date in 30 s"),
        pytest.param({"retry-after": http_date(NOW + 3600)}, 3600.0, id="date in an hour"),
        pytest.param({"retry-after": http_date(NOW)}, 0.0, id="date now"),
        pytest.param({"retry-after": http_date(NOW - 30)}, 0.0, id="date in the past"),
        pytest.param(
            {"retry-after": "Tue, 14 Nov 2023 23:14:20 +0100"}, 60.0, id="date with an offset"
        ),
        # A date with no zone cannot be placed in time.
        pytest.param({"retry-after": "Tue, 14 Nov 2023 22:13:50"}, None, id="date without zone"),
        # retry-after-ms (OpenAI, Azure) wins over Retry-After.
        pytest.param({"retry-after-ms": "250"}, 0.25, id="ms"),
        pytest.param({"retry-after-ms": "1500.5"}, 1.5005, id="fractional ms"),
        pytest.param({"retry-after-ms": "0"}, 0.0, id="ms zero"),
        pytest.param({"retry-after-ms": "-100"}, 0.0, id="ms negative clamps to 0"),
        pytest.param({"retry-after-ms": "250", "retry-after": "7"}, 0.25, id="ms wins"),
        pytest.param(
            {"retry-after-ms": "garbage", "retry-after": "3"}, 3.0, id="bad ms falls back"
        ),
        pytest.param({"retry-after-ms": "nan", "retry-after": "3"}, 3.0, id="nan ms falls back"),
        pytest.param({"retry-after-ms": "inf", "retry-after": "3"}, 3.0, id="inf ms falls back"),
        pytest.param({"retry-after-ms": "", "retry-after": "3"}, 3.0, id="empty ms falls back"),
        pytest.param({"retry-after-ms": "garbage"}, None, id="bad ms alone"),
        pytest.param({"retry-after-ms": "1e12"}, 1e9, id="huge ms"),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    got = parse_retry_after(headers, NOW)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected)


def test_parse_retry_after_reads_http_headers_case_insensitively() -> None:
    """The pipeline passes `httpx.Headers`, whose names are case-insensitive."""
    assert parse_retry_after(httpx.Headers({"Retry-After": "4"}), NOW) == 4.0
    assert parse_retry_after(httpx.Headers({"Retry-After-Ms": "40"}), NOW) == pytest.approx(0.04)
    assert parse_retry_after(httpx.Headers({"RETRY-AFTER": http_date(NOW + 5)}), NOW) == 5.0


# -- backoff_delay ----------------------------------------------------------------------------


def test_backoff_delay_is_full_jitter_over_a_doubling_ceiling() -> None:
    assert C.BACKOFF_BASE == 0.5 and C.BACKOFF_CAP == 8.0
    almost_one = 1.0 - 2**-53  # the largest value random.random() can return
    for retries_done, ceiling in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 8.0)]:
        assert backoff_delay(retries_done, DEFAULT, 0.0) == 0.0
        assert backoff_delay(retries_done, DEFAULT, 0.5) == pytest.approx(ceiling / 2)
        top = backoff_delay(retries_done, DEFAULT, almost_one)
        assert top < ceiling
        assert top == pytest.approx(ceiling)


@pytest.mark.parametrize("retries_done", [10, 100, 1023, 1024, 5000])
def test_backoff_delay_stays_capped_for_many_retries(retries_done: int) -> None:
    """The ceiling never passes `backoff_cap`, however many retries a policy allows (a large
    count must not overflow the float exponent)."""
    assert backoff_delay(retries_done, DEFAULT, 0.0) == 0.0
    assert backoff_delay(retries_done, DEFAULT, 0.999) == pytest.approx(8.0 * 0.999)


def test_backoff_delay_follows_a_custom_policy() -> None:
    policy = RetryPolicy(backoff_base=1.0, backoff_cap=3.0)
    assert [backoff_delay(n, policy, 0.5) for n in range(4)] == [0.5, 1.0, 1.5, 1.5]
    no_wait = RetryPolicy(backoff_base=0.0)
    assert [backoff_delay(n, no_wait, 0.9) for n in (0, 5, 2000)] == [0.0, 0.0, 0.0]


# -- decide -----------------------------------------------------------------------------------


def run(
    status: int | None,
    headers: dict[str, str] | None = None,
    *,
    policy: RetryPolicy = DEFAULT,
    retries_done: int = 0,
    remaining: float | None = None,
    rand: float = 0.5,
    hint: float | None = None,
) -> RetryDecision:
    return decide(
        policy=policy,
        retries_done=retries_done,
        status_code=status,
        headers=headers,
        remaining=remaining,
        rand=rand,
        now_epoch=NOW,
        retry_after_hint=hint,
    )


def test_the_retryable_statuses_are_the_documented_ones() -> None:
    assert frozenset({408, 429, 500, 502, 503, 504, 529}) == C.RETRYABLE_STATUS_CODES
    assert DEFAULT.retry_statuses == C.RETRYABLE_STATUS_CODES
    assert DEFAULT.max_retries == 2


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 529])
def test_retryable_statuses_are_retried_after_the_backoff(status: int) -> None:
    decision = run(status, rand=0.5)
    assert decision.retry is True
    assert decision.delay == pytest.approx(0.25)  # half of the first ceiling, 0.5 s
    assert decision.retry_after is None


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 413, 422, 501, 505])
def test_other_statuses_are_not_retried(status: int) -> None:
    decision = run(status)
    assert decision.retry is False
    assert str(status) in decision.reason


def test_connection_errors_and_timeouts_are_retried() -> None:
    decision = run(None, None, rand=0.5)
    assert decision.retry is True
    assert decision.delay == pytest.approx(0.25)
    assert "connection" in decision.reason


def test_backoff_grows_with_the_retries_done() -> None:
    policy = RetryPolicy(max_retries=10)
    delays = [run(500, policy=policy, retries_done=n, rand=0.5).delay for n in range(7)]
    assert delays == pytest.approx([0.25, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0])


def test_x_should_retry_true_retries_a_status_that_is_otherwise_final() -> None:
    decision = run(400, {"x-should-retry": "true"})
    assert decision.retry is True


def test_x_should_retry_false_stops_a_retryable_status() -> None:
    decision = run(503, {"x-should-retry": "false", "retry-after": "1"})
    assert decision.retry is False
    assert "x-should-retry" in decision.reason
    assert decision.retry_after == 1.0


def test_no_retries_left_wins_over_everything() -> None:
    for headers in [None, {"x-should-retry": "true"}, {"retry-after": "0"}]:
        decision = run(503, headers, retries_done=2)
        assert decision.retry is False
        assert decision.reason == "no retries left"
    assert run(None, retries_done=2).retry is False
    assert run(500, policy=RetryPolicy(max_retries=0)).retry is False


def test_no_retries_left_still_reports_the_servers_wait() -> None:
    decision = run(429, {"retry-after": "7"}, retries_done=2)
    assert decision.retry is False
    assert decision.retry_after == 7.0


def test_retry_after_replaces_the_backoff() -> None:
    decision = run(429, {"retry-after": "3"}, rand=0.0)
    assert decision.retry is True
    assert decision.delay == 3.0
    assert decision.retry_after == 3.0


def test_retry_after_zero_retries_at_once() -> None:
    decision = run(429, {"retry-after": "0"}, rand=0.9)
    assert (decision.retry, decision.delay) == (True, 0.0)


def test_an_unusable_retry_after_falls_back_to_the_backoff() -> None:
    for value in ["inf", "nan", "garbage", ""]:
        decision = run(429, {"retry-after": value}, rand=0.5)
        assert (decision.retry, decision.delay, decision.retry_after) == (True, 0.25, None)


def test_retry_after_at_the_cap_is_honoured() -> None:
    decision = run(429, {"retry-after": "60"})
    assert (decision.retry, decision.delay) == (True, 60.0)


@pytest.mark.parametrize(
    "headers",
    [
        {"retry-after": "120"},
        {"retry-after": "60.5"},
        {"retry-after": "1e9"},
        {"retry-after-ms": "120000"},
        {"retry-after": http_date(NOW + 120)},
    ],
)
def test_retry_after_above_the_cap_fails_at_once_with_retry_after_set(
    headers: dict[str, str],
) -> None:
    decision = run(429, headers, remaining=None)
    assert decision.retry is False
    assert decision.delay == 0.0
    assert decision.retry_after is not None and decision.retry_after > C.RETRY_AFTER_CAP
    assert "cap" in decision.reason


def test_the_retry_after_cap_is_configurable() -> None:
    policy = RetryPolicy(retry_after_cap=300)
    decision = run(429, {"retry-after": "120"}, policy=policy)
    assert (decision.retry, decision.delay, decision.retry_after) == (True, 120.0, 120.0)
    assert run(429, {"retry-after": "301"}, policy=policy).retry is False
    # A cap of 0 turns every server-requested wait (except "now") into an immediate failure.
    zero = RetryPolicy(retry_after_cap=0)
    assert run(429, {"retry-after": "1"}, policy=zero).retry is False
    assert run(429, {"retry-after": "0"}, policy=zero).retry is True


def test_retry_after_beyond_the_remaining_deadline_fails_at_once() -> None:
    decision = run(503, {"retry-after": "5"}, remaining=4.0)
    assert decision.retry is False
    assert decision.retry_after == 5.0
    assert "deadline" in decision.reason
    # Exactly the time left is not enough either: the next attempt would have no time at all.
    assert run(503, {"retry-after": "4"}, remaining=4.0).retry is False
    assert run(503, {"retry-after": "3.9"}, remaining=4.0).retry is True


def test_a_backoff_beyond_the_remaining_deadline_fails_at_once() -> None:
    decision = run(500, remaining=0.1, rand=0.5)  # backoff 0.25 s > 0.1 s left
    assert decision.retry is False
    assert "deadline" in decision.reason
    assert run(500, remaining=0.3, rand=0.5).retry is True
    assert run(None, remaining=0.0, rand=0.0).retry is False


def test_a_retry_after_hint_from_the_body_is_used_when_no_header_gives_one() -> None:
    decision = run(429, None, hint=2.5)
    assert (decision.retry, decision.delay, decision.retry_after) == (True, 2.5, 2.5)
    over = run(429, None, hint=61.0)
    assert (over.retry, over.retry_after) == (False, 61.0)
    # The header wins over the hint.
    assert run(429, {"retry-after": "1"}, hint=2.5).delay == 1.0


def test_a_non_retryable_status_still_reports_the_servers_wait() -> None:
    decision = run(403, {"retry-after": "30"})
    assert decision.retry is False
    assert decision.retry_after == 30.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_retries": -1},
        {"max_retries": 1.5},
        {"max_retries": True},
        {"backoff_base": -0.5},
        {"backoff_cap": float("nan")},
        {"retry_after_cap": -1},
        {"retry_after_cap": "60"},
    ],
)
def test_bad_retry_policies_are_config_errors(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_a_body_hint_decides_only_when_the_header_is_silent() -> None:
    final = decide(
        policy=RetryPolicy(),
        retries_done=0,
        status_code=429,
        headers={},
        remaining=None,
        rand=0.5,
        now_epoch=0.0,
        retryable_hint=False,
    )
    assert final.retry is False and "error body" in final.reason
    header_wins = decide(
        policy=RetryPolicy(),
        retries_done=0,
        status_code=429,
        headers={"x-should-retry": "True"},
        remaining=None,
        rand=0.5,
        now_epoch=0.0,
        retryable_hint=False,
    )
    assert header_wins.retry is True
