"""`BudgetStage` over a fake inner stage: the estimate is reserved while a reply is open,
settled with the usage it reports (or its estimate when it broke off), and a call that fits
only once the calls in flight have settled waits for them."""

from __future__ import annotations

import anyio
import pytest

from llmrelay import Budget, BudgetExceededError, Usage
from llmrelay._prices import PriceTable
from llmrelay._request import ChatRequest
from llmrelay.stages import Call
from llmrelay.stages._budget import BudgetStage

from ._fakes import Inner, finished_reply, make_call, open_reply

pytestmark = pytest.mark.anyio

TABLE = PriceTable({"gpt-x": (1e6, 1e6)}, bundled=False)  # $1 a token


def call(max_tokens: int) -> Call:
    c = make_call()
    c.request = ChatRequest(
        model="gpt-x",
        messages=[{"role": "user", "content": "hi"}],  # 1 prompt token
        params={"max_tokens": max_tokens},
    )
    return c


async def test_an_open_reply_holds_its_estimate_until_it_finishes() -> None:
    stage = BudgetStage(Inner(open_reply()), budget=Budget(max_cost_usd=10), table=TABLE)
    reply = await stage.send(call(5))  # $6 reserved
    assert stage.spent_usd == 0
    reply.finish(Usage(prompt_tokens=1, completion_tokens=2, total_tokens=3))
    assert stage.spent_usd == pytest.approx(3) and stage.spent_tokens == 3
    await stage.send(call(5))  # $3 spent + $6 fits now


async def test_a_reply_that_broke_off_is_charged_its_estimate() -> None:
    stage = BudgetStage(Inner(open_reply()), budget=Budget(max_tokens=100), table=TABLE)
    reply = await stage.send(call(9))
    reply.finish(error=BudgetExceededError("stand-in for any error"))
    assert stage.spent_tokens == 10


async def test_a_call_that_fits_only_after_the_others_settle_waits_for_them() -> None:
    inner = Inner(open_reply())
    stage = BudgetStage(inner, budget=Budget(max_cost_usd=10), table=TABLE)
    first = await stage.send(call(5))  # $6 reserved: a second $6 does not fit beside it
    sent_at: list[float] = []

    async def second() -> None:
        await stage.send(call(5))
        sent_at.append(anyio.current_time())

    async with anyio.create_task_group() as tg:
        tg.start_soon(second)
        await anyio.sleep(1)
        assert not sent_at  # waiting, not refused
        first.finish(Usage(prompt_tokens=1, completion_tokens=1, total_tokens=2))
    assert len(sent_at) == 1 and len(inner.attempts) == 2


async def test_a_call_that_cannot_fit_even_alone_is_refused_at_once() -> None:
    inner = Inner(finished_reply(Usage(prompt_tokens=1, completion_tokens=1, total_tokens=2)))
    stage = BudgetStage(inner, budget=Budget(max_cost_usd=10), table=TABLE)
    with pytest.raises(BudgetExceededError) as caught:
        await stage.send(call(10))  # $11 > $10
    assert caught.value.estimate_usd == pytest.approx(11)
    assert inner.attempts == []  # nothing went down the chain
