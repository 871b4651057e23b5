"""The concurrency slot: at most `max_concurrency` calls of a client talk to the server at once.

A slot is taken just before the attempt and given back when its reply is finished: at once for
a call (its body is read whole), when it ends, fails or is closed for a stream. A retry's
backoff sleep happens above this stage, so it never holds a slot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio

from ._base import Call, Reply, Stage

if TYPE_CHECKING:
    from .._exceptions import LLMError
    from .._types import Usage


class ConcurrencySlot:
    def __init__(self, inner: Stage, *, limit: int) -> None:
        self._inner = inner
        self._semaphore = anyio.Semaphore(limit)

    @property
    def free(self) -> int:
        """Slots not taken right now."""
        return self._semaphore.value

    def _release(self, usage: Usage | None, error: LLMError | None) -> None:
        self._semaphore.release()

    async def send(self, call: Call) -> Reply:
        await self._semaphore.acquire()
        try:
            reply = await self._inner.send(call)
        except BaseException:
            self._semaphore.release()
            raise
        reply.on_finish(self._release)
        return reply
