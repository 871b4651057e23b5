"""Many prompts through one pipeline: `batch()` (input order) and `as_completed()` (finish order),
both on `run_pool`, which the CLI's batch uses too.

A fixed set of worker tasks pulls prompts by index, so a batch of 100,000 prompts holds a few
dozen tasks, not 100,000. Each worker writes its outcome into the prompt's own slot: one outcome
per input, nothing lost, nothing duplicated.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypedDict

import anyio

from ._exceptions import BudgetExceededError, LLMError
from ._request import MessagesInput
from ._types import ChatResponse

if TYPE_CHECKING:
    from ._config import Timeout

Call = Callable[[MessagesInput], Awaitable[ChatResponse]]


class ChatOptions(TypedDict, total=False):
    """The keyword arguments of `AsyncClient.chat()` that `batch()` and `as_completed()` pass
    on to every prompt: `**options: Unpack[ChatOptions]` types them for checkers.

    A TypedDict rather than the parameters spelt out a third time: a signature would have to
    repeat each name again to pass it on, where `partial(self.chat, **options)` passes them
    all, and mypy checks every key and type here against `chat()`'s own signature.
    """

    model: str | None
    temperature: float | None
    max_tokens: int | None
    top_p: float | None
    stop: str | Sequence[str] | None
    tools: Sequence[Mapping[str, Any] | Callable[..., Any]] | None
    tool_choice: Any
    response_format: Any
    seed: int | None
    n: int | None
    logprobs: bool | None
    top_logprobs: int | None
    extra_body: Mapping[str, Any] | None
    extra_headers: Mapping[str, str] | None
    timeout: Timeout | float | None
    max_retries: int | None


def check_options(method: str, options: Mapping[str, object]) -> None:
    """A misspelt keyword is a `TypeError` now, like any call's, not an error per prompt
    raised from inside the worker task group (an `ExceptionGroup`) once sending has begun."""
    unknown = sorted(options.keys() - ChatOptions.__optional_keys__)
    if unknown:
        from difflib import get_close_matches

        close = get_close_matches(unknown[0], sorted(ChatOptions.__optional_keys__), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise TypeError(f"{method}() got an unexpected keyword argument {unknown[0]!r}{hint}")


def check_prompts(method: str, prompts: object) -> None:
    """A str is a sequence too, of characters: `batch("hello")` would send five prompts. So a
    bare str (or bytes), or anything else that is not a sequence of prompts, is a `TypeError`
    now, before anything is sent. (Each prompt is checked by `chat()` as it is sent.)"""
    if isinstance(prompts, str | bytes | bytearray):
        raise TypeError(
            f"{method}() takes a list of prompts, got a {type(prompts).__name__}; "
            "for one prompt use chat(), or pass [prompt]"
        )
    if not isinstance(prompts, Sequence):
        raise TypeError(
            f"{method}() takes a list of prompts (each a str or a list of messages), "
            f"got {type(prompts).__name__}"
        )


async def run_pool(count: int, work: Callable[[int], Awaitable[bool]], *, workers: int) -> None:
    """Run `work(index)` for every index below `count`, in index order, on at most `workers`
    tasks. A `work` that returns False stops the pool: the others are cancelled. The one worker
    pool of the project: `batch()`, `as_completed()` and the CLI's batch run on it."""
    next_index = 0
    async with anyio.create_task_group() as tg:

        async def worker() -> None:
            nonlocal next_index
            while next_index < count:
                index = next_index
                next_index += 1
                if not await work(index):
                    tg.cancel_scope.cancel()
                    return

        for _ in range(min(workers, count)):
            tg.start_soon(worker)


async def run_batch(
    call: Call,
    prompts: Sequence[MessagesInput],
    *,
    return_exceptions: bool,
    workers: int,
) -> list[ChatResponse | LLMError]:
    results: list[Any] = [None] * len(prompts)  # every slot is filled before it is returned
    first_error: list[LLMError] = []
    # A budget that refused a call stops the submitting: every prompt not sent yet gets that
    # error as its outcome, and the calls in flight (already paid for) finish.
    over_budget: list[BudgetExceededError] = []

    async def work(index: int) -> bool:
        if over_budget:
            results[index] = over_budget[0]
            return True
        try:
            results[index] = await call(prompts[index])
        except BudgetExceededError as exc:
            over_budget.append(exc)
            results[index] = exc
        except LLMError as exc:
            if not return_exceptions:
                first_error.append(exc)
                return False
            results[index] = exc
        return True

    await run_pool(len(prompts), work, workers=workers)
    if first_error:
        raise first_error[0]
    if over_budget and not return_exceptions:
        over_budget[0].results = results  # one outcome per input: nothing lost
        raise over_budget[0]
    return results


async def run_as_completed(
    call: Call,
    prompts: Sequence[MessagesInput],
    *,
    workers: int,
) -> AsyncGenerator[tuple[int, ChatResponse | LLMError], None]:
    send, receive = anyio.create_memory_object_stream[tuple[int, ChatResponse | LLMError]](
        max_buffer_size=workers
    )

    over_budget: list[BudgetExceededError] = []

    async def work(index: int) -> bool:
        outcome: ChatResponse | LLMError
        if over_budget:  # as in run_batch: no more sending once the budget said no
            outcome = over_budget[0]
        else:
            try:
                outcome = await call(prompts[index])
            except BudgetExceededError as exc:
                over_budget.append(exc)
                outcome = exc
            except LLMError as exc:
                outcome = exc
        await send.send((index, outcome))
        return True

    async def feed() -> None:
        async with send:  # closed when the pool is done: the reader's loop then ends
            await run_pool(len(prompts), work, workers=workers)

    async with anyio.create_task_group() as tg:
        tg.start_soon(feed)
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
