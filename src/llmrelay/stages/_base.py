"""The stage contract: a `Call` goes down the chain, a `Reply` comes back up.

A stage is any object with ``async def send(call: Call) -> Reply``. It may change the call
(the retry stage sets its deadline), wait before passing it on (slot, rate limit), read the
reply (the opener), or register what must happen when the reply is finished
(`Reply.on_finish`): a non-streaming reply is finished before it leaves the opener, a stream
when the consumer reads its end, fails, or closes it early. That one hook is how a slot is held
for exactly as long as a stream stays open, and how a rate limit settles its token estimate with
the usage the reply reports.

Internal records are plain slotted classes: cheap to build once per call, and no dataclass
import-time cost.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import anyio

if TYPE_CHECKING:
    from .._config import RetryPolicy, Timeout
    from .._deadline import StreamDeadline
    from .._exceptions import LLMError
    from .._sse import ServerSentEvent, SSEDecoder
    from .._types import ChatResponse, StreamChunk, Usage
    from ..providers._base import StreamParser

FinishListener = Callable[["Usage | None", "LLMError | None"], None]
CloseListener = Callable[["Usage | None", "LLMError | None"], Awaitable[None]]


class Call:
    """One logical request, as every stage sees it (the same object on every attempt).

    `parse` turns the decoded JSON body of a success into the call's result (an adapter's
    `parse_chat` bound to its provider); `new_parser` makes a stream's event parser.
    """

    __slots__ = (
        "attempt",
        "body_error",
        "content",
        "deadline",
        "estimated_tokens",
        "first_sent",
        "headers",
        "json",
        "method",
        "model",
        "new_parser",
        "operation",
        "params",
        "parent",
        "parse",
        "raw",
        "request",
        "request_id",
        "retry",
        "route",
        "stream",
        "timeout",
        "url",
    )

    def __init__(
        self,
        *,
        method: str,
        url: str,
        headers: dict[str, str],
        json: Any,
        params: Mapping[str, str] | None,
        timeout: Timeout,
        retry: RetryPolicy,
        parse: Callable[[Any, str | None], Any],
        stream: bool = False,
        new_parser: Callable[[], StreamParser] | None = None,
        estimated_tokens: int = 1,
        model: str | None = None,
        operation: str = "chat",
    ) -> None:
        self.method = method
        self.operation = operation  # "chat" (a stream too), "embed", "models", "batch"
        self.model = model  # the model asked for (the reply may name a dated snapshot)
        self.url = url
        self.headers = headers
        self.json = json
        self.params = params
        self.timeout = timeout
        self.retry = retry
        self.parse = parse
        self.stream = stream
        self.new_parser = new_parser
        self.estimated_tokens = estimated_tokens
        self.deadline: float | None = None  # the loop-clock time the whole call must end by
        self.attempt = 0  # retries done so far
        self.content: bytes | None = None  # `json` encoded by the sender, once for every attempt
        # The last failure that came from reading a stream's body before its first chunk
        # (not from its status): the stream reports those as a `StreamError`.
        self.body_error: LLMError | None = None
        self.request_id: str | None = None  # the last attempt's, once a response arrived
        # The provider-neutral request (a chat's), from which a fallback route rebuilds the
        # call in its own wire format; and the provider that answered, once a route did.
        self.request: Any = None
        self.route: str | None = None
        self.raw = False  # `parse` takes the body's bytes, not its JSON (a file download)
        # When (`time.perf_counter()`) the first attempt went to the sender, past its slot and
        # rate limit: hooks tell the wait before it apart from the time on the wire.
        self.first_sent: float | None = None
        # A fallback route's call: the caller's call it was rebuilt from (hooks follow it).
        self.parent: Call | None = None

    def __repr__(self) -> str:
        path = "/" + self.url.partition("://")[2].partition("/")[2].partition("?")[0]
        return f"<Call {self.method} {path} attempt={self.attempt + 1}>"  # no host: it may hold a credential


class StreamHead:
    """What the opener read of a stream before handing it over: the chunks up to the first
    with content, the events that arrived with it (not parsed yet), and the reading state."""

    __slots__ = ("chunks", "decoder", "ended", "guard", "leftover", "parser", "whole")

    def __init__(
        self,
        *,
        chunks: list[StreamChunk],
        parser: StreamParser | None,
        decoder: SSEDecoder | None,
        leftover: list[ServerSentEvent],
        ended: bool,
        guard: StreamDeadline | None,
        whole: ChatResponse | None = None,
    ) -> None:
        self.chunks = chunks
        # A whole JSON reply given to a stream request: it is the final reply as it is (one
        # chunk cannot carry everything a reply holds, e.g. several reasoning blocks).
        self.whole = whole
        self.parser = parser  # None for a whole JSON reply given to a stream request
        self.decoder = decoder
        self.leftover = leftover
        self.ended = ended  # nothing more to read from the body
        self.guard = guard


class Reply:
    """A response as it travels back up the chain.

    The sender fills the transport facts (status, headers, `content` when read whole, `body`
    while a stream is open, and which library errors reading `body` may raise); the opener sets
    `value` (the parsed result, or a `StreamHead`); stages add finish listeners.
    """

    __slots__ = (
        "_closers",
        "_finished",
        "_listeners",
        "body",
        "content",
        "headers",
        "request_id",
        "status",
        "value",
    )

    # Reading `body` may raise these (the sender's HTTP library errors); `map_error` turns one
    # into the typed llmrelay error. Kept as data so the hot read loop needs no wrapper layer.
    errors: tuple[type[BaseException], ...] = ()

    def __init__(
        self,
        status: int,
        headers: Mapping[str, str],
        request_id: str | None,
        content: bytes | None = None,
        body: AsyncIterator[bytes] | None = None,
    ) -> None:
        self.status = status
        self.headers = headers
        self.request_id = request_id
        self.content = content
        self.body = body
        self.value: Any = None
        self._listeners: list[FinishListener] | None = []
        self._finished: tuple[Usage | None, LLMError | None] | None = None
        self._closers: list[CloseListener] | None = None

    def map_error(self, exc: BaseException) -> LLMError:  # pragma: no cover - senders override
        raise exc

    async def read(self) -> bytes:
        """The rest of the body, whole (`content` when it was already read)."""
        if self.content is None:  # pragma: no cover - senders override for open bodies
            raise RuntimeError("this reply has no body to read")
        return self.content

    async def _close_body(self) -> None:
        """Give the connection back (senders override)."""

    @property
    def finished(self) -> bool:
        return self._finished is not None

    def on_finish(self, listener: FinishListener) -> None:
        """Run `listener(usage, error)` once the reply is finished (now, if it already is)."""
        if self._finished is not None:
            listener(*self._finished)
        else:
            assert self._listeners is not None
            self._listeners.append(listener)

    def finish(self, usage: Usage | None = None, error: LLMError | None = None) -> None:
        """Mark the reply finished (once): with the usage it reported, or the error it ended in."""
        if self._finished is not None:
            return
        self._finished = (usage, error)
        listeners, self._listeners = self._listeners, None
        failure: BaseException | None = None
        for listener in listeners or ():  # innermost stage first, as a stack unwinds
            try:
                listener(usage, error)
            except BaseException as exc:  # one broken listener must not keep a slot taken
                failure = failure or exc
        if failure is not None:
            raise failure

    def after_close(self, listener: CloseListener) -> None:
        """Await `listener(usage, error)` (with what the reply finished with) the first time
        `aclose` runs: how a stream ends, for async work there (the hooks stage). It must not
        raise; it runs shielded from the caller's cancellation, so it must end on its own."""
        if self._closers is None:
            self._closers = []
        self._closers.append(listener)

    async def aclose(self, usage: Usage | None = None, error: LLMError | None = None) -> None:
        """Close the body (shielded: it runs in a cancelled task too), then finish."""
        try:
            with anyio.CancelScope(shield=True):
                await self._close_body()
        finally:
            self.finish(usage, error)
            closers, self._closers = self._closers, None
            if closers:
                assert self._finished is not None
                with anyio.CancelScope(shield=True):
                    for closer in closers:
                        await closer(*self._finished)


class Stage(Protocol):
    """One step of the pipeline."""

    async def send(self, call: Call) -> Reply: ...
