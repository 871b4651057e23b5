"""`ChatStream`: the object `client.stream()` returns.

The request goes down the same stage chain as `chat()`; the reply opener reads up to the first
chunk with content inside the retry stage, so everything before that (a status, a cut, an
error event) is retried per the policy. From the first chunk on, this module reads: bytes go
through the sans-I/O SSE decoder, then the provider's event parser (one `StreamChunk` per
event, or a tuple of them, one per choice), and the pure `ReplyAssembler` builds the final
reply. Reading stops at the provider's
terminator (`[DONE]`, `message_stop`): the connection is closed there, whatever the server
sends after it. The stream holds its concurrency slot until it ends, fails, or is closed.

Failures after the first chunk are `StreamError`s with the typed cause chained: an error event
(`APIStatusError` subclass), a cut connection (`APIConnectionError`), a read gap or the total
deadline (`APITimeoutError`), an unreadable event (`ResponseError`); a stream that ends with
neither its end marker nor a finish reason is a `StreamError` with no cause. A failure before
the first chunk that the retries did not cure is a `StreamError` too when it came from the
body; an error status is raised as its own typed error.

Time: `Timeout.read` bounds the silence between two network reads (the transport enforces it);
`Timeout.total` started with the call and covers the wait for a slot, every attempt and backoff,
and, here, every read up to the last chunk (one timer per stream, see `_deadline.py`).
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
from collections.abc import AsyncGenerator, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio

from ._assembler import ReplyAssembler
from ._exceptions import APIConnectionError, APIStatusError, APITimeoutError, LLMError, StreamError
from ._sse import SSEDecodeError
from ._types import ChatResponse, StreamChunk, Usage
from .stages._opener import drain

if TYPE_CHECKING:
    from ._keymask import KeyMask
    from .stages._base import Call, Reply, Stage, StreamHead


class StreamState(enum.Enum):
    """Where a stream is: NEW → OPENING → STREAMING → COMPLETE or FAILED; `aclose()` makes any
    but FAILED CLOSED (a complete stream keeps its reply)."""

    NEW = "not started"
    OPENING = "opening"
    STREAMING = "open"
    COMPLETE = "complete"
    FAILED = "failed"
    CLOSED = "closed"


class _Run:
    """The reading side of one stream. It never refers back to its `ChatStream`: with no
    reference cycle, `async for chunk in client.stream(...)` followed by `break` drops the
    generator at once, and the event loop closes it (and the response) right away instead of
    at the next garbage collection."""

    __slots__ = (
        "assembler",
        "call",
        "chain",
        "error",
        "final",
        "mask",
        "name",
        "on_chunk",
        "on_complete",
        "on_error",
        "on_text",
        "opening",
        "record",
        "reply",
        "state",
    )

    def __init__(
        self,
        *,
        chain: Stage,
        call: Call,
        name: str,
        mask: KeyMask,
        record: Callable[[str | None, Usage | None, str | None], object],
        callbacks: tuple[Callable[[Any], Any] | None, ...],
    ) -> None:
        self.chain = chain
        self.call = call
        self.name = name
        self.mask = mask
        self.record = record
        self.on_text, self.on_chunk, self.on_complete, self.on_error = callbacks
        self.state = StreamState.NEW
        self.assembler = ReplyAssembler()
        self.reply: Reply | None = None
        self.final: ChatResponse | None = None
        self.error: LLMError | None = None
        self.opening: anyio.CancelScope | None = None

    async def chunks(self) -> AsyncGenerator[StreamChunk, None]:
        # One generator from request to end (no nested generator for the garbage collector to
        # close). The read loop below is the per-chunk hot path: no helper calls for chunks
        # that need none, no cancel scope per read, bytes straight from the transport.
        if self.state is not StreamState.NEW:
            raise StreamError(f"this stream is {self.state.value}", provider=self.name)
        self.state = StreamState.OPENING
        call = self.call
        reply: Reply | None = None
        # aclose() from another task while this one waits for the first chunk cancels this
        # scope: the stream then ends quietly, as it does when closed later.
        with anyio.CancelScope() as opening:
            self.opening = opening
            try:
                reply = await self.chain.send(call)
            except LLMError as exc:
                if exc is call.body_error:  # failed for good before its first chunk, in the body
                    raise await self._failure(exc) from exc
                await self._fail(exc)
                raise
            finally:
                self.opening = None
        if reply is None or self.state is StreamState.CLOSED:
            if reply is not None:
                await reply.aclose()
            return
        if call.route is not None:  # a fallback route answered
            self.name = call.route
        self.reply = reply
        head: StreamHead = reply.value
        guard = head.guard
        body = reply.body  # this task's own reference: aclose() elsewhere may clear the reply's
        self.state = StreamState.STREAMING
        try:
            add = self.assembler.add
            callbacks = self.on_chunk is not None or self.on_text is not None
            for chunk in head.chunks:  # read by the opener, before anything reached the caller
                add(chunk)
                if callbacks and not await self._deliver(chunk):
                    return
                yield chunk
            parser, decoder = head.parser, head.decoder
            events = head.leftover  # arrived with the first chunk, not parsed yet
            reading = not head.ended
            done = False
            if parser is not None:
                terminal: Any = parser if hasattr(parser, "done") else None  # plugins may not say
                assert decoder is not None and body is not None
                errors = reply.errors
                while True:
                    for event in events:
                        try:
                            chunk_or_none = parser.parse(event)
                        except LLMError as exc:
                            raise await self._failure(exc) from exc
                        if chunk_or_none is None:
                            pass
                        elif not isinstance(chunk_or_none, tuple):
                            add(chunk_or_none)
                            if callbacks and not await self._deliver(chunk_or_none):
                                return
                            yield chunk_or_none
                        else:  # one event with several choices: a chunk for each
                            for chunk in chunk_or_none:
                                add(chunk)
                                if callbacks and not await self._deliver(chunk):
                                    return
                                yield chunk
                        if terminal is not None and terminal.done:
                            done, reading = True, False
                            await drain(body, errors)
                            break
                    if not reading:
                        break
                    try:
                        if guard is None:
                            data: bytes | None = await body.__anext__()
                        else:
                            with guard:
                                data = await body.__anext__()
                    except StopAsyncIteration:
                        if self.state is StreamState.CLOSED:
                            return  # aclose() from another task closed the body under us
                        data = None
                    except errors as exc:
                        if self.state is StreamState.CLOSED:
                            return  # aclose() from another task closed the response under us
                        cause = reply.map_error(exc)
                        raise await self._failure(cause) from cause
                    except TimeoutError:
                        cause = APITimeoutError(
                            f"{self.name}: the total timeout ran out mid-stream",
                            provider=self.name,
                        )
                        raise await self._failure(cause) from cause
                    try:
                        events = decoder.feed(data) if data is not None else decoder.flush()
                    except SSEDecodeError as exc:
                        raise await self._failure(exc) from exc
                    reading = data is not None
                if not done and not parser.finished():
                    error = StreamError(
                        f"{self.name} stream ended before the reply was complete (no end marker "
                        f"and no finish reason); {len(self.assembler.partial)} characters received",
                        partial=self.assembler.partial,
                        retryable=True,
                        provider=self.name,
                        request_id=reply.request_id,
                    )
                    await self._fail(error)
                    raise error
            if head.whole is not None:
                final = self.final = dataclasses.replace(
                    head.whole, request_id=reply.request_id, provider=self.name
                )
            else:
                final = self.final = self.assembler.reply(
                    request_id=reply.request_id, provider=self.name
                )
            self.state = StreamState.COMPLETE
            if guard is not None:
                guard.close()
            reply.value = final  # for the stages that look at the finished reply (hooks)
            await reply.aclose(final.usage)  # the slot is free before the callback runs
            self.record(final.model, final.usage, call.model)
            if self.on_complete is not None:
                await _call(self.on_complete, final)
        finally:
            if guard is not None:
                guard.close()
            if self.state is StreamState.STREAMING:  # left early: a break, a raising callback
                self.state = StreamState.CLOSED
            if not reply.finished:
                await reply.aclose(error=self.error)

    async def close(self) -> None:
        if self.state is not StreamState.FAILED:  # a failure stays visible after closing
            self.state = StreamState.CLOSED
        if self.opening is not None:
            self.opening.cancel()
        reply = self.reply
        if reply is not None and not reply.finished:
            await reply.aclose(error=self.error)

    async def _deliver(self, chunk: StreamChunk) -> bool:
        """Run the callbacks for a chunk; False when the stream was closed meanwhile."""
        if self.on_chunk is not None:
            await _call(self.on_chunk, chunk)
        if self.on_text is not None and chunk.text and not chunk.index:  # choice 0's text
            await _call(self.on_text, chunk.text)
        return self.state is not StreamState.CLOSED

    async def _failure(self, exc: Exception) -> StreamError:
        """The `StreamError` for a failure in the body (`exc` becomes its cause)."""
        if isinstance(exc, LLMError):
            self.mask.error(exc)
        if isinstance(exc, APIStatusError):
            what = f"an error inside the stream: {exc.message}"
            retryable = exc.status_code in self.call.retry.retry_statuses
        elif isinstance(exc, SSEDecodeError):
            what = f"an unreadable event stream: {exc}"
            retryable = False
        else:
            what = str(exc)
            retryable = isinstance(exc, APIConnectionError)  # cut connection or timeout
        partial = self.assembler.partial
        error = StreamError(
            f"{self.name} stream failed after {len(partial)} characters: {what}",
            partial=partial,
            retryable=retryable,
            provider=self.name,
            request_id=self.call.request_id,
        )
        await self._fail(error)
        return error

    async def _fail(self, error: LLMError) -> None:
        self.state = StreamState.FAILED
        self.error = error
        if self.on_error is not None:
            await _call(self.on_error, error)


class ChatStream:
    """An async iterator of `StreamChunk` and an async context manager.

    `.text` is the text received so far; `await .final()` reads the rest and returns the
    assembled `ChatResponse` (the same value `chat()` gives for the same reply). Callbacks
    (`on_text`, `on_chunk`, `on_complete`, `on_error`) may be plain functions or coroutine
    functions; they run in the task that reads the stream.

    With several choices (``n``), the chunks of every choice are yielded as they arrive, each
    with its `index`; `.text`, `on_text` and a `StreamError`'s `partial` are choice 0's text
    only, and `final().choices` holds every choice.
    """

    __slots__ = ("_finish", "_iterator", "_run")

    def __init__(
        self,
        *,
        chain: Stage,
        call: Call,
        provider: str,
        mask: KeyMask,
        record: Callable[[str | None, Usage | None, str | None], object],
        on_text: Callable[[str], Any] | None = None,
        on_chunk: Callable[[StreamChunk], Any] | None = None,
        on_complete: Callable[[ChatResponse], Any] | None = None,
        on_error: Callable[[LLMError], Any] | None = None,
    ) -> None:
        self._run = _Run(
            chain=chain,
            call=call,
            name=provider,
            mask=mask,
            record=record,
            callbacks=(on_text, on_chunk, on_complete, on_error),
        )
        self._iterator: AsyncGenerator[StreamChunk, None] | None = None
        # Set by the client when the call asked for structured output: fills `final().parsed`.
        self._finish: Callable[[ChatResponse], ChatResponse] | None = None

    def __repr__(self) -> str:
        run = self._run
        return f"<ChatStream {run.name} model={run.call.model!r} {run.state.value}>"

    @property
    def state(self) -> StreamState:
        """Where the stream is (not started, opening, streaming, complete, failed, closed)."""
        return self._run.state

    @property
    def text(self) -> str:
        """The text received so far (of choice 0, when the call asked for several)."""
        return self._run.assembler.partial

    @property
    def request_id(self) -> str | None:
        """The provider's request id, once the response has arrived."""
        reply = self._run.reply
        return reply.request_id if reply is not None else None

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
            self._iterator = self._run.chunks()
        return self._iterator

    async def __anext__(self) -> StreamChunk:
        return await self.__aiter__().__anext__()

    async def aclose(self) -> None:
        """Close the response and free the concurrency slot. Safe to call more than once, and
        from another task than the reader (whose loop then ends without an error)."""
        iterator, self._iterator = self._iterator, None
        with anyio.CancelScope(shield=True):
            await self._run.close()
            if iterator is not None and not getattr(iterator, "ag_running", False):
                await iterator.aclose()

    async def final(self) -> ChatResponse:
        """Read whatever is left and return the complete reply (raises the stream's error)."""
        run = self._run
        if run.state in (StreamState.NEW, StreamState.OPENING, StreamState.STREAMING):
            async for _ in self:
                pass
        if run.error is not None:
            raise run.error
        if run.final is None:
            raise StreamError(
                "this stream was closed before it finished",
                partial=self.text,
                provider=run.name,
            )
        if self._finish is not None:
            run.final = self._finish(run.final)  # once: parsed, or OutputValidationError
            self._finish = None
        return run.final


async def _call(callback: Callable[[Any], Any], value: Any) -> None:
    result = callback(value)
    if inspect.isawaitable(result):
        await result
