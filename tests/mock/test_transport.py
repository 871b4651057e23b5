"""The in-process httpx face: what an httpx user sees (statuses, bodies, headers, timing, errors)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from llmrelay.mock import MockEngine, MockTransport

BASE = "http://mock.test/v1"


def chat(text: str = "Hello there, world", **extra: Any) -> dict[str, Any]:
    return {"model": "mock-echo", "messages": [{"role": "user", "content": text}], **extra}


def stream_text(raw: bytes) -> str:
    """The text of an OpenAI SSE body, parsed simply."""
    text = ""
    for block in raw.split(b"\n\n"):
        data = block.removeprefix(b"data: ")
        if block and data != b"[DONE]":
            choices = json.loads(data)["choices"]
            text += choices[0]["delta"].get("content") or "" if choices else ""
    return text


def fault(spec: str) -> dict[str, str]:
    return {"x-mock-fault": spec}


async def test_async_chat() -> None:
    async with httpx.AsyncClient(transport=MockTransport(), base_url=BASE) as client:
        response = await client.post("/chat/completions", json=chat())
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"].startswith("req_mock_")
    body = response.json()
    assert body["choices"][0]["message"]["content"] == "echo: Hello there, world"
    assert body["usage"]["total_tokens"] == 9


def test_sync_chat_and_models() -> None:
    with httpx.Client(transport=MockTransport(), base_url=BASE) as client:
        response = client.post("/chat/completions", json=chat("hi"))
        models = client.get("/models")
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "echo: hi"
    assert "mock-echo" in [model["id"] for model in models.json()["data"]]


async def test_async_stream_arrives_event_by_event() -> None:
    payload = chat(stream=True, stream_options={"include_usage": True})
    async with (
        httpx.AsyncClient(transport=MockTransport(), base_url=BASE) as client,
        client.stream("POST", "/chat/completions", json=payload) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        pieces = [piece async for piece in response.aiter_raw()]
    assert all(piece.endswith(b"\n\n") for piece in pieces)
    assert pieces[-1] == b"data: [DONE]\n\n"
    assert stream_text(b"".join(pieces)) == "echo: Hello there, world"
    assert json.loads(pieces[-2].removeprefix(b"data: "))["usage"]["completion_tokens"] == 4


def test_sync_stream_lines() -> None:
    headers = {"x-mock-chunks": "6", "anthropic-version": "2023-06-01"}
    payload = chat(stream=True, max_tokens=50)
    with (
        httpx.Client(transport=MockTransport(), base_url=BASE) as client,
        client.stream("POST", "/messages", json=payload, headers=headers) as response,
    ):
        lines = list(response.iter_lines())
    names = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
    assert names.count("content_block_delta") == 6
    assert names[0] == "message_start" and names[-1] == "message_stop"


async def test_reset_raises_read_error() -> None:
    async with httpx.AsyncClient(transport=MockTransport(), base_url=BASE) as client:
        async with client.stream(
            "POST", "/chat/completions", json=chat(stream=True), headers=fault("reset;after=2")
        ) as response:
            assert response.status_code == 200
            received = b""
            with pytest.raises(httpx.ReadError, match="connection reset by mock"):
                async for piece in response.aiter_raw():
                    received += piece
        assert stream_text(received) == "echo: Hello "
        with pytest.raises(httpx.ReadError):
            await client.post("/chat/completions", json=chat(), headers=fault("reset"))


def test_sync_reset_raises_read_error() -> None:
    with (
        httpx.Client(transport=MockTransport(), base_url=BASE) as client,
        pytest.raises(httpx.ReadError),
    ):
        client.post("/chat/completions", json=chat(stream=True), headers=fault("reset;after=1"))


async def test_stall_before_headers_times_out_at_the_read_timeout() -> None:
    timeout = httpx.Timeout(5.0, read=0.05)
    async with httpx.AsyncClient(transport=MockTransport(), base_url=BASE, timeout=timeout) as c:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            await c.post("/chat/completions", json=chat(), headers=fault("stall;seconds=1"))
        elapsed = time.monotonic() - started
    assert 0.04 <= elapsed < 0.5


def test_sync_stall_before_headers_times_out() -> None:
    timeout = httpx.Timeout(5.0, read=0.05)
    with httpx.Client(transport=MockTransport(), base_url=BASE, timeout=timeout) as client:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            client.post("/chat/completions", json=chat(), headers=fault("stall;seconds=1"))
    assert time.monotonic() - started < 0.5


async def test_short_stall_within_the_timeout_succeeds() -> None:
    timeout = httpx.Timeout(5.0, read=1.0)
    async with httpx.AsyncClient(transport=MockTransport(), base_url=BASE, timeout=timeout) as c:
        started = time.monotonic()
        response = await c.post(
            "/chat/completions", json=chat(), headers=fault("stall;seconds=0.02")
        )
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.015


async def test_stall_mid_stream_times_out_after_the_headers() -> None:
    timeout = httpx.Timeout(5.0, read=0.05)
    async with (
        httpx.AsyncClient(transport=MockTransport(), base_url=BASE, timeout=timeout) as client,
        client.stream(
            "POST",
            "/chat/completions",
            json=chat(stream=True),
            headers=fault("stall-mid;seconds=1;after=3"),
        ) as response,
    ):
        assert response.status_code == 200
        received = b""
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            async for piece in response.aiter_raw():
                received += piece
        assert time.monotonic() - started < 0.5
    assert stream_text(received) == "echo: Hello there, "


async def test_silence_adds_up_across_pauses() -> None:
    # A 0.03 s chunk delay right after a 0.03 s stall: 0.06 s without a byte > 0.05 s timeout.
    headers = fault("stall-mid;seconds=0.03;after=1") | {"x-mock-chunk-delay": "0.03"}
    timeout = httpx.Timeout(5.0, read=0.05)
    async with httpx.AsyncClient(transport=MockTransport(), base_url=BASE, timeout=timeout) as c:
        with pytest.raises(httpx.ReadTimeout):
            await c.post("/chat/completions", json=chat(stream=True), headers=headers)
        headers = {"x-mock-chunk-delay": "0.01"}
        started = time.monotonic()
        response = await c.post("/chat/completions", json=chat(stream=True), headers=headers)
    assert time.monotonic() - started >= 0.025  # 3 pauses between 4 content chunks
    assert stream_text(response.content) == "echo: Hello there, world"


async def test_rate_limit_then_retry_succeeds_on_a_shared_engine() -> None:
    transport = MockTransport(MockEngine())
    headers = fault("429;retry-after=1;times=1") | {"idempotency-key": "job-1"}
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        limited = await client.post("/chat/completions", json=chat(), headers=headers)
        retried = await client.post("/chat/completions", json=chat(), headers=headers)
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "1"
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    assert retried.status_code == 200
    assert retried.headers["x-mock-attempt"] == "2"


async def test_gemini_over_the_transport() -> None:
    base = "http://mock.test/v1beta"
    payload = {"contents": [{"role": "user", "parts": [{"text": "hey you"}]}]}
    async with httpx.AsyncClient(transport=MockTransport(), base_url=base) as client:
        streamed = await client.post(
            "/models/mock-echo:streamGenerateContent", params={"alt": "sse"}, json=payload
        )
        faulted = await client.post(
            "/models/mock-echo+fault=503;times=1:generateContent", json=payload
        )
        recovered = await client.post(
            "/models/mock-echo+fault=503;times=1:generateContent", json=payload
        )
    chunks = [json.loads(b.removeprefix(b"data: ")) for b in streamed.content.split(b"\n\n") if b]
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert faulted.status_code == 503
    assert faulted.json()["error"]["status"] == "UNAVAILABLE"
    assert recovered.status_code == 200
    assert recovered.json()["modelVersion"] == "mock-echo"


def test_transport_defaults() -> None:
    transport = MockTransport()
    assert isinstance(transport.engine, MockEngine)
    assert "MockEngine" in repr(transport)
