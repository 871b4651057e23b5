"""The mock's network face: `llmrelay.mock.serve()` over real loopback HTTP, seen through httpx and
through `AsyncClient`."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import llmrelay
from llmrelay.mock import MockASGIApp, MockEngine, serve


def chat(text: str = "Hello there, world", **extra: Any) -> dict[str, Any]:
    return {"model": "mock-echo", "messages": [{"role": "user", "content": text}], **extra}


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with serve() as base:
        yield base


def client(url: str, **options: Any) -> llmrelay.AsyncClient:
    return llmrelay.AsyncClient(
        provider="openai", base_url=f"{url}/v1", api_key="sk-unused", model="mock-echo", **options
    )


def test_serve_yields_a_loopback_url(url: str) -> None:
    assert url.startswith("http://127.0.0.1:")
    assert int(url.rsplit(":", 1)[1]) > 0


async def test_chat_over_http(url: str) -> None:
    async with httpx.AsyncClient(base_url=url) as http:
        response = await http.post("/v1/chat/completions", json=chat())
    assert response.status_code == 200
    assert response.headers["x-request-id"].startswith("req_mock_")
    body = response.json()
    assert body["choices"][0]["message"]["content"] == "echo: Hello there, world"
    assert body["usage"]["total_tokens"] == 9


async def test_stream_over_http_arrives_chunk_by_chunk(url: str) -> None:
    payload = chat("one two three", stream=True)
    headers = {"x-mock-chunk-delay": "0.02"}
    arrivals: list[float] = []
    async with (
        httpx.AsyncClient(base_url=url) as http,
        http.stream("POST", "/v1/chat/completions", json=payload, headers=headers) as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = []
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                lines.append(line.removeprefix("data: "))
                arrivals.append(time.monotonic())
    assert lines[-1] == "[DONE]"
    text = "".join(
        json.loads(line)["choices"][0]["delta"].get("content") or "" for line in lines[:-1]
    )
    assert text == "echo: one two three"
    assert arrivals[-1] - arrivals[0] >= 0.05  # the pauses happened on the wire


async def test_the_client_streams_and_chats_over_http(url: str) -> None:
    async with client(url) as c:
        reply = await c.chat("hi")
        pieces = [chunk.text async for chunk in c.stream("a b c")]
        vectors = (await c.embed(["x", "y"], model="mock-embed")).vectors
        names = [m.id for m in await c.models()]
    assert reply.text == "echo: hi" and reply.request_id
    assert "".join(pieces) == "echo: a b c"
    assert len(vectors) == 2 and len(vectors[0]) == 8
    assert names == ["mock-echo", "mock-echo-large", "mock-embed"]


async def test_other_wire_families_and_query_strings(url: str) -> None:
    async with httpx.AsyncClient(base_url=url) as http:
        anthropic = await http.post(
            "/v1/messages",
            json={**chat("hi"), "max_tokens": 10},
            headers={"anthropic-version": "2023-06-01"},
        )
        gemini = await http.post(
            "/v1beta/models/mock-echo:streamGenerateContent",
            params={"alt": "sse", "key": "unused"},
            json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
        )
    assert anthropic.json()["content"][0]["text"] == "echo: hi"
    assert gemini.headers["content-type"].startswith("text/event-stream")  # ?alt=sse was read
    assert "echo: " in gemini.text


async def test_a_status_fault_reaches_the_client_with_retry_after(url: str) -> None:
    async with httpx.AsyncClient(base_url=url) as http:
        response = await http.post(
            "/v1/chat/completions", json=chat(), headers={"x-mock-fault": "429;retry-after=3"}
        )
    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"


async def test_retries_recover_a_fault_that_strikes_twice(url: str) -> None:
    async with client(url) as c:
        reply = await c.chat("hi", extra_headers={"x-mock-fault": "503;retry-after=0;times=2"})
        assert reply.text == "echo: hi"
        assert c.usage.retries == 2


async def test_a_reset_gives_the_client_a_connection_error(url: str) -> None:
    async with client(url, max_retries=0) as c:
        with pytest.raises(llmrelay.APIConnectionError) as info:
            await c.chat("hi", extra_headers={"x-mock-fault": "reset"})
    assert not isinstance(info.value, llmrelay.APITimeoutError)
    async with httpx.AsyncClient(base_url=url) as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.post("/v1/chat/completions", json=chat(), headers={"x-mock-fault": "reset"})


async def test_a_reset_mid_stream_is_a_stream_error_with_the_partial_text(url: str) -> None:
    async with client(url, max_retries=0) as c:
        stream = c.stream("one two three four", extra_headers={"x-mock-fault": "reset;after=2"})
        with pytest.raises(llmrelay.StreamError) as info:
            async for _ in stream:
                pass
    assert info.value.partial == "echo: one "


async def test_a_stall_with_a_short_read_timeout_is_a_timeout(url: str) -> None:
    timeout = llmrelay.Timeout(connect=2, read=0.05)
    async with client(url, max_retries=0, timeout=timeout) as c:
        started = time.monotonic()
        with pytest.raises(llmrelay.APITimeoutError):
            await c.chat("hi", extra_headers={"x-mock-fault": "stall;seconds=30"})
    assert time.monotonic() - started < 1


async def test_a_stall_shorter_than_the_timeout_is_just_slow(url: str) -> None:
    async with client(url, max_retries=0) as c:
        started = time.monotonic()
        reply = await c.chat("hi", extra_headers={"x-mock-fault": "stall;seconds=0.05"})
    assert reply.text == "echo: hi"
    assert time.monotonic() - started >= 0.045


def statuses(url: str, count: int) -> list[int]:
    with httpx.Client(base_url=url) as http:
        return [
            http.post(
                "/v1/chat/completions", json=chat(), headers={"idempotency-key": f"request-{i}"}
            ).status_code
            for i in range(count)
        ]


def test_a_server_wide_fault_rate_is_deterministic_given_the_seed() -> None:
    with serve(fault_rate=0.5, seed=7, faults=["429", "503"]) as first:
        run_one = statuses(first, 40)
    with serve(fault_rate=0.5, seed=7, faults=["429", "503"]) as second:
        run_two = statuses(second, 40)
    with serve(fault_rate=0.5, seed=8, faults=["429", "503"]) as other:
        run_other = statuses(other, 40)
    assert run_one == run_two
    assert run_one != run_other
    assert set(run_one) == {200, 429, 503}


def test_serve_takes_an_engine_or_options_not_both() -> None:
    with (
        pytest.raises(TypeError, match="either engine= or engine options"),
        serve(MockEngine(), seed=1),
    ):
        pass  # pragma: no cover


def test_a_given_engine_is_used() -> None:
    with serve(MockEngine(chunks=3)) as base, httpx.Client(base_url=base) as http:
        body = http.post("/v1/chat/completions", json=chat("a b c d e f", stream=True)).text
    assert body.count('"content":') == 1 + 3  # the role chunk, then exactly 3 content chunks


async def test_the_app_speaks_the_lifespan_protocol() -> None:
    app = MockASGIApp()
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: Any) -> None:
        sent.append(dict(message))

    await app({"type": "lifespan"}, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


def test_shutdown_is_quick_even_with_a_stalled_request_open() -> None:
    with serve() as base:
        timeout = httpx.Timeout(2, read=0.05)
        with httpx.Client(base_url=base, timeout=timeout) as http, pytest.raises(httpx.ReadTimeout):
            http.post("/v1/chat/completions", json=chat(), headers={"x-mock-fault": "stall"})
        started = time.monotonic()
    assert time.monotonic() - started < 1.0


def test_serve_options_left_out_keep_the_engines_defaults() -> None:
    with serve(fault_rate=1.0, seed=3) as base:  # no faults= given: the engine's 429/500/503
        codes = set(statuses(base, 30))
    assert codes == {429, 500, 503}
