"""The reply opener: reads a reply as far as the caller needs before the retry stage lets go
of it, so that every failure up to then is a typed error judged by the same retry rules, for
`chat()` and `stream()` alike.

- An error status: the adapter reads the body into the typed `APIStatusError` (headers kept for
  `Retry-After` and `x-should-retry`).
- A call: the whole JSON body, parsed into its result; an error payload inside a 200 body
  (OpenRouter, vLLM) raises the same typed error a status would.
- A stream: its events up to the first chunk with content (a role-only opener does not count).
  A cut or an error event before then is retried like a failed request; a JSON body is a whole
  reply (or an error payload) given to a stream request; an HTML page is a `ResponseError`.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import anyio

from .. import _constants as C
from .._assembler import carries_content, chunks_of
from .._deadline import StreamDeadline
from .._exceptions import (
    APIConnectionError,
    APIStatusError,
    LLMError,
    ResponseError,
    make_status_error,
)
from .._json import loads
from .._sse import SSEDecodeError, SSEDecoder
from ._base import Call, Reply, Stage, StreamHead

if TYPE_CHECKING:
    from .._keymask import KeyMask
    from .._types import StreamChunk
    from ..providers._base import Provider


class ReplyOpener:
    def __init__(self, inner: Stage, *, provider: Provider, mask: KeyMask) -> None:
        self._inner = inner
        self._provider = provider
        self._name = provider.name
        self._mask = mask

    async def send(self, call: Call) -> Reply:
        if call.first_sent is None:
            call.first_sent = time.perf_counter()
        reply = await self._inner.send(call)
        call.request_id = reply.request_id
        try:
            if reply.status >= 400:
                raise self._status_error(reply)
            if not call.stream:
                assert reply.content is not None
                reply.value = self._parse(call, reply, reply.content)
                reply.finish(getattr(reply.value, "usage", None))
                return reply
            mime = reply.headers.get("content-type", "").partition(";")[0].strip().lower()
            if mime == "application/json" or mime.endswith("+json"):
                try:
                    whole = self._parse(call, reply, await reply.read())
                except LLMError as exc:  # an error payload (or garbage) as the "stream"
                    raise self._body_error(call, exc) from exc.__cause__
                reply.value = StreamHead(
                    chunks=chunks_of(whole),
                    parser=None,
                    decoder=None,
                    leftover=[],
                    ended=True,
                    guard=None,
                    whole=whole,
                )
            elif mime == "text/html":
                raise ResponseError(
                    f"{self._name} answered a stream request with an HTML page (status "
                    f"{reply.status}), not an event stream: is the base URL right?",
                    provider=self._name,
                    request_id=reply.request_id,
                )
            else:
                reply.value = await self._read_first(call, reply)
            return reply
        except BaseException:
            await reply.aclose()  # nothing is registered on it yet: this only closes the body
            raise

    def _parse(self, call: Call, reply: Reply, content: bytes) -> Any:
        try:
            data = content if call.raw else loads(content)
        except ValueError:
            snippet = self._mask.content(content)[:200].decode("utf-8", "replace")
            raise ResponseError(
                f"{self._name} returned status {reply.status} with a body that is not JSON: "
                f"{snippet!r}",
                provider=self._name,
                request_id=reply.request_id,
            ) from None
        try:
            return call.parse(data, reply.request_id)
        except LLMError as exc:
            raise self._mask.error(exc) from exc.__cause__

    def _status_error(self, reply: Reply) -> APIStatusError:
        content = self._mask.content(reply.content or b"")
        body: Any
        try:
            body = json.loads(content) if content else None
        except ValueError:
            body = content.decode("utf-8", "replace")[:2000]
        info = self._provider.adapter.parse_error(self._provider, reply.status, body)
        error = make_status_error(
            info.status_code or reply.status,
            self._mask.text(info.message),
            provider=self._name,
            request_id=reply.request_id or info.request_id,
            body=body,
            retry_after=info.retry_after,
            code=info.code,
        )
        error.headers = reply.headers
        error.should_retry = info.retryable
        return error

    async def _read_first(self, call: Call, reply: Reply) -> StreamHead:
        assert call.new_parser is not None and reply.body is not None
        parser = call.new_parser()
        terminal: Any = parser if hasattr(parser, "done") else None  # plugins may not say
        decoder = SSEDecoder()
        body = reply.body
        chunks: list[StreamChunk] = []
        leftover: list[Any] = []
        ended = content = False
        try:
            while not ended and not content:
                try:
                    data: bytes | None = await body.__anext__()
                except StopAsyncIteration:
                    data = None
                events = decoder.feed(data) if data is not None else decoder.flush()
                ended = data is None
                for position, event in enumerate(events):
                    parsed = parser.parse(event)
                    if terminal is not None and terminal.done:
                        ended = True  # the terminator: whatever follows it is not read
                    if parsed is not None:
                        new = parsed if isinstance(parsed, tuple) else (parsed,)  # several choices
                        chunks.extend(new)
                        content = content or any(carries_content(chunk) for chunk in new)
                        if content and not ended:
                            leftover = events[position + 1 :]
                            break
                    if ended:
                        break
        except reply.errors as exc:
            raise self._body_error(call, reply.map_error(exc)) from exc
        except SSEDecodeError as exc:
            raise self._body_error(
                call, ResponseError(f"{self._name}: {exc}", provider=self._name)
            ) from exc
        except LLMError as exc:  # an error event, or an event the parser cannot read
            raise self._body_error(call, self._mask.error(exc)) from exc.__cause__
        if terminal is not None and terminal.done:
            await drain(body, reply.errors)
        # Cut with no content yet (at most a role-only opener, which the caller never saw):
        # retried like a failed request.
        if ended and not content and not parser.finished():
            raise self._body_error(
                call,
                APIConnectionError(
                    f"{self._name}: the stream ended before its first event", provider=self._name
                ),
            )
        guard = None if ended or call.deadline is None else StreamDeadline(call.deadline)
        return StreamHead(
            chunks=chunks,
            parser=parser,
            decoder=decoder,
            leftover=leftover,
            ended=ended,
            guard=guard,
        )

    @staticmethod
    def _body_error(call: Call, error: LLMError) -> LLMError:
        call.body_error = error
        return error


async def drain(body: Any, errors: tuple[type[BaseException], ...]) -> None:
    """After the terminator: read what the server still sends for a moment, unparsed. A body
    that ends at once (the usual case) leaves the connection reusable; a server that holds it
    open, or keeps talking, is cut off after `STREAM_DRAIN_SECONDS` or `STREAM_DRAIN_BYTES`."""
    left = C.STREAM_DRAIN_BYTES
    with anyio.move_on_after(C.STREAM_DRAIN_SECONDS):
        try:
            async for data in body:
                left -= len(data)
                if left < 0:
                    return
        except errors:
            return
