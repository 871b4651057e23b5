"""What a type checker sees: the sync `Client` has the same typed parameters as `AsyncClient`, so a
misspelt keyword is a checker error on either, and a correct program checks clean.

One mypy run over two small snippet files (~5-10 s cold). The snippets are only type-checked,
never run; every line that must fail carries an `# error: <text>` marker with a piece of the
expected message.
"""

from __future__ import annotations

import inspect

import pytest

import llmrelay
from _mypy import assert_reports_exactly, run_mypy
from llmrelay._batch import ChatOptions

MISTAKES = """
    import llmrelay


    async def use_async(client: llmrelay.AsyncClient) -> None:
        await client.chat("hi", temprature=1)  # error: "temprature" for "chat" of "AsyncClient"
        await client.batch(["hi"], temprature=1)  # error: "temprature" for "batch"
        await client.batch(["hi"], max_tokens="5")  # error: "max_tokens" to "batch"
        async for _ in client.as_completed(["hi"], temprature=1):  # error: "temprature"
            pass
        await client.submit_batch(["hi"], temprature=1)  # error: "temprature" for "submit_batch"


    def use_sync() -> None:
        llmrelay.Client(provider="mock", temprature=1)  # error: "temprature" for "Client"
        llmrelay.Client(provider="mock", max_concurrency="8")  # error: "max_concurrency"
        client = llmrelay.Client(provider="mock")
        client.chat("hi", temprature=1)  # error: "temprature" for "chat" of "Client"
        client.chat("hi", temperature="hot")  # error: "temperature" to "chat" of "Client"
        client.stream("hi", temprature=1)  # error: "temprature" for "stream" of "Client"
        client.batch(["hi"], temprature=1)  # error: "temprature" for "batch" of "Client"
        client.batch(["hi"], return_exception=True)  # error: "return_exception"
        client.as_completed(["hi"], temprature=1)  # error: "temprature" for "as_completed"
        client.embed(["hi"], temprature=1)  # error: "temprature" for "embed" of "Client"
        client.models(temprature=1)  # error: "temprature" for "models" of "Client"
        client.submit_batch(["hi"], temprature=1)  # error: "temprature" for "submit_batch"
        client.wait_batch("b", poll_intervall=1)  # error: "poll_intervall" for "wait_batch"
"""

CORRECT = """
    from contextlib import closing
    from typing import Any, assert_type

    import llmrelay


    async def use_async(client: llmrelay.AsyncClient) -> None:
        reply = await client.chat("hi", model="m", temperature=0.5, max_tokens=10, seed=1)
        assert_type(reply, llmrelay.ChatResponse)
        assert_type((await client.chat("hi", n=2)).choices, tuple[llmrelay.Choice, ...])
        results = await client.batch(["a", "b"], return_exceptions=True, temperature=0.2)
        assert_type(results, list[Any])
        async for index, outcome in client.as_completed(["a"], model="m", timeout=5.0):
            assert_type(index, int)
            assert_type(outcome, llmrelay.ChatResponse | llmrelay.LLMError)
        job = await client.submit_batch(["a", "b"], model="m", max_tokens=5)
        assert_type(job, llmrelay.BatchJob)
        assert_type(job.status, llmrelay.BatchStatus)
        assert_type(await client.wait_batch(job.id, poll_interval=1.0), llmrelay.BatchJob)
        outcomes = await client.batch_results(job.id)
        assert_type(outcomes, list[llmrelay.ChatResponse | llmrelay.LLMError])


    def use_sync() -> None:
        with llmrelay.Client("mock", model="m", timeout=30.0, max_retries=1) as client:
            assert_type(client.chat("hi", temperature=0.5, stop=["x"]), llmrelay.ChatResponse)
            with client.stream("hi", max_tokens=5, on_text=print) as stream:
                assert_type(stream, llmrelay.SyncStream)
                for chunk in stream:
                    assert_type(chunk, llmrelay.StreamChunk)
            assert_type(client.batch(["a"], return_exceptions=True, seed=3), list[Any])
            with closing(client.as_completed(["a", "b"], extra_body={"x": 1})) as items:
                for index, outcome in items:
                    assert_type(index, int)
                    assert_type(outcome, llmrelay.ChatResponse | llmrelay.LLMError)
            assert_type(client.embed(["a"], model="e"), llmrelay.EmbeddingResponse)
            assert_type(client.models(timeout=3), list[llmrelay.ModelInfo])
            job = client.submit_batch(["a"], temperature=0.1)
            assert_type(client.get_batch(job.id), llmrelay.BatchJob)
            assert_type(client.cancel_batch(job.id), llmrelay.BatchJob)
            assert_type(
                client.batch_results(job.id), list[llmrelay.ChatResponse | llmrelay.LLMError]
            )
        assert_type(llmrelay.Client.from_profile("work", model="m"), llmrelay.Client)
"""


@pytest.fixture(scope="module")
def mypy_output(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[int, str]]:
    """One mypy run over both snippets: {file stem: {line: messages}}."""
    pytest.importorskip("mypy")
    return run_mypy(tmp_path_factory.mktemp("typing"), {"mistakes": MISTAKES, "correct": CORRECT})


def test_mypy_reports_each_misspelt_or_mistyped_keyword(
    mypy_output: dict[str, dict[int, str]],
) -> None:
    assert_reports_exactly(mypy_output["mistakes"], MISTAKES)


def test_mypy_accepts_correct_use_of_both_clients(mypy_output: dict[str, dict[int, str]]) -> None:
    assert mypy_output["correct"] == {}


# -- one source of truth -----------------------------------------------------------------------


def test_chat_options_are_exactly_the_keyword_parameters_of_chat() -> None:
    """`batch()`/`as_completed()` take `**options: Unpack[ChatOptions]`: mypy checks that each
    option is one of `chat()`'s; this checks that none of `chat()`'s is missing."""
    params = inspect.signature(llmrelay.AsyncClient.chat).parameters
    keyword_only = [n for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    assert sorted(ChatOptions.__optional_keys__) == sorted(keyword_only)
    assert ChatOptions.__required_keys__ == frozenset()


@pytest.mark.parametrize(
    "method",
    [
        "__init__", "chat", "stream", "batch", "as_completed", "embed", "models",
        "submit_batch", "get_batch", "wait_batch", "batch_results", "cancel_batch",
    ],
)  # fmt: skip
def test_the_sync_client_shows_the_parameters_of_the_async_one(method: str) -> None:
    sync = inspect.signature(getattr(llmrelay.Client, method))
    async_ = inspect.signature(getattr(llmrelay.AsyncClient, method))
    assert sync.parameters == async_.parameters
    if method != "__init__":
        assert getattr(llmrelay.Client, method).__doc__


def test_help_shows_the_sync_return_types() -> None:
    assert inspect.signature(llmrelay.Client.stream).return_annotation == "SyncStream"
    assert inspect.signature(llmrelay.Client.chat).return_annotation == "ChatResponse"
    assert not inspect.iscoroutinefunction(llmrelay.Client.batch)
