"""The main jobs under trio, over real sockets: chat, a stream, a batch through injected faults
(every outcome back, in order), as_completed, embeddings and a stream broken off early, against
`llmrelay mock serve` on a loopback port, for each wire family. (The pool's own trio tests are in
test_pool.py; fake-clock tests in test_limits.py and test_pipeline.py run on trio too.)"""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import pytest

import llmrelay
from llmrelay.mock import MockEngine, serve


@pytest.fixture
def anyio_backend() -> str:
    return "trio"


@pytest.fixture(scope="module")
def mock_url() -> Iterator[str]:
    with serve(MockEngine()) as url:
        yield url


FAMILIES = ["openai", "anthropic", "gemini"]


def client_for(family: str, url: str) -> llmrelay.AsyncClient:
    return llmrelay.AsyncClient(
        family,
        api_key="sk-trio-test",
        base_url=url + "/v1" if family == "openai" else url,
        model="mock-echo",
        max_concurrency=8,
        retry=llmrelay.RetryPolicy(max_retries=6, backoff_base=0.001, backoff_cap=0.01),
    )


@pytest.mark.parametrize("family", FAMILIES)
async def test_chat_and_stream_on_trio(family: str, mock_url: str) -> None:
    async with client_for(family, mock_url) as client:
        reply = await client.chat("hello from trio")
        assert reply.text == "echo: hello from trio"
        async with client.stream("stream me please") as stream:
            pieces = [chunk.text async for chunk in stream if chunk.text]
            final = await stream.final()
        assert len(pieces) > 1
        assert "".join(pieces) == final.text == "echo: stream me please"


@pytest.mark.parametrize("family", FAMILIES)
async def test_batch_on_trio_returns_every_outcome_in_order(family: str, mock_url: str) -> None:
    prompts = [f"prompt number {i}" for i in range(40)]
    async with client_for(family, mock_url) as client:
        # Every call's first attempt is refused (429): each must be retried and recovered.
        fault = {"x-mock-fault": "429;times=1"}
        results = await client.batch(prompts, return_exceptions=True, extra_headers=fault)
        assert [r.text if isinstance(r, llmrelay.ChatResponse) else r for r in results] == [
            f"echo: {p}" for p in prompts
        ]
        assert client.usage.retries == len(prompts)
        seen = [index async for index, _ in client.as_completed(prompts[:10])]
    assert sorted(seen) == list(range(10))


@pytest.mark.filterwarnings(
    # httpcore reads a body through nested async generators that nothing can close from outside
    # (encode/httpx#3686); trio warns when they are collected. llmrelay's own are closed.
    r"ignore:Async generator 'http(x|core)\._:ResourceWarning",
    "ignore:Exception ignored in. <async_generator object HTTP11ConnectionByteStream:"
    "pytest.PytestUnraisableExceptionWarning",
)
async def test_breaking_out_of_a_stream_on_trio_frees_the_slot(mock_url: str) -> None:
    async with llmrelay.AsyncClient(
        "openai", api_key="sk-trio-test", base_url=mock_url + "/v1", max_concurrency=1
    ) as client:
        with anyio.fail_after(5):  # with one slot, a leaked one would hang the next call
            for _ in range(3):
                async with client.stream("a b c d e f g h", model="mock-echo") as stream:
                    async for _chunk in stream:
                        break
            embedded = await client.embed(["one", "two"], model="mock-embed")
            reply = await client.chat("still alive", model="mock-echo")
        assert len(embedded.vectors) == 2
        assert reply.text == "echo: still alive"
