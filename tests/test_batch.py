"""`AsyncClient.batch()` and `as_completed()`: one outcome per input, input order kept (batch) or
finish order (as_completed), typed errors in their slots, no duplicate requests."""

from __future__ import annotations

import json
from collections import Counter
from contextlib import aclosing
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest

import llmrelay
from llmrelay import AsyncClient, ChatResponse, RetryPolicy

# Marked at collection time so anyio's plugin uses conftest's `anyio_backend` fixture (asyncio).
pytestmark = pytest.mark.anyio

KEY = "sk-test-batch-key"


def reply(text: str) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": "gpt-4o-mini",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": text},
                }
            ],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        },
    )


def error(status: int, message: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"message": message, "type": "test_error"}})


def index_of(request: httpx.Request) -> int:
    """Prompts are "prompt <i>"."""
    return int(json.loads(request.content)["messages"][-1]["content"].split()[-1])


class Server:
    """Records requests; `respond` is an async function of the prompt index."""

    def __init__(self, respond: Any = None) -> None:
        self.requests: list[httpx.Request] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._respond = respond

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            index = index_of(request)
            if self._respond is None:
                await anyio.lowlevel.checkpoint()
                return reply(f"reply to prompt {index}")
            response: httpx.Response = await self._respond(index)
            return response
        finally:
            self.in_flight -= 1

    @property
    def indices(self) -> Counter[int]:
        return Counter(index_of(r) for r in self.requests)


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


def client_for(server: Server, **kwargs: Any) -> AsyncClient:
    kwargs.setdefault("max_retries", 0)
    http = httpx.AsyncClient(transport=httpx.MockTransport(server))
    return AsyncClient(provider="openai", model="gpt-4o-mini", http_client=http, **kwargs)


def prompts(n: int) -> list[str]:
    return [f"prompt {i}" for i in range(n)]


# -- batch -----------------------------------------------------------------------------------


async def test_results_keep_input_order_when_replies_finish_in_reverse() -> None:
    n = 8
    finished: list[int] = []
    done = [anyio.Event() for _ in range(n)]

    async def respond(index: int) -> httpx.Response:
        # Each reply waits for the next one: they finish strictly in reverse input order.
        if index + 1 < n:
            with anyio.fail_after(5):
                await done[index + 1].wait()
        finished.append(index)
        done[index].set()
        return reply(f"reply to prompt {index}")

    server = Server(respond)
    async with client_for(server) as client:
        results = await client.batch(prompts(n))
    assert finished == list(reversed(range(n)))
    assert [r.text for r in results] == [f"reply to prompt {i}" for i in range(n)]
    assert all(isinstance(r, ChatResponse) for r in results)
    assert server.indices == Counter(range(n))


async def test_results_keep_input_order_with_sleeps_inverse_to_index() -> None:
    n = 6

    async def respond(index: int) -> httpx.Response:
        await anyio.sleep((n - index) * 0.01)
        return reply(f"reply to prompt {index}")

    server = Server(respond)
    async with client_for(server) as client:
        results = await client.batch(prompts(n))
    assert [r.text for r in results] == [f"reply to prompt {i}" for i in range(n)]


async def test_return_exceptions_puts_each_typed_error_in_its_slot() -> None:
    n = 9
    failing = {1: 400, 4: 429, 7: 500}

    async def respond(index: int) -> httpx.Response:
        await anyio.lowlevel.checkpoint()
        if index in failing:
            return error(failing[index], f"prompt {index} failed")
        return reply(f"reply to prompt {index}")

    server = Server(respond)
    items: list[Any] = prompts(n)
    items[5] = ""  # bad input: a ConfigError in its own slot, nothing sent for it
    async with client_for(server) as client:
        results = await client.batch(items, return_exceptions=True)
    assert len(results) == n
    assert type(results[1]) is llmrelay.BadRequestError
    assert type(results[4]) is llmrelay.RateLimitError
    assert type(results[7]) is llmrelay.InternalServerError
    assert isinstance(results[5], llmrelay.ConfigError)
    for index in (1, 4, 7):
        assert f"prompt {index} failed" in str(results[index])
    for index in set(range(n)) - {1, 4, 5, 7}:
        assert isinstance(results[index], ChatResponse)
        assert results[index].text == f"reply to prompt {index}"
    # one request per sent prompt: no duplicates, none lost
    assert server.indices == Counter(set(range(n)) - {5})
    assert client.usage.failures == 3


async def test_retried_prompts_still_give_one_outcome_each() -> None:
    n = 10
    attempts: Counter[int] = Counter()

    async def respond(index: int) -> httpx.Response:
        attempts[index] += 1
        await anyio.lowlevel.checkpoint()
        if index % 2 == 0 and attempts[index] == 1:
            return error(503, "busy")  # even prompts succeed on their second try
        return reply(f"reply to prompt {index}")

    server = Server(respond)
    async with client_for(
        server, max_retries=None, retry=RetryPolicy(max_retries=2, backoff_base=0)
    ) as client:
        results = await client.batch(prompts(n), return_exceptions=True)
    assert [r.text for r in results] == [f"reply to prompt {i}" for i in range(n)]
    assert server.indices == Counter({i: 2 if i % 2 == 0 else 1 for i in range(n)})
    assert client.usage.retries == n // 2


async def test_without_return_exceptions_the_first_typed_error_is_raised() -> None:
    n = 6
    release = anyio.Event()

    async def respond(index: int) -> httpx.Response:
        if index == 3:
            return error(404, "The model `nope` does not exist")
        await release.wait()  # never set: the others are still running when 3 fails
        return reply("late")

    server = Server(respond)
    async with client_for(server) as client:
        with anyio.fail_after(5):
            with pytest.raises(llmrelay.NotFoundError, match="does not exist") as info:
                await client.batch(prompts(n))
        assert info.value.status_code == 404
        assert server.indices[3] == 1
        assert max(server.indices.values()) == 1
        # the cancelled calls gave their concurrency slots back: the client still works
        server._respond = None
        assert (await client.chat("prompt 0")).text == "reply to prompt 0"


async def test_without_return_exceptions_a_config_error_is_raised_before_sending() -> None:
    server = Server()
    async with client_for(server) as client:
        with pytest.raises(llmrelay.ConfigError):
            await client.batch(prompts(3), temperature=5)
    assert server.requests == []


@pytest.mark.parametrize("method", ["batch", "as_completed"])
async def test_a_misspelt_keyword_is_a_plain_type_error_before_sending(method: str) -> None:
    server = Server()
    async with client_for(server) as client:
        with pytest.raises(TypeError) as info:
            if method == "batch":
                await client.batch(prompts(3), temprature=0.5)  # type: ignore[call-arg]
            else:
                async for _ in client.as_completed(prompts(3), temprature=0.5):  # type: ignore[call-arg]
                    pass
        assert str(info.value) == (
            f"AsyncClient.{method}() got an unexpected keyword argument 'temprature'; "
            "did you mean 'temperature'?"
        )
        assert type(info.value) is TypeError  # not an ExceptionGroup from the workers
        assert await client.batch(prompts(2)) != []  # the client is unharmed
    assert server.indices == Counter(range(2))


async def test_batch_passes_call_arguments_to_every_request() -> None:
    server = Server()
    async with client_for(server) as client:
        await client.batch(prompts(3), model="gpt-4o", temperature=0.1, max_tokens=5)
    assert len(server.requests) == 3
    for request in server.requests:
        body = json.loads(request.content)
        assert body["model"] == "gpt-4o"
        assert body["temperature"] == 0.1
        assert body["max_completion_tokens"] == 5


async def test_batch_respects_max_concurrency() -> None:
    async def respond(index: int) -> httpx.Response:
        await anyio.sleep(0.002)
        return reply(f"reply to prompt {index}")

    server = Server(respond)
    async with client_for(server, max_concurrency=3) as client:
        results = await client.batch(prompts(30))
    assert [r.text for r in results] == [f"reply to prompt {i}" for i in range(30)]
    assert server.max_in_flight == 3
    assert server.indices == Counter(range(30))


async def test_empty_batch() -> None:
    server = Server()
    async with client_for(server) as client:
        assert await client.batch([]) == []
        assert [item async for item in client.as_completed([])] == []
    assert server.requests == []


async def test_batch_accepts_conversations() -> None:
    server = Server()
    conversations = [
        [{"role": "system", "content": "short"}, {"role": "user", "content": f"prompt {i}"}]
        for i in range(3)
    ]
    async with client_for(server) as client:
        results = await client.batch(conversations)
    assert [r.text for r in results] == [f"reply to prompt {i}" for i in range(3)]


# -- as_completed ----------------------------------------------------------------------------


async def test_as_completed_yields_every_index_once_in_finish_order() -> None:
    n = 6
    release = [anyio.Event() for _ in range(n)]

    async def respond(index: int) -> httpx.Response:
        # Prompt i may answer only once the consumer has received i + 1.
        if index + 1 < n:
            with anyio.fail_after(5):
                await release[index].wait()
        if index == 2:
            return error(400, "prompt 2 is bad")
        return reply(f"reply to prompt {index}")

    server = Server(respond)
    seen: list[tuple[int, Any]] = []
    async with client_for(server) as client:
        async for index, outcome in client.as_completed(prompts(n)):
            seen.append((index, outcome))
            if index > 0:
                release[index - 1].set()
    assert [index for index, _ in seen] == list(reversed(range(n)))
    outcomes = dict(seen)
    assert type(outcomes[2]) is llmrelay.BadRequestError
    assert "prompt 2 is bad" in str(outcomes[2])
    for index in set(range(n)) - {2}:
        assert outcomes[index].text == f"reply to prompt {index}"
    assert server.indices == Counter(range(n))


async def test_as_completed_with_many_prompts_and_errors() -> None:
    n = 40

    async def respond(index: int) -> httpx.Response:
        await anyio.sleep((n - index) * 0.0005)
        return error(429, "slow down") if index % 5 == 0 else reply(f"reply to prompt {index}")

    server = Server(respond)
    async with client_for(server, max_concurrency=4) as client:
        seen = [item async for item in client.as_completed(prompts(n))]
    assert sorted(index for index, _ in seen) == list(range(n))
    for index, outcome in seen:
        if index % 5 == 0:
            assert isinstance(outcome, llmrelay.RateLimitError)
        else:
            assert outcome.text == f"reply to prompt {index}"
    assert server.indices == Counter(range(n))


async def test_as_completed_stopped_early_cancels_the_rest() -> None:
    async def respond(index: int) -> httpx.Response:
        await anyio.sleep(0.001)
        return reply(f"reply to prompt {index}")

    server = Server(respond)
    async with client_for(server, max_concurrency=1) as client:
        with anyio.fail_after(5):
            async with aclosing(client.as_completed(prompts(50))) as items:
                async for index, outcome in items:
                    assert outcome.text == f"reply to prompt {index}"
                    break
        sent = len(server.requests)
        assert sent < 50
        await anyio.sleep(0.05)
        assert len(server.requests) == sent  # nothing runs on in the background
        assert (await client.chat("prompt 7")).text == "reply to prompt 7"


async def test_as_completed_bad_kwargs_give_config_errors_per_prompt() -> None:
    server = Server()
    async with client_for(server) as client:
        seen = [item async for item in client.as_completed(prompts(3), max_tokens=0)]
    assert sorted(index for index, _ in seen) == [0, 1, 2]
    assert all(isinstance(outcome, llmrelay.ConfigError) for _, outcome in seen)
    assert server.requests == []
