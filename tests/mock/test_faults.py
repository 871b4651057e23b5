"""Fault injection in the mock engine: status faults with Retry-After, attempts counted per
logical request, stalls, resets, in-stream errors, truncation, malformed data, seeded fault
rates, and the fault-spec language itself."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llmrelay.mock import Data, FaultSpec, MockEngine, Reset, Sleep

from ._helpers import (
    ANTHROPIC,
    GEMINI,
    OPENAI_CHAT,
    anthropic,
    chat,
    datas,
    error_of,
    events,
    gemini,
    openai_text,
    post,
)

# --- faults ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "payload", "check"),
    [
        (OPENAI_CHAT, chat(), lambda e: e["code"] == "rate_limit_exceeded"),
        (ANTHROPIC, anthropic(), lambda e: e["type"] == "rate_limit_error"),
        (
            f"{GEMINI}:generateContent",
            gemini(),
            lambda e: (
                e["status"] == "RESOURCE_EXHAUSTED"
                and e["code"] == 429
                and e["details"]
                == [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"}]
            ),
        ),
    ],
)
def test_429_with_retry_after_in_every_family(path: str, payload: Any, check: Any) -> None:
    response = post(MockEngine(), path, payload, {"x-mock-fault": "429;retry-after=1"})
    assert response.status == 429
    assert response.header("retry-after") == "1"
    assert response.header("x-mock-fault") == "429;retry-after=1"
    assert check(error_of(response))


def test_status_faults_and_retry_after_ms() -> None:
    engine = MockEngine()
    overloaded = post(engine, ANTHROPIC, anthropic(), {"x-mock-fault": "529"})
    assert overloaded.status == 529
    assert overloaded.json()["type"] == "error"
    assert overloaded.json()["error"]["type"] == "overloaded_error"
    assert overloaded.header("request-id") == overloaded.json()["request_id"]
    assert overloaded.header("retry-after") is None
    for status in (500, 503):
        failed = post(engine, OPENAI_CHAT, chat(), {"x-mock-fault": str(status)})
        assert failed.status == status
        assert error_of(failed)["type"] == "server_error"
    ms = post(engine, OPENAI_CHAT, chat(), {"x-mock-fault": "429;retry-after-ms=250"})
    assert ms.header("retry-after-ms") == "250" and ms.header("retry-after") is None
    gemini_ms = post(
        engine, f"{GEMINI}:generateContent", gemini(), {"x-mock-fault": "503;retry-after-ms=1500"}
    )
    assert error_of(gemini_ms)["status"] == "UNAVAILABLE"
    assert error_of(gemini_ms)["details"][0]["retryDelay"] == "1.5s"


def test_times_counts_attempts_per_idempotency_key() -> None:
    engine = MockEngine()
    fault = {"x-mock-fault": "429;retry-after=1;times=2"}

    def attempt(key: str) -> tuple[int, str | None]:
        response = post(engine, OPENAI_CHAT, chat(), fault | {"idempotency-key": key})
        return response.status, response.header("x-mock-attempt")

    assert [attempt("a") for _ in range(3)] == [(429, "1"), (429, "2"), (200, "3")]
    assert [attempt("b")[0] for _ in range(3)] == [429, 429, 200]
    assert attempt("a") == (200, "4")
    engine.clear()
    assert attempt("a") == (429, "1")


def test_times_without_a_key_uses_the_body() -> None:
    engine = MockEngine()
    fault = {"x-mock-fault": "500;times=1"}
    assert post(engine, OPENAI_CHAT, chat("one"), fault).status == 500
    assert post(engine, OPENAI_CHAT, chat("one"), fault).status == 200
    assert post(engine, OPENAI_CHAT, chat("two"), fault).status == 500
    # The call ended with its success: the same request again is a new call with its own fault.
    assert post(engine, OPENAI_CHAT, chat("one"), fault).status == 500
    assert post(engine, OPENAI_CHAT, chat("one"), fault).status == 200


@pytest.mark.parametrize("times", [1, 3])
def test_an_sdk_retry_count_numbers_the_attempts_of_every_new_call(times: int) -> None:
    engine = MockEngine()
    fault = {"x-mock-fault": f"429;times={times}", "idempotency-key": "reused"}

    def call() -> list[int]:
        return [
            post(engine, OPENAI_CHAT, chat(), fault | {"x-stainless-retry-count": str(k)}).status
            for k in range(times + 1)
        ]

    expected = [429] * times + [200]
    assert call() == expected
    assert call() == expected  # each new call (retry count 0 again) sees its faults again
    attempt = post(engine, OPENAI_CHAT, chat(), fault | {"x-stainless-retry-count": "4"})
    assert attempt.header("x-mock-attempt") == "5"


@pytest.mark.parametrize("value", ["", "-1", "x", "1.5", "99999999999"])
def test_a_retry_count_that_is_not_a_count_falls_back_to_counting(value: str) -> None:
    engine = MockEngine()
    headers = {"x-mock-fault": "500;times=1", "x-stainless-retry-count": value}
    assert [post(engine, OPENAI_CHAT, chat(), headers).status for _ in range(3)] == [500, 200, 500]


def test_fault_in_the_model_name() -> None:
    engine = MockEngine()
    payload = {**chat(), "model": "mock-echo+fault=500;times=1"}
    assert post(engine, OPENAI_CHAT, payload).status == 500
    retried = post(engine, OPENAI_CHAT, payload)
    assert retried.status == 200 and retried.json()["model"] == "mock-echo"
    path = "/v1beta/models/mock-echo+fault=429;retry-after=2:generateContent"
    response = post(engine, path, gemini())
    assert response.status == 429 and response.header("retry-after") == "2"
    header_wins = post(engine, path, gemini(), {"x-mock-fault": "503"})
    assert header_wins.status == 503


def test_stall_before_headers() -> None:
    response = post(MockEngine(), OPENAI_CHAT, chat(), {"x-mock-fault": "stall;seconds=5"})
    assert response.status == 200 and response.stall_before == 5.0
    assert response.json()["choices"][0]["message"]["content"] == "echo: Hello there, world"


def test_stall_mid_stream() -> None:
    fault = {"x-mock-fault": "stall-mid;seconds=2;after=3"}
    response = post(MockEngine(), OPENAI_CHAT, chat(stream=True), fault)
    steps = response.steps or ()
    pause = steps.index(Sleep(2.0))
    assert pause == 1 + 3  # the role chunk, then 3 content chunks
    assert openai_text(response) == "echo: Hello there, world"
    assert events(response)[-1][1] == "[DONE]"


def test_reset_mid_stream() -> None:
    response = post(MockEngine(), OPENAI_CHAT, chat(stream=True), {"x-mock-fault": "reset;after=3"})
    steps = response.steps or ()
    assert steps[-1] == Reset()
    assert openai_text(response) == "echo: Hello there, "
    assert all(data != "[DONE]" for _, data in events(response))


def test_error_event_in_every_family() -> None:
    engine = MockEngine()
    fault = {"x-mock-fault": "error-event;after=2"}
    openai = events(post(engine, OPENAI_CHAT, chat(stream=True), fault))
    assert json.loads(openai[-1][1])["error"]["type"] == "server_error"
    assert len(openai) == 1 + 2 + 1
    claude = events(post(engine, ANTHROPIC, anthropic(stream=True), fault))
    assert claude[-1][0] == "error"
    assert json.loads(claude[-1][1]) == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    assert [name for name, _ in claude].count("content_block_delta") == 2
    google = events(
        post(engine, f"{GEMINI}:streamGenerateContent", gemini(), fault, {"alt": "sse"})
    )
    assert json.loads(google[-1][1])["error"]["status"] == "UNAVAILABLE"
    assert len(google) == 3


def test_truncate_ends_without_terminator() -> None:
    engine = MockEngine()
    fault = {"x-mock-fault": "truncate;after=2"}
    openai = post(engine, OPENAI_CHAT, chat(stream=True), fault)
    assert openai_text(openai) == "echo: Hello "
    assert all(c["choices"][0]["finish_reason"] is None for c in datas(openai))
    assert events(openai)[-1][1] != "[DONE]"
    claude = [name for name, _ in events(post(engine, ANTHROPIC, anthropic(stream=True), fault))]
    assert "message_stop" not in claude and "message_delta" not in claude
    whole = {"x-mock-fault": "truncate;after=99"}  # clamped: the finish still goes missing
    google = datas(post(engine, f"{GEMINI}:streamGenerateContent", gemini(), whole, {"alt": "sse"}))
    assert len(google) == 3 and all("finishReason" not in c["candidates"][0] for c in google)
    body = post(engine, OPENAI_CHAT, chat(), fault)
    with pytest.raises(ValueError):
        body.json()


def test_malformed() -> None:
    engine = MockEngine()
    response = post(engine, OPENAI_CHAT, chat(), {"x-mock-fault": "malformed"})
    assert response.status == 200
    with pytest.raises(ValueError):
        response.json()
    streamed = events(
        post(engine, OPENAI_CHAT, chat(stream=True), {"x-mock-fault": "malformed;after=2"})
    )
    bad = []
    for index, (_, data) in enumerate(streamed):
        try:
            json.loads(data)
        except ValueError:
            bad.append(index)
    assert bad == [3, len(streamed) - 1]  # the malformed line; then the stream goes on to [DONE]


def test_body_faults_on_a_plain_response() -> None:
    engine = MockEngine()
    full = post(engine, OPENAI_CHAT, chat()).body
    reset = post(engine, OPENAI_CHAT, chat(), {"x-mock-fault": "reset"})
    assert reset.steps == (Data(full[: len(full) // 2]), Reset())
    stalled = post(engine, OPENAI_CHAT, chat(), {"x-mock-fault": "stall-mid;seconds=1"})
    assert stalled.steps is not None and Sleep(1.0) in stalled.steps
    assert stalled.content() == full
    error = post(engine, ANTHROPIC, anthropic(), {"x-mock-fault": "error-event"})
    assert error.status == 529 and error.json()["error"]["type"] == "overloaded_error"
    openai_error = post(engine, OPENAI_CHAT, chat(), {"x-mock-fault": "error-event"})
    assert openai_error.status == 503 and error_of(openai_error)["type"] == "server_error"
    gemini_error = post(
        engine, f"{GEMINI}:generateContent", gemini(), {"x-mock-fault": "error-event"}
    )
    assert gemini_error.status == 503 and error_of(gemini_error)["status"] == "UNAVAILABLE"


def test_fault_rate_is_deterministic_and_order_independent() -> None:
    keys = [f"key-{index}" for index in range(60)]

    def outcomes(seed: int, order: list[str]) -> dict[str, int]:
        engine = MockEngine(seed=seed, fault_rate=0.5)
        return {
            key: post(engine, OPENAI_CHAT, chat(), {"idempotency-key": key}).status for key in order
        }

    first = outcomes(7, keys)
    assert first == outcomes(7, keys[::-1])
    assert set(first.values()) == {200, 429, 500, 503}
    assert first != outcomes(8, keys)


def test_fault_rate_extremes_and_retries_draw_afresh() -> None:
    never = MockEngine(fault_rate=0.0)
    assert all(post(never, OPENAI_CHAT, chat(str(i))).status == 200 for i in range(20))
    always = MockEngine(fault_rate=1.0, faults=["529"])
    assert {post(always, OPENAI_CHAT, chat(str(i))).status for i in range(20)} == {529}
    once = MockEngine(fault_rate=1.0, faults=["500;times=1"])
    assert [post(once, OPENAI_CHAT, chat()).status for _ in range(2)] == [500, 200]


def test_attempt_counters_are_bounded() -> None:
    engine = MockEngine(max_tracked_keys=2)
    fault = {"x-mock-fault": "500;times=1"}
    for key in ("a", "b", "c"):  # "a" is evicted when "c" arrives
        assert post(engine, OPENAI_CHAT, chat(), fault | {"idempotency-key": key}).status == 500
    assert post(engine, OPENAI_CHAT, chat(), fault | {"idempotency-key": "a"}).status == 500
    assert post(engine, OPENAI_CHAT, chat(), fault | {"idempotency-key": "c"}).status == 200


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("429", FaultSpec(kind="status", status=429, text="429")),
        (
            " 429; retry-after=1.5 ;times=2 ",
            FaultSpec(
                kind="status",
                status=429,
                retry_after=1.5,
                times=2,
                text="429; retry-after=1.5 ;times=2",
            ),
        ),
        ("stall;seconds=0.2", FaultSpec(kind="stall", seconds=0.2, text="stall;seconds=0.2")),
        ("RESET;after=0", FaultSpec(kind="reset", after=0, text="RESET;after=0")),
    ],
)
def test_fault_spec_parse(text: str, expected: FaultSpec) -> None:
    assert FaultSpec.parse(text) == expected


@pytest.mark.parametrize(
    "text", ["", "teapot", "200", "600", "429;times", "429;times=x", "stall;seconds=-1", "429;x=1"]
)
def test_fault_spec_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        FaultSpec.parse(text)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"fault_rate": 1.5},
        {"fault_rate": 0.1, "faults": []},
        {"faults": ["nope"]},
        {"chunks": 0},
        {"chunks": 10_001},
        {"chunk_delay": -1.0},
    ],
)
def test_engine_rejects_bad_settings(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        MockEngine(**kwargs)
