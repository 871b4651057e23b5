"""`ChatStream`: the object `client.stream()` returns.

Bytes from the response go through the sans-I/O SSE decoder, then the provider's stream parser,
which builds one `StreamChunk` per event. The stream keeps just enough state to assemble the
final `ChatResponse` (text parts, tool-call fragments by index, the last usage). It holds its
concurrency slot until it is closed: at the end, on an error, when the consumer breaks out of
the loop, when its task is cancelled, or when the `async with` block exits.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio

from ._config import RetryPolicy, Timeout
from ._exceptions import APIConnectionError, APIStatusError, APITimeoutError, LLMError, StreamError
from ._sse import SSEDecodeError, SSEDecoder
from ._transport import mapped_transport_errors
from ._types import ChatResponse, StreamChunk, ToolCall
from .providers._common import make_tool_call

if TYPE_CHECKING:
    from ._pipeline import OpenStream, Pipeline
    from ._request import ChatRequest
    from .providers._base import Provider


class ChatStream:
    """An async iterator of `StreamChunk` and an async context manager.

    `.text` is the text received so far; `await .final()` reads the rest and returns the
    assembled `ChatResponse` (the same value `chat()` gives for the same reply).
    """

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
        self._pipeline = pipeline
        self._provider = provider
        self._request = request
        self._timeout = timeout
        self._retry = retry
        self._estimated_tokens = estimated_tokens
        self._on_text = on_text
        self._on_chunk = on_chunk
        self._on_complete = on_complete
        self._on_error = on_error
        self._opened: OpenStream | None = None
        self._iterator: AsyncGenerator[StreamChunk, None] | None = None
        self._closed = False
        self._final: ChatResponse | None = None
        self._error: LLMError | None = None
        # What the final response is assembled from.
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._signature: str | None = None
        self._refusal: list[str] = []
        self._tools: dict[int, list[Any]] = {}  # index -> [id, name, [argument pieces]]
        self._finish_reason: str | None = None
        self._usage: Any = None
        self._id: str | None = None
        self._model: str | None = None

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open" if self._opened else "not started"
        return f"<ChatStream {self._provider.name} model={self._request.model!r} {state}>"

    @property
    def text(self) -> str:
        """The text received so far."""
        return "".join(self._text)

    @property
    def request_id(self) -> str | None:
        return self._opened.request_id if self._opened else None

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
            self._iterator = self._iterate()
        return self._iterator

    async def __anext__(self) -> StreamChunk:
        return await self.__aiter__().__anext__()

    async def aclose(self) -> None:
        """Close the response and free the concurrency slot. Safe to call more than once."""
        self._closed = True
        iterator, self._iterator = self._iterator, None
        if iterator is not None:
            with anyio.CancelScope(shield=True):
                await iterator.aclose()
        await self._release()

    async def _release(self) -> None:
        opened, self._opened = self._opened, None
        if opened is not None:
            await opened.aclose()

    async def final(self) -> ChatResponse:
        """Read whatever is left and return the complete reply (raises the stream's error)."""
        if self._final is None and self._error is None:
            async for _ in self:
                pass
        if self._error is not None:
            raise self._error
        assert self._final is not None
        return self._final

    # -- the work ------------------------------------------------------------------------------

    async def _iterate(self) -> AsyncGenerator[StreamChunk, None]:
        if self._closed:
            raise StreamError("this stream is closed", provider=self._provider.name)
        try:
            self._opened = await self._pipeline.open_stream(
                self._provider.adapter.build_chat(self._provider, self._request),
                timeout=self._timeout,
                retry=self._retry,
                extra_headers=self._request.extra_headers,
                estimated_tokens=self._estimated_tokens,
            )
        except LLMError as exc:
            self._fail(exc)
            raise
        try:
            async for chunk in self._chunks(self._opened):
                yield chunk
        finally:
            await self._release()

    async def _chunks(self, opened: OpenStream) -> AsyncGenerator[StreamChunk, None]:
        name = self._provider.name
        parser = self._provider.adapter.new_stream_parser(self._provider, self._request)
        decoder = SSEDecoder()
        raw = opened.response.aiter_bytes()
        deadline = opened.deadline
        on_chunk = self._on_chunk
        on_text = self._on_text
        try:
            while True:
                try:
                    with mapped_transport_errors(name):
                        if deadline is None:
                            data = await raw.__anext__()
                        else:
                            with anyio.fail_after(max(0.0, deadline - anyio.current_time())):
                                data = await raw.__anext__()
                except StopAsyncIteration:
                    events = decoder.flush()
                    ended = True
                else:
                    events = decoder.feed(data)
                    ended = False
                for event in events:
                    chunk = parser.parse(event)
                    if chunk is None:
                        continue
                    self._absorb(chunk)
                    if on_chunk is not None:
                        on_chunk(chunk)
                    if on_text is not None and chunk.text:
                        on_text(chunk.text)
                    yield chunk
                if ended:
                    break
            if not parser.finished():
                raise StreamError(
                    f"{name} stream ended before the reply was complete "
                    f"(no end marker and no finish reason); {len(self.text)} characters received",
                    partial=self.text,
                    retryable=True,
                    provider=name,
                    request_id=opened.request_id,
                )
        except TimeoutError:
            cause = APITimeoutError(f"{name}: the total timeout ran out mid-stream", provider=name)
            raise self._wrap(cause, opened) from cause
        except StreamError as exc:
            self._fail(exc)
            raise
        except (LLMError, SSEDecodeError) as exc:
            raise self._wrap(exc, opened) from exc
        self._complete(opened)

    def _wrap(self, exc: Exception, opened: OpenStream) -> StreamError:
        name = self._provider.name
        if isinstance(exc, APIStatusError):
            what = f"an error inside the stream: {exc.message}"
            retryable = exc.status_code in self._retry.retry_statuses
        elif isinstance(exc, SSEDecodeError):
            what = f"an unreadable event stream: {exc}"
            retryable = False
        else:
            what = str(exc)
            retryable = isinstance(exc, APIConnectionError)  # cut connection or timeout
        error = StreamError(
            f"{name} stream failed after {len(self.text)} characters: {what}",
            partial=self.text,
            retryable=retryable,
            provider=name,
            request_id=opened.request_id,
        )
        self._fail(error)
        return error

    def _fail(self, error: LLMError) -> None:
        self._error = error
        if self._on_error is not None:
            self._on_error(error)

    def _absorb(self, chunk: StreamChunk) -> None:
        if chunk.text:
            self._text.append(chunk.text)
        if chunk.reasoning:
            self._reasoning.append(chunk.reasoning)
        if chunk.reasoning_signature:
            self._signature = chunk.reasoning_signature
        if chunk.refusal:
            self._refusal.append(chunk.refusal)
        if chunk.tool_calls:
            for delta in chunk.tool_calls:
                entry = self._tools.get(delta.index)
                if entry is None:
                    entry = self._tools[delta.index] = [delta.id, delta.name, []]
                else:
                    entry[0] = entry[0] or delta.id
                    entry[1] = entry[1] or delta.name
                if delta.arguments:
                    entry[2].append(delta.arguments)
        if chunk.finish_reason:
            self._finish_reason = chunk.finish_reason
        if chunk.usage is not None:
            self._usage = chunk.usage
        if self._id is None and chunk.id:
            self._id = chunk.id
        if self._model is None and chunk.model:
            self._model = chunk.model

    def _tool_calls(self) -> tuple[ToolCall, ...]:
        return tuple(
            make_tool_call(entry[0] or f"call_{index}", entry[1] or "", "".join(entry[2]))
            for index, entry in sorted(self._tools.items())
        )

    def _complete(self, opened: OpenStream) -> None:
        self._final = ChatResponse(
            text=self.text,
            finish_reason=self._finish_reason,
            usage=self._usage,
            tool_calls=self._tool_calls(),
            model=self._model,
            id=self._id,
            request_id=opened.request_id,
            reasoning="".join(self._reasoning) or None,
            reasoning_signature=self._signature,
            refusal="".join(self._refusal) or None,
            provider=self._provider.name,
        )
        self._pipeline.usage.record(self._model or self._request.model, self._usage)
        if self._on_complete is not None:
            self._on_complete(self._final)
