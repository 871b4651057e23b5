"""The work behind a `ChatStream`: open the response (retried until the first chunk), decode
the event stream, parse each event into a `StreamChunk`, and assemble the final reply.

The loop in `_Reader.run` is the per-chunk hot path: no helper calls for chunks that need none,
no cancel scope per read (see `_deadline.py`), bytes read straight from the transport.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import nullcontext
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
from ._reasoning import ReasoningAssembler
from ._sse import ServerSentEvent, SSEDecodeError, SSEDecoder
from ._transport import HTTPX_ERRORS, transport_error
from ._types import ChatResponse, ReasoningBlock, StreamChunk, ToolCall, ToolCallDelta
from .providers._common import make_tool_call

if TYPE_CHECKING:
    from ._pipeline import OpenStream, Pipeline
    from ._request import ChatRequest
    from .providers._base import Provider, StreamParser


class Reader:
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
        # Filled by _prime: the reading state, the chunks up to the first with content, and
        # the events that arrived with it (parsed only after it reached the caller).
        self.parser: StreamParser | None = None
        self.decoder: SSEDecoder | None = None
        self.raw: AsyncIterator[bytes] | None = None
        self.first: list[StreamChunk] = []
        self.leftover: list[ServerSentEvent] = []
        self.ended = False
        self.priming_error: LLMError | None = None
        self.request_id: str | None = None
        self.closed = False
        self.final: ChatResponse | None = None
        self.error: LLMError | None = None
        # What the final response is assembled from.
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.signature: str | None = None
        self.thinking = ReasoningAssembler()  # the reasoning blocks, each with its signature
        self.whole_blocks: tuple[ReasoningBlock, ...] | None = None  # of a whole JSON reply
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
            parser, decoder, raw, guard = self.parser, self.decoder, self.raw, self.guard
            assert parser is not None and decoder is not None and raw is not None
            on_chunk, on_text = self.on_chunk, self.on_text
            first, self.first = self.first, []
            for primed in first:  # read while priming, before anything reached the caller
                await self._deliver(primed)
                yield primed
            events, self.leftover = self.leftover, []  # read with it, not parsed yet
            reading = not self.ended
            while True:
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
                if not reading:
                    break
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
                reading = data is not None
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
            await self._close_body()  # in the reading task: never while it runs
            await self.release()

    async def _open(self) -> OpenStream:
        try:
            opened = await self.pipeline.open_stream(
                self.provider.adapter.build_chat(self.provider, self.request),
                timeout=self.timeout,
                retry=self.retry,
                extra_headers=self.request.extra_headers,
                estimated_tokens=self.estimated_tokens,
                prime=self._prime,
            )
        except LLMError as exc:
            if exc is self.priming_error:  # the stream failed (for good) before its first chunk
                raise await self._wrap(exc) from exc
            await self._fail(exc)
            raise
        self.opened = opened
        self.request_id = opened.request_id
        return opened

    async def _prime(self, opened: OpenStream) -> None:
        try:
            await self._read_first(opened)
        except BaseException:
            await self._close_body()
            raise

    async def _close_body(self) -> None:
        """Close the started body iterator here, not in the garbage collector (which would
        do it from another task, or warn)."""
        raw, self.raw = self.raw, None
        close = getattr(raw, "aclose", None)
        if close is not None:
            with anyio.CancelScope(shield=True):
                await close()

    async def _read_first(self, opened: OpenStream) -> None:
        """Read until the first chunk. The pipeline runs this inside its retry loop, so a cut
        connection or an error event before anything reached the caller is retried like a
        failed request; it raises the typed error itself, not a `StreamError`."""
        self.opened = opened
        self.request_id = opened.request_id
        self.first, self.leftover, self.ended, self.priming_error = [], [], False, None
        if self.guard is not None:
            self.guard.close()  # an earlier attempt's
        self.guard = guard = (
            StreamDeadline(opened.deadline) if opened.deadline is not None else None
        )
        if _is_json(opened.response.headers.get("content-type", "")):
            return  # read whole by run()
        name = self.provider.name
        self.parser = parser = self.provider.adapter.new_stream_parser(self.provider, self.request)
        self.decoder = decoder = SSEDecoder()
        self.raw = raw = _body_pieces(opened.response)
        try:
            while not self.ended and not (self.first and _carries_content(self.first[-1])):
                # The same read as run()'s loop, written out rather than shared: a helper
                # coroutine would add a layer to every network read of the hot path.
                try:
                    if guard is None:
                        data: bytes | None = await raw.__anext__()
                    else:
                        with guard:
                            data = await raw.__anext__()
                except StopAsyncIteration:
                    data = None
                events = decoder.feed(data) if data is not None else decoder.flush()
                self.ended = data is None
                for position, event in enumerate(events):
                    chunk = parser.parse(event)
                    if chunk is not None:
                        self.first.append(chunk)
                        if _carries_content(chunk):  # a role-only opener does not count
                            self.leftover = events[position + 1 :]
                            break
        except HTTPX_ERRORS as exc:
            raise self._priming(transport_error(exc, name)) from exc
        except TimeoutError:
            raise self._priming(
                APITimeoutError(f"{name}: the total timeout ran out", provider=name)
            ) from None
        except SSEDecodeError as exc:
            raise self._priming(ResponseError(f"{name}: {exc}", provider=name)) from exc
        except LLMError as exc:
            raise self._priming(exc) from exc.__cause__
        if self.ended and not self.first and not parser.finished():
            raise self._priming(
                APIConnectionError(
                    f"{name}: the stream ended before its first event", provider=name
                )
            )

    def _priming(self, error: LLMError) -> LLMError:
        self.priming_error = error
        return error

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
        self.whole_blocks = reply.reasoning_blocks  # one chunk cannot carry several blocks
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
        if chunk.reasoning or chunk.reasoning_signature or chunk.reasoning_redacted:
            self.thinking.add(chunk.reasoning, chunk.reasoning_signature, chunk.reasoning_redacted)
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
            reasoning_blocks=self.thinking.blocks()
            if self.whole_blocks is None
            else self.whole_blocks,
            refusal="".join(self.refusal) or None,
            provider=self.provider.name,
        )
        self.pipeline.usage.record(self.model or self.request.model, self.usage)
        self.pipeline.settle_tokens(self.estimated_tokens, self.usage)
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


def _carries_content(chunk: StreamChunk) -> bool:
    return bool(
        chunk.text
        or chunk.reasoning
        or chunk.tool_calls
        or chunk.refusal
        or chunk.finish_reason
        or chunk.usage
    )
