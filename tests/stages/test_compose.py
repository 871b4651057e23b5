"""`build_chain`: the order of the stages (retry → slot → rate limit → opener → sender), and
what that order means for a caller, over a fake sender: the total deadline covers the waits
for a slot and for the rate limiter and the read up to a stream's first chunk; failures the
opener finds are retried; a stream holds its slot, and settles its tokens, until it ends."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest

from llmrelay import (
    APIConnectionError,
    APITimeoutError,
    BadRequestError,
    ChatResponse,
    RateLimit,
    RetryPolicy,
    Usage,
)
from llmrelay._keymask import KeyMask
from llmrelay._usage import UsageTotals
from llmrelay.stages import Call, Reply, Stage, StreamHead
from llmrelay.stages._compose import build_chain
from llmrelay.stages._opener import ReplyOpener
from llmrelay.stages._ratelimit import RateLimitStage
from llmrelay.stages._retry import RetryStage
from llmrelay.stages._slot import ConcurrencySlot

from ._fakes import (
    HOLD,
    OPENAI,
    FakeReply,
    Inner,
    completion,
    delta,
    event,
    json_reply,
    make_call,
    sse_reply,
)

pytestmark = pytest.mark.anyio

FAST = RetryPolicy(max_retries=3, backoff_base=0.0)


def build(
    sender: Stage, *, rate_limit: RateLimit | None = None, max_concurrency: int = 2
) -> tuple[Stage, UsageTotals]:
    usage = UsageTotals()
    chain = build_chain(
        sender,
        provider=OPENAI,
        mask=KeyMask("sk-test"),
        usage=usage,
        max_concurrency=max_concurrency,
        rate_limit=rate_limit,
    )
    return chain, usage


def stages(chain: Any) -> list[Any]:
    """The chain's stages, outermost first."""
    out = [chain]
    while hasattr(out[-1], "_inner"):
        out.append(out[-1]._inner)
    return out


def slot_of(chain: Stage) -> ConcurrencySlot:
    (slot,) = [s for s in stages(chain) if isinstance(s, ConcurrencySlot)]
    return slot


def fresh(make: Callable[[], FakeReply]) -> Callable[[Call], Awaitable[Reply]]:
    """A sender step that answers every attempt with a new reply."""

    async def step(call: Call) -> Reply:
        return make()

    return step


STREAM = [delta(role="assistant", content=""), delta(content="Hi"), delta(finish_reason="stop")]


@pytest.mark.parametrize(
    ("rate_limit", "order"),
    [
        (None, [RetryStage, ConcurrencySlot, ReplyOpener, Inner]),
        (
            RateLimit(requests_per_minute=60),
            [RetryStage, ConcurrencySlot, RateLimitStage, ReplyOpener, Inner],
        ),
    ],
    ids=["no-rate-limit", "rate-limit"],
)
async def test_the_stage_order(rate_limit: RateLimit | None, order: list[type]) -> None:
    sender = Inner(json_reply(completion()))
    chain, _ = build(sender, rate_limit=rate_limit)
    assert [type(stage) for stage in stages(chain)] == order
    assert stages(chain)[-1] is sender


async def test_a_call_through_the_chain_is_retried_after_an_error_status() -> None:
    sender = Inner(
        json_reply({"error": {"message": "busy"}}, 503, **{"retry-after": "1"}),
        json_reply({"error": {"message": "busy"}}, 503, **{"retry-after": "1"}),
        json_reply(completion("Finally.")),
    )
    chain, usage = build(sender)
    reply = await chain.send(make_call())
    assert isinstance(reply.value, ChatResponse) and reply.value.text == "Finally."
    assert sender.times == [0.0, 1.0, 2.0]
    assert (usage.retries, usage.failures) == (2, 0)
    assert slot_of(chain).free == 2


async def test_a_final_error_status_fails_once_and_frees_the_slot() -> None:
    sender = Inner(json_reply({"error": {"message": "bad"}}, 400))
    chain, usage = build(sender)
    with pytest.raises(BadRequestError):
        await chain.send(make_call())
    assert len(sender.times) == 1
    assert (usage.retries, usage.failures) == (0, 1)
    assert slot_of(chain).free == 2


async def test_a_stream_holds_its_slot_and_settles_its_tokens_when_it_ends() -> None:
    sender = Inner(fresh(lambda: sse_reply(*STREAM)))
    chain, usage = build(sender, rate_limit=RateLimit(tokens_per_minute=600))
    reply = await chain.send(make_call(stream=True, estimated_tokens=10))
    assert isinstance(reply.value, StreamHead)
    assert [c.text for c in reply.value.chunks] == ["", "Hi"]
    assert slot_of(chain).free == 1  # held while the caller reads
    await reply.aclose(Usage(prompt_tokens=5, completion_tokens=25, total_tokens=30))
    assert slot_of(chain).free == 2
    assert usage.failures == 0
    await (await chain.send(make_call(stream=True, estimated_tokens=10))).aclose()
    assert sender.times == [0.0, 3.0]  # the 20 tokens over the estimate were paid for


async def test_a_stream_cut_before_its_first_chunk_is_retried() -> None:
    sender = Inner(
        sse_reply(STREAM[0]),  # the role-only opener, then the connection drops
        sse_reply(STREAM[0], APIConnectionError("reset", provider="fake")),
        sse_reply(event({"error": {"message": "overloaded", "type": "server_error"}})),
        sse_reply(*STREAM),
    )
    chain, usage = build(sender)
    call = make_call(stream=True, retry=FAST)
    reply = await chain.send(call)
    assert [c.text for c in reply.value.chunks] == ["", "Hi"]
    assert (usage.retries, usage.failures) == (3, 0)
    assert all(r.closed for r in sender.replies[:3])  # every failed attempt's body closed
    await reply.aclose()


async def test_the_deadline_covers_the_wait_for_a_slot() -> None:
    sender = Inner(fresh(lambda: sse_reply(*STREAM)))
    chain, usage = build(sender, max_concurrency=1)
    held = await chain.send(make_call(stream=True))
    with pytest.raises(APITimeoutError, match="total timeout"):
        await chain.send(make_call(total=2.0))
    assert anyio.current_time() == 2.0
    assert len(sender.times) == 1  # the second call never reached the sender
    assert usage.failures == 1
    await held.aclose()
    assert slot_of(chain).free == 1


async def test_the_deadline_covers_the_wait_for_the_rate_limiter() -> None:
    sender = Inner(fresh(lambda: json_reply(completion())))
    chain, _ = build(sender, rate_limit=RateLimit(requests_per_minute=60))
    await chain.send(make_call())
    with pytest.raises(APITimeoutError):
        await chain.send(make_call(total=0.5))  # the next request is allowed at 1 s
    assert anyio.current_time() == 0.5
    assert slot_of(chain).free == 2


async def test_the_deadline_covers_the_read_up_to_the_first_chunk() -> None:
    stalled = sse_reply(STREAM[0], HOLD)
    sender = Inner(stalled)
    chain, usage = build(sender)
    with pytest.raises(APITimeoutError):
        await chain.send(make_call(stream=True, total=3.0))
    assert anyio.current_time() == 3.0
    assert stalled.closed
    assert slot_of(chain).free == 2
    assert usage.failures == 1
