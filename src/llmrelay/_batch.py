"""Many prompts through one pipeline: `batch()` (input order) and `as_completed()` (finish order).

A fixed set of worker tasks pulls prompts by index, so a batch of 100,000 prompts holds a few
dozen tasks, not 100,000. Each worker writes its outcome into the prompt's own slot: one outcome
per input, nothing lost, nothing duplicated.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from ._exceptions import LLMError

Call = Callable[..., Awaitable[Any]]


async def run_batch(
    call: Call,
    prompts: Sequence[Any],
    kwargs: Mapping[str, Any],
    *,
    return_exceptions: bool,
    workers: int,
) -> list[Any]:
    results: list[Any] = [None] * len(prompts)
    next_index = 0
    first_error: list[BaseException] = []

    async def worker(scope: anyio.CancelScope) -> None:
        nonlocal next_index
        while next_index < len(prompts):
            index = next_index
            next_index += 1
            try:
                results[index] = await call(prompts[index], **kwargs)
            except LLMError as exc:
                if not return_exceptions:
                    first_error.append(exc)
                    scope.cancel()
                    return
                results[index] = exc

    async with anyio.create_task_group() as tg:
        for _ in range(min(workers, len(prompts))):
            tg.start_soon(worker, tg.cancel_scope)
    if first_error:
        raise first_error[0]
    return results


async def run_as_completed(
    call: Call,
    prompts: Sequence[Any],
    kwargs: Mapping[str, Any],
    *,
    workers: int,
) -> AsyncGenerator[tuple[int, Any], None]:
    send, receive = anyio.create_memory_object_stream[tuple[int, Any]](max_buffer_size=workers)
    next_index = 0

    async def worker(out: MemoryObjectSendStream[tuple[int, Any]]) -> None:
        nonlocal next_index
        async with out:
            while next_index < len(prompts):
                index = next_index
                next_index += 1
                try:
                    outcome: Any = await call(prompts[index], **kwargs)
                except LLMError as exc:
                    outcome = exc
                await out.send((index, outcome))

    async with anyio.create_task_group() as tg:
        async with send:
            for _ in range(min(workers, len(prompts))):
                # Cloned here, not in the worker: the original is closed before workers start.
                tg.start_soon(worker, send.clone())
        try:
            async with receive:
                async for item in receive:
                    yield item
        except GeneratorExit:
            # Closed early (`aclose()`): cancel the workers and end quietly. Letting
            # GeneratorExit reach the task group would wrap it in an exception group.
            pass
        finally:
            tg.cancel_scope.cancel()
