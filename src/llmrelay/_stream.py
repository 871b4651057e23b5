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

import inspect
import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import nullcontext
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
import httpx

from ._config import RetryPolicy, Timeout
from ._deadline import StreamDeadline
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
        self._reader = _Reader(
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


class _Reader:
    """The state of one stream: the open response, and what the final reply is made of."""

    def __init__(
        self,
        *,
        pipeline: Pipeline,
        provider: Provider,
        request: ChatRequest,
        timeout: Timeout,
        retry: RetryPolicy,
        estimated_tokens: int,
        callbacks: tuple[Callable[[Any], Any] | None, ...],
    ) -> None:
        self.pipeline = pipeline
        self.provider = provider
        self.request = request
        self.timeout = timeout
        self.retry = retry
        self.estimated_tokens = estimated_tokens
        self.on_text, self.on_chunk, self.on_complete, self.on_error = callbacks
        self.opened: OpenStream | None = None
        self.guard: StreamDeadline | None = None
        self.request_id: str | None = None
        self.closed = False
        self.final: ChatResponse | None = None
        self.error: LLMError | None = None
        # What the final response is assembled from.
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.signature: str | None = None
        self.refusal: list[str] = []
        self.tools: dict[int, list[Any]] = {}  # index -> [id, name, [argument pieces]]
        self.finish_reason: str | None = None
        self.usage: Any = None
        self.id: str | None = None
        self.model: str | None = None

    @property
    def partial(self) -> str:
        return "".join(self.text)

    async def release(self) -> None:
        if self.guard is not None:
            self.guard.close()
        opened, self.opened = self.opened, None
        if opened is not None:
            await opened.aclose()  # shielded: it runs even in a cancelled task

    # -- the work ------------------------------------------------------------------------------

    async def run(self) -> AsyncGenerator[StreamChunk, None]:
        # One generator from request to end (no nested generator left for the garbage
        # collector to close); the loop makes no per-chunk helper calls: this is the hot path.
        if self.closed:
            raise StreamError("this stream is closed", provider=self.provider.name)
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
            name = self.provider.name
            parser = self.provider.adapter.new_stream_parser(self.provider, self.request)
            decoder = SSEDecoder()
            raw = _body_pieces(opened.response)
            # The transport bounds each read by the read timeout; the total deadline is a
            # timer for the whole stream (see _deadline.py), not a cancel scope per read.
            guard = None
            if opened.deadline is not None:
                guard = self.guard = StreamDeadline(opened.deadline)
            on_chunk, on_text = self.on_chunk, self.on_text
            while True:
                try:
                    if guard is None:
                        data: bytes | None = await raw.__anext__()
                    else:
                        with guard:
                            data = await raw.__anext__()
                except StopAsyncIteration:
                    data = None
                except HTTPX_ERRORS as exc:
                    if self.closed:
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
                    if on_chunk is not None:
                        await _call(on_chunk, chunk)
                    if on_text is not None and chunk.text:
                        await _call(on_text, chunk.text)
                    yield chunk
                if data is None:
                    break
            if not parser.finished():
                error = StreamError(
                    f"{name} stream ended before the reply was complete "
                    f"(no end marker and no finish reason); {len(self.partial)} characters received",
                    partial=self.partial,
                    retryable=True,
                    provider=name,
                    request_id=self.request_id,
                )
                await self._fail(error)
                raise error
            await self._complete()
        finally:
            await self.release()

    async def _open(self) -> OpenStream:
        try:
            opened = await self.pipeline.open_stream(
                self.provider.adapter.build_chat(self.provider, self.request),
                timeout=self.timeout,
                retry=self.retry,
                extra_headers=self.request.extra_headers,
                estimated_tokens=self.estimated_tokens,
            )
        except LLMError as exc:
            await self._fail(exc)
            raise
        self.opened = opened
        self.request_id = opened.request_id
        return opened

    async def _whole_reply(self, opened: OpenStream) -> StreamChunk:
        provider = self.provider
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
                request_id=self.request_id,
            )
            raise await self._wrap(cause) from cause
        try:
            reply = provider.adapter.parse_chat(provider, data, self.request_id)
        except LLMError as exc:
            raise await self._wrap(exc) from exc
        return _chunk_of(reply)

    async def _deliver(self, chunk: StreamChunk) -> None:
        self._absorb(chunk)
        if self.on_chunk is not None:
            await _call(self.on_chunk, chunk)
        if self.on_text is not None and chunk.text:
            await _call(self.on_text, chunk.text)

    async def _wrap(self, exc: Exception) -> StreamError:
        """The `StreamError` for a failure after the stream started (`exc` becomes its cause)."""
        name = self.provider.name
        if isinstance(exc, LLMError):
            self._scrub(exc)
        if isinstance(exc, APIStatusError):
            what = f"an error inside the stream: {exc.message}"
            retryable = exc.status_code in self.retry.retry_statuses
        elif isinstance(exc, SSEDecodeError):
            what = f"an unreadable event stream: {exc}"
            retryable = False
        else:
            what = str(exc)
            retryable = isinstance(exc, APIConnectionError)  # cut connection or timeout
        error = StreamError(
            f"{name} stream failed after {len(self.partial)} characters: {what}",
            partial=self.partial,
            retryable=retryable,
            provider=name,
            request_id=self.request_id,
        )
        await self._fail(error)
        return error

    def _scrub(self, error: LLMError) -> None:
        # An error event may quote the request, key included: mask it like chat() does.
        scrub = self.pipeline._scrub
        error.message = scrub(error.message)
        error.args = tuple(scrub(a) if isinstance(a, str) else a for a in error.args)

    async def _fail(self, error: LLMError) -> None:
        if isinstance(error, StreamError):
            self.pipeline.usage.failures += 1  # opening failures are counted by the pipeline
        self.error = error
        if self.on_error is not None:
            await _call(self.on_error, error)

    def _absorb(self, chunk: StreamChunk) -> None:
        if chunk.text:
            self.text.append(chunk.text)
        if chunk.reasoning:
            self.reasoning.append(chunk.reasoning)
        if chunk.reasoning_signature:
            self.signature = chunk.reasoning_signature
        if chunk.refusal:
            self.refusal.append(chunk.refusal)
        if chunk.tool_calls:
            for delta in chunk.tool_calls:
                entry = self.tools.get(delta.index)
                if entry is None:
                    entry = self.tools[delta.index] = [delta.id, delta.name, []]
                else:
                    entry[0] = entry[0] or delta.id
                    entry[1] = entry[1] or delta.name
                if delta.arguments:
                    entry[2].append(delta.arguments)
        if chunk.finish_reason:
            self.finish_reason = chunk.finish_reason
        if chunk.usage is not None:
            self.usage = chunk.usage
        if self.id is None and chunk.id:
            self.id = chunk.id
        if self.model is None and chunk.model:
            self.model = chunk.model

    def _tool_calls(self) -> tuple[ToolCall, ...]:
        # Arguments are joined and parsed once, here, at the end.
        return tuple(
            make_tool_call(entry[0] or f"call_{index}", entry[1] or "", "".join(entry[2]))
            for index, entry in sorted(self.tools.items())
        )

    async def _complete(self) -> None:
        self.final = ChatResponse(
            text=self.partial,
            finish_reason=self.finish_reason,
            usage=self.usage,
            tool_calls=self._tool_calls(),
            model=self.model,
            id=self.id,
            request_id=self.request_id,
            reasoning="".join(self.reasoning) or None,
            reasoning_signature=self.signature,
            refusal="".join(self.refusal) or None,
            provider=self.provider.name,
        )
        self.pipeline.usage.record(self.model or self.request.model, self.usage)
        if self.on_complete is not None:
            await _call(self.on_complete, self.final)


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


def _body_pieces(response: httpx.Response) -> AsyncIterator[bytes]:
    """The response body as it arrives. An uncompressed body is read straight from the
    transport's stream: httpx's `aiter_bytes()` adds three generator layers per network read
    (raw, decoded, re-chunked), a tenth of a chunk's whole cost."""
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    stream = response.stream
    if encoding in ("", "identity") and isinstance(stream, httpx.AsyncByteStream):
        return stream.__aiter__()
    return response.aiter_bytes()
