"""`ConcurrencySlot` over a fake inner stage: a call's slot is free as soon as its reply is
read, a stream's is held until the stream is finished, closed or fails, a failed or cancelled
attempt gives its slot back, and a retry's backoff sleep holds none."""

from __future__ import annotations

import anyio
import pytest

from llmrelay import APIConnectionError, StreamError, Usage
from llmrelay._usage import UsageTotals
from llmrelay.stages import Call, Reply
from llmrelay.stages._retry import RetryStage
from llmrelay.stages._slot import ConcurrencySlot

from ._fakes import Inner, finished_reply, make_call, open_reply, status_error

pytestmark = pytest.mark.anyio


async def test_a_call_s_slot_is_free_once_its_reply_is_read() -> None:
    slot = ConcurrencySlot(Inner(finished_reply(Usage(total_tokens=2))), limit=2)
    for _ in range(5):
        await slot.send(make_call())
    assert slot.free == 2


async def test_a_stream_holds_its_slot_until_it_is_finished() -> None:
    slot = ConcurrencySlot(Inner(open_reply()), limit=2)
    first = await slot.send(make_call(stream=True))
    second = await slot.send(make_call(stream=True))
    assert slot.free == 0
    await first.aclose(Usage(total_tokens=5))  # read to its end
    assert slot.free == 1
    second.finish(error=StreamError("cut", provider="fake"))  # failed mid-stream
    assert slot.free == 2
    await first.aclose()  # closing again gives nothing back twice
    second.finish()
    assert slot.free == 2


async def test_a_caller_waits_for_a_slot_until_a_stream_ends() -> None:
    inner = Inner(open_reply())
    slot = ConcurrencySlot(inner, limit=2)
    streams = [await slot.send(make_call(stream=True)) for _ in range(2)]
    started: list[float] = []

    async def third() -> None:
        reply = await slot.send(make_call(stream=True))
        started.append(anyio.current_time())
        await reply.aclose()

    async with anyio.create_task_group() as tg:
        tg.start_soon(third)
        await anyio.sleep(3.0)
        assert started == []  # both slots taken
        await streams[1].aclose()  # the user closes one stream early
    assert started == [3.0]
    await streams[0].aclose()
    assert slot.free == 2


@pytest.mark.parametrize(
    "error",
    [
        status_error(503),
        APIConnectionError("fake: connection refused", provider="fake"),
        RuntimeError("a bug below"),
    ],
    ids=["status", "connection", "bug"],
)
async def test_a_failed_attempt_gives_its_slot_back(error: BaseException) -> None:
    slot = ConcurrencySlot(Inner(error), limit=1)
    with pytest.raises(type(error)):
        await slot.send(make_call())
    assert slot.free == 1


async def test_a_cancelled_attempt_gives_its_slot_back() -> None:
    async def hang(call: Call) -> Reply:
        await anyio.sleep_forever()
        raise AssertionError

    slot = ConcurrencySlot(Inner(hang), limit=1)
    with anyio.move_on_after(1.0):
        await slot.send(make_call())
    assert slot.free == 1


async def test_a_caller_cancelled_while_waiting_takes_no_slot() -> None:
    slot = ConcurrencySlot(Inner(open_reply()), limit=1)
    held = await slot.send(make_call(stream=True))
    with anyio.move_on_after(1.0) as scope:
        await slot.send(make_call(stream=True))
    assert scope.cancelled_caught
    assert slot.free == 0  # still the first stream's
    await held.aclose()
    assert slot.free == 1


async def test_a_retry_s_backoff_holds_no_slot() -> None:
    """Retry sits above the slot: while one call sleeps 5 s before its retry, another call uses
    the only slot at once."""
    inner = Inner(status_error(503, {"retry-after": "5"}), finished_reply(), finished_reply())
    slot = ConcurrencySlot(inner, limit=1)
    retry = RetryStage(slot, usage=UsageTotals(), provider="fake")

    async with anyio.create_task_group() as tg:
        tg.start_soon(retry.send, make_call())
        await anyio.sleep(0.5)
        assert slot.free == 1  # the first call is asleep, its slot given back
        await retry.send(make_call())
    assert inner.times == [0.0, 0.5, 5.0]
    assert slot.free == 1
