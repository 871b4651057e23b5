"""The fallback routes' circuit breaker, on a fake clock."""

from __future__ import annotations

from llmrelay.stages._route_breaker import RouteBreaker


def breaker(now: list[float]) -> RouteBreaker:
    return RouteBreaker(threshold=2, cooldown=10.0, clock=lambda: now[0])


def test_it_opens_after_the_threshold_of_failures_in_a_row() -> None:
    now = [0.0]
    b = breaker(now)
    b.record_failure()
    assert b.allow()
    b.record_failure()
    assert not b.allow() and b.remaining() == 10.0


def test_a_success_resets_the_count() -> None:
    now = [0.0]
    b = breaker(now)
    b.record_failure()
    b.record_success()
    b.record_failure()
    assert b.allow() and b.failures == 1


def test_after_the_cool_down_one_call_probes_and_its_result_decides() -> None:
    now = [0.0]
    b = breaker(now)
    b.record_failure()
    b.record_failure()
    now[0] = 10.0
    assert b.allow()  # the probe
    assert not b.allow()  # only one at a time
    b.record_failure()  # still failing: another cool-down
    assert not b.allow() and b.remaining() == 10.0
    now[0] = 20.0
    assert b.allow()
    b.record_success()
    assert b.allow() and b.allow() and b.remaining() == 0.0


def test_a_probe_that_never_reports_does_not_shut_the_route_for_good() -> None:
    now = [0.0]
    b = breaker(now)
    b.record_failure()
    b.record_failure()
    now[0] = 10.0
    assert b.allow()  # the probe, then cancelled: no success, no failure recorded
    now[0] = 20.0
    assert b.allow()
