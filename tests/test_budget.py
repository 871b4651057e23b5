"""Budgets: `AsyncClient(..., budget=Budget(max_cost_usd=..., max_tokens=...))`.

What is sent is seen by the server (the exact-bytes loopback server, or the mock's reply
count in `client.usage`); nothing is sent for a call the budget refuses.
"""

from __future__ import annotations

from typing import Any

import pytest

import llmrelay
from _loopback import Request, Response, chat_completion, json_response, loopback
from llmrelay import AsyncClient, Budget, BudgetExceededError, ConfigError, LLMError

# $1 per million tokens in and out: a cost in dollars is a count of tokens / 1e6.
ONE_DOLLAR_A_MILLION = {"mock-echo": (1.0, 1.0)}
# $1 per token: the arithmetic in whole dollars.
DOLLAR_A_TOKEN = {"mock-echo": (1e6, 1e6)}


def client(budget: Budget, **options: Any) -> AsyncClient:
    options.setdefault("prices", DOLLAR_A_TOKEN)
    return AsyncClient("mock", model="mock-echo", budget=budget, **options)


async def test_a_call_that_would_pass_the_cost_budget_is_refused_before_sending() -> None:
    # "hi" is 1 prompt token; max_tokens=4: the estimate is $5 a call.
    async with client(Budget(max_cost_usd=9.0)) as c:
        first = await c.chat("hi", max_tokens=4)
        assert first.usage is not None
        spent = first.usage.total_tokens  # $1 a token
        with pytest.raises(BudgetExceededError) as caught:
            await c.chat("hi", max_tokens=9)  # spent + $10 > $9
        error = caught.value
        assert isinstance(error, LLMError)
        assert error.limit == "max_cost_usd"
        assert error.spent_usd == pytest.approx(spent) and error.estimate_usd == pytest.approx(10)
        assert "nothing was sent" in str(error) and "$9.0000" in str(error)
        assert c.usage.requests == 1  # the refused call never reached the server


async def test_the_token_budget_counts_prompt_and_completion_tokens() -> None:
    async with client(Budget(max_tokens=20)) as c:
        reply = await c.chat("hello there", max_tokens=3)
        assert reply.usage is not None
        with pytest.raises(BudgetExceededError) as caught:
            await c.chat("hello there", max_tokens=20 - reply.usage.total_tokens)
        assert caught.value.limit == "max_tokens"
        assert caught.value.spent_tokens == reply.usage.total_tokens


async def test_a_call_without_max_tokens_is_estimated_at_the_documented_default() -> None:
    default = llmrelay._constants.BUDGET_DEFAULT_COMPLETION_TOKENS
    async with client(Budget(max_tokens=default)) as c:
        with pytest.raises(BudgetExceededError) as caught:
            await c.chat("hi")  # 1 prompt token + the default completion
    assert caught.value.estimate_tokens == default + 1


async def test_a_cost_budget_needs_a_price_for_the_model() -> None:
    async with client(Budget(max_cost_usd=1.0), prices={}) as c:
        with pytest.raises(
            ConfigError, match="a budget in dollars needs a price for model 'mock-echo'"
        ):
            await c.chat("hi")


async def test_spending_is_settled_with_what_the_reply_reports() -> None:
    async with client(Budget(max_cost_usd=1000.0)) as c:
        for _ in range(3):
            await c.chat("hello", max_tokens=50)  # estimated $52, costs a few dollars
        assert c.usage.cost is not None and c.usage.cost < 30


async def test_a_stream_is_charged_what_it_reports_when_it_ends() -> None:
    async with client(Budget(max_tokens=1000)) as c:
        final = await c.stream("one two three", max_tokens=10).final()
        assert final.usage is not None
        with pytest.raises(BudgetExceededError) as caught:
            await c.chat("x", max_tokens=1000 - final.usage.total_tokens)
    assert caught.value.spent_tokens == final.usage.total_tokens


async def test_concurrent_calls_cannot_all_pass_on_the_same_money() -> None:
    # Each call may cost $11 (1 prompt token + max_tokens 10); $25 allows two at a time.
    async with client(Budget(max_cost_usd=25.0)) as c:
        results = await c.batch(
            ["a"] * 6,
            max_tokens=10,
            return_exceptions=True,
            extra_headers={"x-mock-chunk-delay": "0.01"},
        )
    spent = sum(r.usage.total_tokens for r in results if isinstance(r, llmrelay.ChatResponse))
    assert spent <= 25  # never more than the budget, however many ran at once
    assert c.usage.cost is not None and c.usage.cost <= 25


async def test_a_batch_stops_submitting_and_every_unsent_prompt_gets_the_error() -> None:
    # $1 a token; "aaaa" = 1 prompt token, max_tokens=3: $4 estimate, a little less spent.
    async with client(Budget(max_cost_usd=10.0), max_concurrency=1) as c:
        results = await c.batch(["aaaa"] * 8, max_tokens=3, return_exceptions=True)
    assert len(results) == 8  # one outcome per input
    ok = [r for r in results if isinstance(r, llmrelay.ChatResponse)]
    refused = [r for r in results if isinstance(r, BudgetExceededError)]
    assert ok and refused and len(ok) + len(refused) == 8
    assert c.usage.requests == len(ok)
    assert isinstance(results[-1], BudgetExceededError)  # nothing sent after the refusal


async def test_without_return_exceptions_the_budget_error_carries_every_outcome() -> None:
    async with client(Budget(max_cost_usd=10.0), max_concurrency=1) as c:
        with pytest.raises(BudgetExceededError) as caught:
            await c.batch(["aaaa"] * 8, max_tokens=3)
    results = caught.value.results
    assert results is not None and len(results) == 8
    assert isinstance(results[0], llmrelay.ChatResponse)
    assert isinstance(results[-1], BudgetExceededError)


async def test_as_completed_gives_the_unsent_prompts_the_budget_error() -> None:
    async with client(Budget(max_cost_usd=10.0), max_concurrency=1) as c:
        outcomes = dict([item async for item in c.as_completed(["aaaa"] * 6, max_tokens=3)])
    assert sorted(outcomes) == list(range(6))
    assert isinstance(outcomes[5], BudgetExceededError)


async def test_a_budget_and_fallbacks_compose() -> None:
    async with AsyncClient(
        "mock",
        model="mock-echo+fault=503",
        max_retries=0,
        prices=DOLLAR_A_TOKEN,
        budget=Budget(max_cost_usd=100.0),
        fallbacks=[llmrelay.Route("mock", model="mock-echo")],
    ) as c:
        reply = await c.chat("hi", max_tokens=3)
        assert reply.text == "echo: hi"
        with pytest.raises(BudgetExceededError):
            await c.chat("hi", max_tokens=200)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "Budget needs max_cost_usd, max_tokens, or both"),
        ({"max_cost_usd": -1}, "max_cost_usd must be a number of dollars >= 0"),
        ({"max_cost_usd": float("nan")}, "max_cost_usd must be a number"),
        ({"max_tokens": 1.5}, "max_tokens must be an int >= 0"),
        ({"max_tokens": True}, "max_tokens must be an int >= 0"),
    ],
)
def test_a_bad_budget_is_a_config_error(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Budget(**kwargs)


def test_a_budget_that_is_not_a_budget_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"budget must be an llmrelay\.Budget"):
        AsyncClient("mock", budget=5.0)  # type: ignore[arg-type]


async def test_over_http_a_refused_call_reaches_no_server() -> None:
    def answer(request: Request) -> Response:
        return json_response(chat_completion("fine"))  # 8 tokens

    async with (
        loopback(answer) as server,
        AsyncClient(
            "openai",
            api_key="k",
            base_url=server.base_url,
            model="gpt-4o-mini",
            budget=Budget(max_tokens=30),
        ) as c,
    ):
        await c.chat("hi", max_tokens=10)
        with pytest.raises(BudgetExceededError):
            await c.chat("hi", max_tokens=25)
    assert len(server.requests) == 1


async def test_a_stream_closed_before_its_end_is_charged_its_estimate() -> None:
    # Closing early does not undo what the provider generated (and bills): the stream reported
    # no usage, so it is charged its estimate (2 prompt tokens + max_tokens 40 = 42).
    async with client(Budget(max_tokens=100)) as c:
        async with c.stream("one two three four five six", max_tokens=40) as stream:
            async for _ in stream:
                break
        with pytest.raises(BudgetExceededError) as caught:
            await c.chat("x", max_tokens=60)  # 1 + 60 fits 100 only if the stream was free
    assert caught.value.spent_tokens >= 40


@pytest.mark.parametrize("budget", [Budget(max_cost_usd=5.0), Budget(max_tokens=50)])
async def test_a_budgeted_client_submits_and_reads_provider_batches(budget: Budget) -> None:
    # A provider Batch API's requests (upload, create, poll, results) are not chat calls the
    # budget can price: they go through, and the chat budget stays untouched by them.
    seen: list[tuple[str, str | None]] = []
    hooks = llmrelay.Hooks(on_request=lambda e: seen.append((e.operation, e.model)))
    async with client(budget, hooks=hooks) as c:
        job = await c.submit_batch(["hello", "world"], extra_headers={"x-mock-batch": "delay=0"})
        job = await c.wait_batch(job.id, poll_interval=0.01)
        results = await c.batch_results(job.id)
        assert [r.text for r in results] == ["echo: hello", "echo: world"]  # type: ignore[union-attr]
        reply = await c.chat("hi", max_tokens=3)  # the whole budget is still there
        assert reply.text == "echo: hi"
    assert {operation for operation, _ in seen[:-1]} == {"batch"}
    assert seen[-1] == ("chat", "mock-echo")
