"""Provider Batch APIs through the real client and the mock's Batch endpoints (in process):
`submit_batch`, `get_batch`, `wait_batch`, `batch_results`, `cancel_batch`, for the OpenAI,
Anthropic and Gemini wire formats alike: one outcome per input in input order, typed errors
per item, whole-job failures, splitting to the provider's limits, retries, and the sync face."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

import llmrelay
from llmrelay import (
    AsyncClient,
    BatchItemError,
    BatchJob,
    BatchNotReadyError,
    ChatResponse,
    ConfigError,
    RateLimitError,
)
from llmrelay import _constants as C
from llmrelay.mock import MockEngine, MockTransport
from llmrelay.mock._batches import BatchStore

pytestmark = pytest.mark.anyio

KEY = "sk-test-provider-batch-key"
BASES = {
    "openai": "http://mock.test/v1",
    "anthropic": "http://mock.test/v1",
    "gemini": "http://mock.test/v1beta",
}
FAMILIES = list(BASES)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Recorder(httpx.AsyncBaseTransport):
    """The mock transport, keeping every request it answered (method, path)."""

    def __init__(self, engine: MockEngine) -> None:
        self.inner = MockTransport(engine)
        self.seen: list[tuple[str, str]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append((request.method, request.url.path))
        return await self.inner.handle_async_request(request)


@pytest.fixture
def engine() -> MockEngine:
    return MockEngine(batch_delay=0)


def client_for(family: str, engine: MockEngine) -> tuple[AsyncClient, Recorder]:
    recorder = Recorder(engine)
    client = AsyncClient(
        provider=family,
        base_url=BASES[family],
        api_key=KEY,
        model="mock-echo",
        http_client=httpx.AsyncClient(transport=recorder),
    )
    return client, recorder


@pytest.fixture(params=FAMILIES)
async def pair(
    request: pytest.FixtureRequest, engine: MockEngine
) -> AsyncIterator[tuple[AsyncClient, Recorder]]:
    client, recorder = client_for(request.param, engine)
    async with client:
        yield client, recorder


def texts(outcomes: list[Any]) -> list[str]:
    return [o.text if isinstance(o, ChatResponse) else type(o).__name__ for o in outcomes]


async def test_one_reply_per_prompt_in_input_order(pair: tuple[AsyncClient, Recorder]) -> None:
    client, _ = pair
    prompts = [f"prompt {i}" for i in range(12)]
    job = await client.submit_batch(prompts, max_tokens=50)
    assert isinstance(job, BatchJob) and job.provider == client.provider.name
    assert job.created_at is not None and job.parts == ()
    done = await client.wait_batch(job.id, poll_interval=0.01)
    assert done.status == "completed" and done.done
    assert done.counts == llmrelay.BatchCounts(total=12, succeeded=12, failed=0)
    outcomes = await client.batch_results(job.id)
    assert texts(outcomes) == [f"echo: prompt {i}" for i in range(12)]
    assert all(o.usage is not None and o.usage.completion_tokens == 3 for o in outcomes)


async def test_failed_items_are_typed_errors_in_their_slots(
    pair: tuple[AsyncClient, Recorder],
) -> None:
    client, _ = pair
    job = await client.submit_batch(
        ["a", "b", "c", "d"],
        extra_headers={"x-mock-batch": "fail-items=1,3;item-status=429"},
    )
    job = await client.wait_batch(job.id, poll_interval=0.01)
    assert (job.counts.succeeded, job.counts.failed) == (2, 2)
    outcomes = await client.batch_results(job.id)
    assert texts(outcomes) == ["echo: a", "RateLimitError", "echo: c", "RateLimitError"]
    error = outcomes[1]
    assert isinstance(error, RateLimitError) and error.status_code == 429
    assert "Rate limit exceeded" in str(error) and KEY not in str(error)


async def test_an_expired_job_keeps_what_finished(pair: tuple[AsyncClient, Recorder]) -> None:
    client, _ = pair
    job = await client.submit_batch(
        ["a", "b", "c"], extra_headers={"x-mock-batch": "expire;done=1"}
    )
    job = await client.wait_batch(job.id, poll_interval=0.01)
    assert job.status == "expired"
    outcomes = await client.batch_results(job.id)
    assert texts(outcomes) == ["echo: a", "BatchItemError", "BatchItemError"]
    assert all(isinstance(o, BatchItemError) and o.reason == "expired" for o in outcomes[1:])
    assert [o.index for o in outcomes[1:]] == [1, 2]


@pytest.mark.parametrize("family", ["openai", "gemini"])
async def test_a_job_that_fails_validation_fails_every_input(
    family: str, engine: MockEngine
) -> None:
    client, _ = client_for(family, engine)
    async with client:
        job = await client.submit_batch(["a", "b"], extra_headers={"x-mock-batch": "fail"})
        job = await client.wait_batch(job.id, poll_interval=0.01)
        assert job.status == "failed" and job.errors
        outcomes = await client.batch_results(job.id)
    assert len(outcomes) == 2
    for index, outcome in enumerate(outcomes):
        assert isinstance(outcome, BatchItemError)
        assert (outcome.reason, outcome.index) == ("failed", index)
        assert "mock validation failure" in str(outcome)


async def test_anthropic_refuses_an_invalid_job_when_it_is_made(engine: MockEngine) -> None:
    client, _ = client_for("anthropic", engine)
    async with client:
        with pytest.raises(llmrelay.BadRequestError, match="validation failure"):
            await client.submit_batch(["a"], extra_headers={"x-mock-batch": "fail"})


async def test_results_of_a_running_job_and_its_cancel(engine: MockEngine) -> None:
    clock = FakeClock()
    engine.batches = BatchStore(engine.handle, delay=100, clock=clock)
    for family in FAMILIES:
        client, _ = client_for(family, engine)
        async with client:
            job = await client.submit_batch(["a", "b", "c", "d"])
            clock.now += 50  # half way: half the requests are done
            job = await client.get_batch(job.id)
            assert job.status == "in_progress" and not job.done
            assert job.counts.succeeded == 2 and job.counts.pending == 2
            with pytest.raises(BatchNotReadyError, match="has not ended") as caught:
                await client.batch_results(job.id)
            assert caught.value.job == job
            cancelling = await client.cancel_batch(job.id)
            assert cancelling.status in ("cancelling", "cancelled"), family
            job = await client.wait_batch(job.id, poll_interval=0.01)
            assert job.status == "cancelled", family
            outcomes = await client.batch_results(job.id)
        assert texts(outcomes)[:2] == ["echo: a", "echo: b"], family
        assert [o.reason for o in outcomes[2:] if isinstance(o, BatchItemError)] == [
            "cancelled",
            "cancelled",
        ], family


async def test_a_job_over_the_limits_is_split_and_shown_as_one(
    monkeypatch: pytest.MonkeyPatch, pair: tuple[AsyncClient, Recorder]
) -> None:
    client, recorder = pair
    for name in ("OPENAI", "ANTHROPIC", "GEMINI"):
        monkeypatch.setattr(C, f"{name}_BATCH_MAX_REQUESTS", 4)
    prompts = [f"p{i}" for i in range(10)]
    job = await client.submit_batch(prompts)
    assert job.id.startswith("split:") and len(job.parts) == 3
    assert job.counts.total == 10
    done = await client.wait_batch(job.id, poll_interval=0.01)
    assert done.status == "completed" and done.counts.succeeded == 10
    assert texts(await client.batch_results(job.id)) == [f"echo: p{i}" for i in range(10)]
    creates = [path for method, path in recorder.seen if method == "POST"]
    assert len([p for p in creates if not p.endswith("/files")]) == 3


def test_splitting_follows_the_byte_limit_too(monkeypatch: pytest.MonkeyPatch) -> None:
    from llmrelay._provider_batch import split

    monkeypatch.setattr(C, "BATCH_ENVELOPE_BYTES", 0)
    items = [b"x" * 40] * 5
    assert split(items, 100, 100) == [(0, 2), (2, 4), (4, 5)]
    assert split(items, 2, 10_000) == [(0, 2), (2, 4), (4, 5)]
    with pytest.raises(ConfigError, match="more than one job may hold"):
        split([b"x" * 200], 100, 100)


async def test_a_failed_part_cancels_the_parts_already_made(
    monkeypatch: pytest.MonkeyPatch, engine: MockEngine
) -> None:
    monkeypatch.setattr(C, "ANTHROPIC_BATCH_MAX_REQUESTS", 2)
    client, _ = client_for("anthropic", engine)
    calls = 0
    real = engine.batches._anthropic_create

    def second_fails(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            from llmrelay.mock._common import RequestError

            raise RequestError("mock: the second part is refused")
        return real(*args)

    monkeypatch.setattr(engine.batches, "_anthropic_create", second_fails)
    engine.batches.delay = 100
    async with client:
        with pytest.raises(llmrelay.BadRequestError, match="second part"):
            await client.submit_batch(["a", "b", "c"])
        first = await client.get_batch("msgbatch_mock00000001")
    assert first.status in ("cancelling", "cancelled")


async def test_a_refused_create_is_retried_like_any_call(
    pair: tuple[AsyncClient, Recorder],
) -> None:
    client, recorder = pair
    job = await client.submit_batch(["a"], extra_headers={"x-mock-fault": "503;times=1"})
    assert (await client.wait_batch(job.id, poll_interval=0.01)).status == "completed"
    posts = [path for method, path in recorder.seen if method == "POST"]
    # Each of its calls was refused once, then retried (OpenAI's upload and create alike).
    assert set(Counter(posts).values()) == {2}


@pytest.mark.parametrize("provider", ["deepseek", "groq", "azure", "ollama"])
def test_providers_without_a_batch_api_say_which_have_one(provider: str) -> None:
    from llmrelay._provider_batch import batch_wire
    from llmrelay.providers import get_provider

    environ = {"AZURE_OPENAI_ENDPOINT": "https://x.openai.azure.com"}
    with pytest.raises(ConfigError) as caught:
        batch_wire(get_provider(provider, environ))
    message = str(caught.value)
    assert provider in message and "anthropic, gemini, mock, openai" in message


async def test_the_config_error_comes_before_anything_is_sent() -> None:
    transport = Recorder(MockEngine())
    async with AsyncClient(
        provider="deepseek", api_key=KEY, http_client=httpx.AsyncClient(transport=transport)
    ) as client:
        with pytest.raises(ConfigError, match="no Batch API"):
            await client.submit_batch(["a"], model="deepseek-chat")
    assert transport.seen == []


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda c: c.submit_batch("one prompt"), TypeError),
        (lambda c: c.submit_batch([]), ConfigError),
        (lambda c: c.submit_batch(["a"], temprature=1), TypeError),
        (lambda c: c.submit_batch(["a"], temperature=9), ConfigError),
        (lambda c: c.submit_batch([[{"role": "robot", "content": "x"}]]), ConfigError),
        (lambda c: c.get_batch(""), ConfigError),
        (lambda c: c.get_batch("split:batch_1"), ConfigError),
        (lambda c: c.cancel_batch("../files/x"), ConfigError),
        (lambda c: c.batch_results("batch_1?x=1"), ConfigError),
        (lambda c: c.wait_batch("batch_1", poll_interval=0), ConfigError),
    ],
)
async def test_bad_arguments_are_typed_errors_before_sending(
    call: Callable[[AsyncClient], Any], error: type[Exception]
) -> None:
    transport = Recorder(MockEngine())
    async with AsyncClient(
        provider="openai", api_key=KEY, http_client=httpx.AsyncClient(transport=transport)
    ) as client:
        with pytest.raises(error):
            await call(client)
    assert transport.seen == []


async def test_an_unknown_job_is_a_not_found_error(pair: tuple[AsyncClient, Recorder]) -> None:
    client, _ = pair
    unknown = "batches/nope" if client.provider.name == "gemini" else "batch_nope"
    with pytest.raises(llmrelay.NotFoundError):
        await client.get_batch(unknown)


async def test_the_mock_provider_speaks_it_in_process() -> None:
    async with AsyncClient(provider="mock") as client:
        job = await client.submit_batch(
            ["hello", "world"], extra_headers={"x-mock-batch": "delay=0.1"}
        )
        seen: list[str] = []
        job = await client.wait_batch(
            job.id, poll_interval=0.05, on_progress=lambda j: seen.append(j.status)
        )
        assert seen[-1] == "completed" and job.provider == "mock"
        assert texts(await client.batch_results(job.id)) == ["echo: hello", "echo: world"]


def test_the_sync_client_mirrors_the_async_methods() -> None:
    with llmrelay.Client(provider="mock") as client:
        job = client.submit_batch(["hi"], max_tokens=5, extra_headers={"x-mock-batch": "delay=0"})
        job = client.wait_batch(job.id, poll_interval=0.05)
        assert client.get_batch(job.id).status == "completed"
        assert texts(client.batch_results(job.id)) == ["echo: hi"]
        assert client.cancel_batch(job.id).status == "completed"  # nothing left to cancel


async def test_wait_batch_gives_up_after_its_timeout(engine: MockEngine) -> None:
    engine.batches.delay = 100
    client, _ = client_for("openai", engine)
    async with client:
        job = await client.submit_batch(["a"])
        with pytest.raises(TimeoutError):
            await client.wait_batch(job.id, poll_interval=0.01, timeout=0.05)


async def test_a_create_whose_answer_was_lost_is_retried_into_the_same_job(
    pair: tuple[AsyncClient, Recorder], engine: MockEngine
) -> None:
    client, _ = pair
    # The first attempt of each call is made, then its answer cut off half way.
    job = await client.submit_batch(["a", "b"], extra_headers={"x-mock-fault": "reset;times=1"})
    assert engine.batches.created == 1  # retried with the same idempotency key: one job
    job = await client.wait_batch(job.id, poll_interval=0.01)
    assert texts(await client.batch_results(job.id)) == ["echo: a", "echo: b"]
