"""`ChatStream`: the object `client.stream()` returns.

Bytes from the response go through the sans-I/O SSE decoder, then the provider's stream parser,
which builds one `StreamChunk` per event. The stream keeps just enough state to assemble the
final `ChatResponse` (text parts, tool-call fragments by index, the last usage). It holds its
concurrency slot until it is closed: at the end, on an error, when the consumer breaks out of
the loop, when its task is cancelled, or when the `async with` block exits.

Failures after the response's status line are `StreamError`s with the typed cause chained:
an error event (`APIStatusError` subclass), a cut connection (`APIConnectionError`), a read gap
or the total deadline (`APITimeoutError`), an unreadable event (`ResponseError`); a stream that
ends with neither its end marker nor a finish reason is a `StreamError` with no cause. A 200
answer with a JSON content type instead of an event stream is read whole: an error payload
fails like an error event, a complete reply becomes a single chunk.

Time: `Timeout.read` bounds the silence between two network reads (the HTTP transport enforces
it, as httpcore and the mock transport do); `Timeout.total` started with the call, so it covers
retries and the wait for a slot, and is enforced here up to the last chunk. Retries happen in
the pipeline, before the response's status arrives: never once a chunk may have been seen.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio

from ._config import RetryPolicy, Timeout
from ._exceptions import LLMError, StreamError
from ._stream_reader import Reader
from ._types import ChatResponse, StreamChunk

if TYPE_CHECKING:
    from ._pipeline import Pipeline
    from ._request import ChatRequest
    from .providers._base import Provider


class ChatStream:
    """An async iterator of `StreamChunk` and an async context manager.

    `.text` is the text received so far; `await .final()` reads the rest and returns the
    assembled `ChatResponse` (the same value `chat()` gives for the same reply). Callbacks
    (`on_text`, `on_chunk`, `on_complete`, `on_error`) may be plain functions or coroutine
    functions; they run in the task that reads the stream.
    """

    __slots__ = ("_iterator", "_reader")

    def __init__(
        self,
        *,
        pipeline: Pipeline,
        provider: Provider,
        request: ChatRequest,
        timeout: Timeout,
        retry: RetryPolicy,
        estimated_tokens: int,
        on_text: Callable[[str], Any] | None = None,
        on_chunk: Callable[[StreamChunk], Any] | None = None,
        on_complete: Callable[[ChatResponse], Any] | None = None,
        on_error: Callable[[LLMError], Any] | None = None,
    ) -> None:
        # The reading state lives apart from this object so that the generator reading the
        # stream does not refer back to it: with no reference cycle, `async for chunk in
        # client.stream(...)` followed by `break` drops the generator at once, and the event
        # loop closes it (and the response) right away instead of at the next GC pass.
        self._reader = Reader(
            pipeline=pipeline,
            provider=provider,
            request=request,
            timeout=timeout,
            retry=retry,
            estimated_tokens=estimated_tokens,
            callbacks=(on_text, on_chunk, on_complete, on_error),
        )
        self._iterator: AsyncGenerator[StreamChunk, None] | None = None

    def __repr__(self) -> str:
        reader = self._reader
        state = "closed" if reader.closed else "open" if reader.opened else "not started"
        return f"<ChatStream {reader.provider.name} model={reader.request.model!r} {state}>"

    @property
    def text(self) -> str:
        """The text received so far."""
        return self._reader.partial

    @property
    def request_id(self) -> str | None:
        """The provider's request id, once the response has arrived."""
        return self._reader.request_id

    # -- context manager and iteration ---------------------------------------------------------

    async def __aenter__(self) -> ChatStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncGenerator[StreamChunk, None]:
        # An async generator, so that breaking out of `async for` closes the response as soon
        # as the generator is dropped (the event loop finalises it), even without `async with`.
        if self._iterator is None:
            self._iterator = self._reader.run()
        return self._iterator

    async def __anext__(self) -> StreamChunk:
        return await self.__aiter__().__anext__()

    async def aclose(self) -> None:
        """Close the response and free the concurrency slot. Safe to call more than once, and
        from another task than the reader (whose loop then ends without an error)."""
        reader = self._reader
        reader.closed = True
        iterator, self._iterator = self._iterator, None
        with anyio.CancelScope(shield=True):
            if iterator is not None and not getattr(iterator, "ag_running", False):
                await iterator.aclose()
            await reader.release()

    async def final(self) -> ChatResponse:
        """Read whatever is left and return the complete reply (raises the stream's error)."""
        reader = self._reader
        if reader.final is None and reader.error is None:
            async for _ in self:
                pass
        if reader.error is not None:
            raise reader.error
        if reader.final is None:
            raise StreamError(
                "this stream was closed before it finished",
                partial=self.text,
                provider=reader.provider.name,
            )
        return reader.final
