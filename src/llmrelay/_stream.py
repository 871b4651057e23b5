"""`ChatStream`: the object `client.stream()` returns.

Bytes from the response go through the sans-I/O SSE decoder, then the provider's stream parser,
which builds one `StreamChunk` per event. The stream keeps just enough state to assemble the
final `ChatResponse` (text parts, tool-call fragments by index, the last usage). It holds its
concurrency slot until it is closed: at the end, on an error, when the consumer breaks out of
the loop, when its task is cancelled, or when the `async with` block exits.

Failures after the response's status line are `StreamError`s with the typed cause chained:
an error event (`APIStatusError` subclass), a cut connection (`APIConnectionError`), a read gap
or the total deadline (`APITimeoutError`), an unreadable event (`ResponseError`); a stream that
ends with neither its end marker nor a finish reason is a `StreamError` with no cause.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import AsyncGenerator, Callable
from contextlib import nullcontext
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio

from ._config import RetryPolicy, Timeout
from ._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    LLMError,
    ResponseError,
    StreamError,
)
from ._sse import SSEDecodeError, SSEDecoder
from ._transport import HTTPX_ERRORS, transport_error
from ._types import ChatResponse, StreamChunk, ToolCall, ToolCallDelta
from .providers._common import make_tool_call

if TYPE_CHECKING:
    from ._pipeline import OpenStream, Pipeline
    from ._request import ChatRequest
    from .providers._base import Provider


class ChatStream:
    """An async iterator of `StreamChunk` and an async context manager.

    `.text` is the text received so far; `await .final()` reads the rest and returns the
    assembled `ChatResponse` (the same value `chat()` gives for the same reply). Callbacks
    (`on_text`, `on_chunk`, `on_complete`, `on_error`) may be plain functions or coroutine
    functions; they run in the task that reads the stream.
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
        self._request_id: str | None = None
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
        """The provider's request id, once the response has arrived."""
        return self._request_id

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
        """Close the response and free the concurrency slot. Safe to call more than once, and
        from another task than the reader (whose loop then ends without an error)."""
        self._closed = True
        iterator, self._iterator = self._iterator, None
        with anyio.CancelScope(shield=True):
            if iterator is not None and not getattr(iterator, "ag_running", False):
                await iterator.aclose()
            await self._release()

    async def _release(self) -> None:
        opened, self._opened = self._opened, None
        if opened is not None:
            await opened.aclose()  # shielded: it runs even in a cancelled task

    async def final(self) -> ChatResponse:
        """Read whatever is left and return the complete reply (raises the stream's error)."""
        if self._final is None and self._error is None:
            async for _ in self:
                pass
        if self._error is not None:
            raise self._error
        if self._final is None:
            raise StreamError(
                "this stream was closed before it finished",
                partial=self.text,
                provider=self._provider.name,
            )
        return self._final

    # -- the work ------------------------------------------------------------------------------

    async def _iterate(self) -> AsyncGenerator[StreamChunk, None]:
        # One generator from request to end (no nested generator left for the garbage
        # collector to close); the loop makes no per-chunk helper calls: this is the hot path.
        if self._closed:
            raise StreamError("this stream is closed", provider=self._provider.name)
        opened = await self._open()
        try:
            if _is_json(opened.response.headers.get("content-type", "")):
                # Not an event stream: a whole reply (from a server that ignored `stream`), or
                # an error payload sent with status 200.
                whole = await self._whole_reply(opened)
                await self._deliver(whole)
                yield whole
                await self._complete()
                return
            name = self._provider.name
            parser = self._provider.adapter.new_stream_parser(self._provider, self._request)
            decoder = SSEDecoder()
            raw = opened.response.aiter_bytes()
            deadline = opened.deadline
            # The transport bounds each read by the read timeout, so the total deadline needs
            # a cancel scope (~10 µs per read) only once less time than that is left.
            read_timeout = self._timeout.read
            while True:
                try:
                    if deadline is not None and (
                        read_timeout is None or deadline - anyio.current_time() < read_timeout
                    ):
                        with anyio.fail_after(max(0.0, deadline - anyio.current_time())):
                            data: bytes | None = await raw.__anext__()
                    else:
                        data = await raw.__anext__()
                except StopAsyncIteration:
                    data = None
                except HTTPX_ERRORS as exc:
                    if self._closed:
                        return  # aclose() from another task closed the response under us
                    cause: LLMError = transport_error(exc, name)
                    cause.__cause__ = exc
                    raise await self._wrap(cause) from cause
                except TimeoutError:
                    cause = APITimeoutError(
                        f"{name}: the total timeout ran out mid-stream", provider=name
                    )
                    raise await self._wrap(cause) from cause
                try:
                    events = decoder.feed(data) if data is not None else decoder.flush()
                except SSEDecodeError as exc:
                    raise await self._wrap(exc) from exc
                for event in events:
                    try:
                        chunk = parser.parse(event)
                    except LLMError as exc:
                        raise await self._wrap(exc) from exc
                    if chunk is None:
                        continue
                    self._absorb(chunk)
                    if self._on_chunk is not None:
                        await _call(self._on_chunk, chunk)
                    if self._on_text is not None and chunk.text:
                        await _call(self._on_text, chunk.text)
                    yield chunk
                if data is None:
                    break
            if not parser.finished():
                error = StreamError(
                    f"{name} stream ended before the reply was complete "
                    f"(no end marker and no finish reason); {len(self.text)} characters received",
                    partial=self.text,
                    retryable=True,
                    provider=name,
                    request_id=self._request_id,
                )
                await self._fail(error)
                raise error
            await self._complete()
        finally:
            await self._release()

    async def _open(self) -> OpenStream:
        try:
            opened = await self._pipeline.open_stream(
                self._provider.adapter.build_chat(self._provider, self._request),
                timeout=self._timeout,
                retry=self._retry,
                extra_headers=self._request.extra_headers,
                estimated_tokens=self._estimated_tokens,
            )
        except LLMError as exc:
            await self._fail(exc)
            raise
        self._opened = opened
        self._request_id = opened.request_id
        return opened

    async def _whole_reply(self, opened: OpenStream) -> StreamChunk:
        provider = self._provider
        deadline = opened.deadline
        try:
            with (
                anyio.fail_after(max(0.0, deadline - anyio.current_time()))
                if deadline is not None
                else nullcontext()
            ):
                content = await opened.response.aread()
        except HTTPX_ERRORS as exc:
            cause: LLMError = transport_error(exc, provider.name)
            cause.__cause__ = exc
            raise await self._wrap(cause) from cause
        except TimeoutError:
            cause = APITimeoutError(
                f"{provider.name}: the total timeout ran out", provider=provider.name
            )
            raise await self._wrap(cause) from cause
        try:
            data = json.loads(content)
        except ValueError:
            cause = ResponseError(
                f"{provider.name} answered a stream request with a JSON content type but a body "
                "that is not JSON",
                provider=provider.name,
                request_id=self._request_id,
            )
            raise await self._wrap(cause) from None
        try:
            reply = provider.adapter.parse_chat(provider, data, self._request_id)
        except LLMError as exc:
            raise await self._wrap(exc) from exc
        return _chunk_of(reply)

    async def _deliver(self, chunk: StreamChunk) -> None:
        self._absorb(chunk)
        if self._on_chunk is not None:
            await _call(self._on_chunk, chunk)
        if self._on_text is not None and chunk.text:
            await _call(self._on_text, chunk.text)

    async def _wrap(self, exc: Exception) -> StreamError:
        """The `StreamError` for a failure after the stream started (`exc` becomes its cause)."""
        name = self._provider.name
        if isinstance(exc, LLMError):
            self._scrub(exc)
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
            request_id=self._request_id,
        )
        await self._fail(error)
        return error

    def _scrub(self, error: LLMError) -> None:
        # An error event may quote the request, key included: mask it like chat() does.
        scrub = self._pipeline._scrub
        error.message = scrub(error.message)
        error.args = tuple(scrub(a) if isinstance(a, str) else a for a in error.args)

    async def _fail(self, error: LLMError) -> None:
        if isinstance(error, StreamError):
            self._pipeline.usage.failures += 1  # opening failures are counted by the pipeline
        self._error = error
        if self._on_error is not None:
            await _call(self._on_error, error)

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
        # Arguments are joined and parsed once, here, at the end.
        return tuple(
            make_tool_call(entry[0] or f"call_{index}", entry[1] or "", "".join(entry[2]))
            for index, entry in sorted(self._tools.items())
        )

    async def _complete(self) -> None:
        self._final = ChatResponse(
            text=self.text,
            finish_reason=self._finish_reason,
            usage=self._usage,
            tool_calls=self._tool_calls(),
            model=self._model,
            id=self._id,
            request_id=self._request_id,
            reasoning="".join(self._reasoning) or None,
            reasoning_signature=self._signature,
            refusal="".join(self._refusal) or None,
            provider=self._provider.name,
        )
        self._pipeline.usage.record(self._model or self._request.model, self._usage)
        if self._on_complete is not None:
            await _call(self._on_complete, self._final)


async def _call(callback: Callable[[Any], Any], value: Any) -> None:
    result = callback(value)
    if inspect.isawaitable(result):
        await result


def _is_json(content_type: str) -> bool:
    mime = content_type.partition(";")[0].strip().lower()
    return mime == "application/json" or mime.endswith("+json")


def _chunk_of(reply: ChatResponse) -> StreamChunk:
    """A whole reply as the one chunk of its stream."""
    calls = tuple(
        ToolCallDelta(index=i, id=c.id, name=c.name, arguments=c.arguments)
        for i, c in enumerate(reply.tool_calls)
    )
    return StreamChunk(
        text=reply.text,
        reasoning=reply.reasoning,
        tool_calls=calls or None,
        finish_reason=reply.finish_reason,
        usage=reply.usage,
        role="assistant",
        refusal=reply.refusal,
        id=reply.id,
        model=reply.model,
        reasoning_signature=reply.reasoning_signature,
        raw=reply.raw,
    )
