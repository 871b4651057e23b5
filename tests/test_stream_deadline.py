"""The total deadline of a stream (`Timeout(total=...)`): one timer per stream on asyncio.

It must end a read that is stalled, fail the next read when it passed between reads, and never
swallow or steal a cancellation that is not its own.
"""

from __future__ import annotations

import time

import anyio
import pytest

import llmrelay

PROMPT = "one two three four five six"


def _client() -> llmrelay.AsyncClient:
    return llmrelay.AsyncClient(provider="mock", max_retries=0)


async def test_a_stalled_read_ends_at_the_deadline_as_a_typed_stream_error() -> None:
    async with _client() as client:
        started = time.monotonic()
        with pytest.raises(llmrelay.StreamError) as caught:
            async for _ in client.stream(
                PROMPT,
                timeout=llmrelay.Timeout(total=0.2, read=30),
                extra_headers={"x-mock-fault": "stall-mid;seconds=5;after=1"},
            ):
                pass
        assert time.monotonic() - started < 2.0
    assert isinstance(caught.value.__cause__, llmrelay.APITimeoutError)
    assert "total timeout" in str(caught.value.__cause__)
    assert caught.value.partial  # the chunk before the stall is kept


async def test_a_deadline_that_passes_between_reads_fails_the_next_read() -> None:
    async with _client() as client:
        stream = client.stream(PROMPT, timeout=llmrelay.Timeout(total=0.1, read=30))
        chunks = []
        with pytest.raises(llmrelay.StreamError) as caught:
            async for chunk in stream:
                chunks.append(chunk)
                await anyio.sleep(0.15)  # the consumer is slow: the deadline passes here
        # What was read before the deadline is delivered, nothing after it.
        assert chunks and caught.value.partial == "".join(c.text for c in chunks)
        assert "".join(c.text for c in chunks) != "echo: " + PROMPT
        assert isinstance(caught.value.__cause__, llmrelay.APITimeoutError)
        # The slot is free again: another call on this client goes through.
        with anyio.fail_after(5):
            assert (await client.chat("ok")).text == "echo: ok"


async def test_the_callers_own_cancellation_is_not_turned_into_a_timeout() -> None:
    async with _client() as client:
        with anyio.move_on_after(0.1) as scope:
            async for _ in client.stream(
                PROMPT,
                timeout=llmrelay.Timeout(total=10, read=30),
                extra_headers={"x-mock-fault": "stall-mid;seconds=5;after=1"},
            ):
                pass
        assert scope.cancelled_caught
        with anyio.fail_after(5):
            assert (await client.chat("ok")).text == "echo: ok"


def _live_deadline_timers() -> list[object]:
    """The stream-deadline timers still scheduled on the running asyncio loop."""
    import asyncio

    from llmrelay._deadline import StreamDeadline

    scheduled = asyncio.get_running_loop()._scheduled  # type: ignore[attr-defined]
    return [
        handle
        for handle in scheduled
        if not handle.cancelled()
        and isinstance(getattr(handle._callback, "__self__", None), StreamDeadline)
    ]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_stream_that_finishes_in_time_leaves_no_timer_behind() -> None:
    async with _client() as client:
        stream = client.stream(PROMPT, timeout=llmrelay.Timeout(total=0.3, read=30))
        reply = await stream.final()
        assert reply.text == "echo: " + PROMPT
        assert _live_deadline_timers() == []  # its one timer was cancelled at the end
        async for _ in client.stream(PROMPT, timeout=llmrelay.Timeout(total=0.3, read=30)):
            break
        await anyio.sleep(0.01)  # the loop finalises the dropped generator on its next turns
        assert _live_deadline_timers() == []  # and when the consumer stops early
        assert (await client.chat("after")).text == "echo: after"
