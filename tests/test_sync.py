"""The blocking `llmrelay.Client`: same calls as the async core, from plain sync code and from
worker threads while an event loop runs elsewhere."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest

import llmrelay
from llmrelay import ChatResponse, Client, ClientStateError, StreamChunk, ToolCall, Usage
from llmrelay.providers import openai as openai_adapter

# Marked at collection time so anyio's plugin uses conftest's `anyio_backend` fixture (asyncio).
pytestmark = pytest.mark.anyio

KEY = "sk-test-sync-SECRET-42"
BASE = "https://api.openai.com/v1"


def completion(text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-sync",
        "object": "chat.completion",
        "model": "gpt-4o-mini",
        "choices": [
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}
        ],
        "usage": {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6},
    }


def sse_body() -> bytes:
    base = {"id": "chatcmpl-s1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-x"}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            **base,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            "usage": None,
        }

    events = [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Hel"}),
        chunk({"content": "lo, "}),
        chunk({"content": "wörld"}),
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "lookup", "arguments": ""},
                    }
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"q": '}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"x"}'}}]}),
        chunk({}, "tool_calls"),
        {
            **base,
            "choices": [],
            "usage": {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14},
        },
    ]
    text = "".join(f"data: {json.dumps(e, ensure_ascii=False)}\n\n" for e in events)
    return (text + "data: [DONE]\n\n").encode()


class Pieces(httpx.AsyncByteStream):
    """A response body delivered in small pieces that cut through events and characters."""

    def __init__(self, data: bytes, size: int = 7) -> None:
        self._data = data
        self._size = size

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self._data), self._size):
            yield self._data[start : start + self._size]


class FakeOpenAI:
    def __init__(self, respond: Callable[[httpx.Request], httpx.Response] | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self._lock = threading.Lock()
        self._respond = respond or self.default

    @staticmethod
    def default(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/models"):
            return httpx.Response(
                200, json={"object": "list", "data": [{"id": "gpt-4o", "owned_by": "system"}]}
            )
        body = json.loads(request.content)
        if path.endswith("/embeddings"):
            data = [
                {"index": i, "embedding": [float(i), float(len(t))]}
                for i, t in reversed(list(enumerate(body["input"])))
            ]
            return httpx.Response(200, json={"object": "list", "data": data, "model": "e"})
        if body.get("stream"):
            return httpx.Response(
                200,
                headers={"content-type": "text/event-stream", "x-request-id": "req_stream"},
                stream=Pieces(sse_body()),
            )
        prompt = body["messages"][-1]["content"]
        return httpx.Response(200, json=completion(f"echo: {prompt}"))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests.append(request)
        return self._respond(request)

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self))


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    return KEY


def make_client(fake: FakeOpenAI, **kwargs: Any) -> Client:
    kwargs.setdefault("model", "gpt-4o-mini")
    kwargs.setdefault("max_retries", 0)
    return Client(provider="openai", http_client=fake.http(), **kwargs)


class RecordingTransport(httpx.MockTransport):
    closed = 0

    async def aclose(self) -> None:
        self.closed += 1


def new_threads(before: set[threading.Thread]) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t not in before and t.is_alive()]


# -- plain sync code -------------------------------------------------------------------------


def test_every_call_works_from_sync_code(key: str) -> None:
    fake = FakeOpenAI()
    with make_client(fake) as client:
        reply = client.chat("Hello")
        assert isinstance(reply, ChatResponse)
        assert reply.text == "echo: Hello"
        assert reply.usage == Usage(prompt_tokens=4, completion_tokens=2, total_tokens=6)

        chunks = list(client.stream("Hi"))
        assert "".join(c.text for c in chunks) == "Hello, wörld"

        results = client.batch(["a", "b", "c"], temperature=0.5)
        assert [r.text for r in results] == ["echo: a", "echo: b", "echo: c"]

        vectors = client.embed(["x", "yy"], model="text-embedding-3-small").vectors
        assert vectors == [[0.0, 1.0], [1.0, 2.0]]

        assert [m.id for m in client.models()] == ["gpt-4o"]
        assert client.usage.requests == 6  # chat + stream + 3 batch + embed
    paths = [r.url.path for r in fake.requests]
    assert paths.count("/v1/chat/completions") == 5
    assert paths.count("/v1/embeddings") == 1
    assert paths.count("/v1/models") == 1
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in fake.requests)


def test_with_closes_the_client_and_its_thread(key: str) -> None:
    before = set(threading.enumerate())
    transport = RecordingTransport(FakeOpenAI())
    provider = llmrelay.Provider(
        name="fakeopenai",
        adapter=openai_adapter,
        base_url=BASE,
        key_required=False,
        default_model="m",
        transport_factory=lambda: transport,
    )
    with Client(provider=provider) as client:
        assert client.chat("hi").text == "echo: hi"
        assert new_threads(before), "the client runs its loop on a thread of its own"
        assert transport.closed == 0
    assert transport.closed == 1
    assert new_threads(before) == []
    client.close()  # twice is fine
    with pytest.raises(ClientStateError, match="closed"):
        client.chat("hi")
    with pytest.raises(ClientStateError):
        client.stream("hi")
    with pytest.raises(ClientStateError):
        client.batch(["hi"])
    with pytest.raises(ClientStateError):
        list(client.as_completed(["hi"]))
    with pytest.raises(ClientStateError):
        client.embed("hi")
    with pytest.raises(ClientStateError):
        client.models()


def test_a_passed_in_http_client_stays_open(key: str) -> None:
    fake = FakeOpenAI()
    http = fake.http()
    with Client(provider="openai", model="m", http_client=http) as client:
        client.chat("hi")
    assert not http.is_closed


def test_missing_key_is_a_config_error_and_leaves_no_thread() -> None:
    before = set(threading.enumerate())
    with pytest.raises(llmrelay.ConfigError, match="OPENAI_API_KEY"):
        Client(provider="openai", model="m")
    assert new_threads(before) == []


def test_repr_hides_the_key(key: str) -> None:
    with make_client(FakeOpenAI()) as client:
        assert repr(client).startswith("Client(")
        assert "openai" in repr(client)
        assert KEY not in repr(client)
        assert KEY not in str(client)
    with make_client(FakeOpenAI(), api_key="sk-explicit-sync-key") as client:
        assert "sk-explicit-sync-key" not in repr(client)


def test_status_errors_are_typed_and_hide_the_key(key: str) -> None:
    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            429,
            json={"error": {"message": f"Rate limit for key {KEY}", "type": "requests"}},
            headers={"x-request-id": "req_sync", "retry-after": "3"},
        )

    with make_client(FakeOpenAI(respond)) as client, pytest.raises(llmrelay.RateLimitError) as info:
        client.chat("hi")
    error = info.value
    assert error.status_code == 429
    assert error.request_id == "req_sync"
    assert error.retry_after == 3.0
    assert "Rate limit for key" in str(error)
    assert KEY not in str(error)
    assert KEY not in repr(error)


def test_bad_input_is_a_config_error_and_nothing_is_sent(key: str) -> None:
    fake = FakeOpenAI()
    with make_client(fake) as client:
        with pytest.raises(llmrelay.ConfigError):
            client.chat("hi", temperature=3)
        with pytest.raises(llmrelay.ConfigError):
            client.stream([{"role": "robot", "content": "x"}])
        with pytest.raises(llmrelay.ConfigError):
            client.embed([])
    assert fake.requests == []


@pytest.mark.parametrize(
    ("method", "call"),
    [
        ("chat", lambda c: c.chat("hi", temprature=1)),
        ("stream", lambda c: c.stream("hi", temprature=1)),
        ("batch", lambda c: c.batch(["a", "b"], temprature=1)),
        ("as_completed", lambda c: list(c.as_completed(["a", "b"], temprature=1))),
        ("embed", lambda c: c.embed("hi", temprature=1)),
        ("models", lambda c: c.models(temprature=1)),
    ],
)
def test_a_misspelt_keyword_is_a_plain_type_error_and_nothing_is_sent(
    key: str, method: str, call: Callable[[Client], object]
) -> None:
    fake = FakeOpenAI()
    with make_client(fake) as client:
        with pytest.raises(
            TypeError, match=rf"^AsyncClient\.{method}\(\) got an unexpected"
        ) as info:
            call(client)
        assert type(info.value) is TypeError  # not an ExceptionGroup from the batch workers
        assert "temprature" in str(info.value)
        assert fake.requests == []
        assert client.chat("still works").text == "echo: still works"


def test_a_misspelt_constructor_keyword_is_a_type_error_and_leaves_no_thread(key: str) -> None:
    before = set(threading.enumerate())
    with pytest.raises(TypeError, match="'modle'"):
        Client(provider="openai", modle="gpt-4o")  # type: ignore[call-arg]
    with Client(provider="mock") as client, pytest.raises(TypeError, match=r"'frobnicate'$"):
        client.batch(["a"], frobnicate=True)  # type: ignore[call-arg]  # no close match, no hint
    assert new_threads(before) == []


def test_from_profile_builds_a_sync_client(tmp_path: Path) -> None:
    (tmp_path / "llmrelay.toml").write_text(
        '[profiles.work]\nprovider = "mock"\nmodel = "mock-echo-large"\nmax_concurrency = 3\n'
    )
    with Client.from_profile("work", cwd=tmp_path, environ={}, max_retries=0) as client:
        assert isinstance(client, Client)
        assert client.async_client.model == "mock-echo-large"
        assert client.async_client.max_concurrency == 3
        assert client.async_client.retry.max_retries == 0
        assert client.chat("one two").text
    before = set(threading.enumerate())
    with pytest.raises(llmrelay.ConfigError, match="no profile named 'nosuch'"):
        Client.from_profile("nosuch", cwd=tmp_path, environ={})
    assert new_threads(before) == []


def test_batch_with_return_exceptions(key: str) -> None:
    def respond(request: httpx.Request) -> httpx.Response:
        prompt = json.loads(request.content)["messages"][-1]["content"]
        if prompt == "bad":
            return httpx.Response(400, json={"error": {"message": "no"}})
        return httpx.Response(200, json=completion(f"echo: {prompt}"))

    fake = FakeOpenAI(respond)
    with make_client(fake) as client:
        results = client.batch(["a", "bad", "c"], return_exceptions=True)
        with pytest.raises(llmrelay.BadRequestError):
            client.batch(["a", "bad", "c"])
    assert results[0].text == "echo: a"
    assert isinstance(results[1], llmrelay.BadRequestError)
    assert results[2].text == "echo: c"


def test_as_completed_yields_every_index_once(key: str) -> None:
    def respond(request: httpx.Request) -> httpx.Response:
        prompt = json.loads(request.content)["messages"][-1]["content"]
        if prompt == "p3":
            return httpx.Response(500, json={"error": {"message": "boom"}})
        return httpx.Response(200, json=completion(f"echo: {prompt}"))

    fake = FakeOpenAI(respond)
    with make_client(fake) as client:
        seen = dict(client.as_completed([f"p{i}" for i in range(8)]))
        assert sorted(seen) == list(range(8))
        assert isinstance(seen[3], llmrelay.InternalServerError)
        assert all(seen[i].text == f"echo: p{i}" for i in range(8) if i != 3)
        assert len(fake.requests) == 8

        # stopping early is fine and the client keeps working
        with closing(client.as_completed([f"p{i}" for i in range(8)])) as items:
            index, outcome = next(items)
            assert outcome.text == f"echo: p{index}"
        assert client.chat("again").text == "echo: again"


# -- streams ---------------------------------------------------------------------------------


EXPECTED_FINAL = ChatResponse(
    text="Hello, wörld",
    finish_reason="tool_calls",
    usage=Usage(prompt_tokens=9, completion_tokens=5, total_tokens=14),
    tool_calls=(
        ToolCall(id="call_1", name="lookup", arguments='{"q": "x"}', parsed_arguments={"q": "x"}),
    ),
    model="gpt-x",
    id="chatcmpl-s1",
    request_id="req_stream",
    provider="openai",
)


async def test_sync_stream_gives_the_same_chunks_as_the_async_stream(key: str) -> None:
    fake = FakeOpenAI()
    async with (
        llmrelay.AsyncClient(
            provider="openai", model="gpt-4o-mini", http_client=fake.http(), max_retries=0
        ) as aclient,
        aclient.stream("Hi") as astream,
    ):
        async_chunks = [chunk async for chunk in astream]
        async_final = await astream.final()

    def run_sync() -> tuple[list[StreamChunk], ChatResponse, str]:
        with make_client(fake) as client, client.stream("Hi") as stream:
            chunks = list(stream)
            return chunks, stream.final(), stream.text

    sync_chunks, sync_final, sync_text = await anyio.to_thread.run_sync(run_sync)
    assert sync_chunks == async_chunks
    assert [c.raw for c in sync_chunks] == [c.raw for c in async_chunks]
    assert [c.text for c in sync_chunks] == ["", "Hel", "lo, ", "wörld", "", "", "", "", ""]
    assert sync_chunks[-1].usage == Usage(prompt_tokens=9, completion_tokens=5, total_tokens=14)
    assert sync_chunks[-2].finish_reason == "tool_calls"
    assert sync_final == async_final == EXPECTED_FINAL
    assert sync_text == "Hello, wörld"
    bodies = [json.loads(r.content) for r in fake.requests]
    assert bodies[0] == bodies[1]
    assert bodies[0]["stream"] is True
    assert bodies[0]["stream_options"] == {"include_usage": True}


def test_sync_stream_final_without_iterating_and_early_close(key: str) -> None:
    fake = FakeOpenAI()
    with make_client(fake) as client:
        assert client.stream("Hi").final() == EXPECTED_FINAL
        with client.stream("Hi") as stream:
            first = next(iter(stream))
            assert first.role == "assistant"
        # the closed stream gave its slot back: more calls work
        assert client.chat("after").text == "echo: after"


# -- from worker threads while an event loop runs --------------------------------------------


async def test_works_from_worker_threads_while_a_loop_runs(key: str) -> None:
    fake = FakeOpenAI()
    client = await anyio.to_thread.run_sync(lambda: make_client(fake))
    try:
        reply = await anyio.to_thread.run_sync(lambda: client.chat("from a thread"))
        assert reply.text == "echo: from a thread"

        results: dict[int, str] = {}

        def call(i: int) -> None:
            results[i] = client.chat(f"t{i}").text

        async with anyio.create_task_group() as tg:
            for i in range(6):
                tg.start_soon(anyio.to_thread.run_sync, call, i)
        assert results == {i: f"echo: t{i}" for i in range(6)}

        chunks = await anyio.to_thread.run_sync(lambda: list(client.stream("s")))
        assert "".join(c.text for c in chunks) == "Hello, wörld"
        batch = await anyio.to_thread.run_sync(lambda: client.batch(["x", "y"]))
        assert [r.text for r in batch] == ["echo: x", "echo: y"]
    finally:
        await anyio.to_thread.run_sync(client.close)


async def test_a_client_built_inside_a_running_loop_works_from_a_thread(key: str) -> None:
    fake = FakeOpenAI()
    with make_client(fake) as client:  # built on this (event loop) thread
        reply = await anyio.to_thread.run_sync(lambda: client.chat("hello"))
    assert reply.text == "echo: hello"


def test_a_client_that_is_never_closed_does_not_hang_the_exit() -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": src}
    code = "import llmrelay; c = llmrelay.Client(provider='mock'); print(c.chat('hi').text)"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0
    assert done.stdout.strip() == "echo: hi"
