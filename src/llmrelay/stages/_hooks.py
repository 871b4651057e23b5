"""The hooks stage, outermost: tells a client's `Hooks` about each call (see `llmrelay._hooks`).

It is in the chain only when a client has hooks (its own, or `llmrelay.instrument()`'s), so a
client without them pays nothing. It sees a call start and end; the retry stage tells it about
each retry (`RetryStage.listener`); the opener stamps when the first attempt was sent
(`Call.first_sent`). A stream's result comes later than `send` returns: the stage hears about
its end through `Reply.after_close`, when the stream has set the assembled reply as the
reply's value.

Times are `time.perf_counter()` seconds: wall time, as a user measures a call.

A hook runs in the task that makes the call. One that raises is logged and ignored; one that is
a coroutine function is awaited (so a slow async hook slows the call: hand slow work to a
queue).
"""

from __future__ import annotations

import inspect
import logging
import time
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio

from .._exceptions import LLMError
from .._hooks import ErrorEvent, RequestEvent, ResponseEvent, RetryEvent
from .._types import ChatResponse
from ._base import Call, Reply, Stage

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .._hooks import Hooks
    from .._keymask import KeyMask
    from .._types import Usage

logger = logging.getLogger("llmrelay")

_DEFAULT_PORTS = {"https": 443, "http": 80}


def server_of(url: str) -> tuple[str | None, int | None]:
    """The host and port a URL goes to (never its user:password@)."""
    scheme, _, rest = url.partition("://")
    netloc = rest.partition("/")[0].partition("?")[0].rpartition("@")[2]
    if netloc.startswith("["):  # an IPv6 literal
        host, _, tail = netloc[1:].partition("]")
        port_text = tail[1:] if tail.startswith(":") else ""
    else:
        host, _, port_text = netloc.partition(":")
    port = int(port_text) if port_text.isdigit() else _DEFAULT_PORTS.get(scheme.lower())
    return (host or None), port


class HooksStage:
    def __init__(
        self, inner: Stage, *, hooks: Sequence[Hooks], provider: str, mask: KeyMask
    ) -> None:
        self._inner = inner
        self.hooks = tuple(hooks)
        self._name = provider
        self._mask = mask
        self._calls: dict[Call, tuple[RequestEvent, float]] = {}  # calls between their retries

    async def _emit(self, name: str, event: Any) -> None:
        for hooks in self.hooks:
            hook = getattr(hooks, name)
            if hook is None:
                continue
            try:
                result = hook(event)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                logger.warning("a %s hook raised; the call goes on without it", name, exc_info=True)

    async def retried(self, call: Call, error: LLMError, delay: float) -> None:
        """The retry stage's listener."""
        known = self._calls.get(call)
        number = call.attempt + 1
        if known is None and call.parent is not None:  # a fallback route's retry
            known = self._calls.get(call.parent)
            number += call.parent.attempt  # the attempts on the routes before this one
        if known is not None:
            event = RetryEvent(known[0], number, self._mask.error(error), delay)
            await self._emit("on_retry", event)

    async def send(self, call: Call) -> Reply:
        address, port = server_of(call.url)
        operation = "stream" if call.stream else call.operation
        request = RequestEvent(
            operation=operation,
            provider=self._name,
            model=call.model,
            server_address=address,
            server_port=port,
            body=call.json,
            mask=self._mask,
        )
        start = time.perf_counter()
        self._calls[call] = (request, start)
        try:
            await self._emit("on_request", request)
            reply = await self._inner.send(call)
        except BaseException as exc:
            error = self._mask.error(exc) if isinstance(exc, LLMError) else None
            with anyio.CancelScope(shield=True):  # a cancelled call is told about too
                await self._end(call, request, start, None, error, None)
            raise
        finally:
            self._calls.pop(call, None)
        if call.stream:  # the first chunk is in: the rest comes when the stream ends
            first_chunk = time.perf_counter() - start
            reply.after_close(partial(self._stream_ended, call, request, start, first_chunk, reply))
        else:
            await self._end(call, request, start, reply.value, None, None)
        return reply

    async def _stream_ended(
        self,
        call: Call,
        request: RequestEvent,
        start: float,
        first_chunk: float,
        reply: Reply,
        usage: Usage | None,
        error: LLMError | None,
    ) -> None:
        final = reply.value if error is None and isinstance(reply.value, ChatResponse) else None
        if error is not None:
            self._mask.error(error)
        await self._end(call, request, start, final, error, first_chunk)

    async def _end(
        self,
        call: Call,
        request: RequestEvent,
        start: float,
        result: Any,
        error: LLMError | None,
        first_chunk: float | None,
    ) -> None:
        now = time.perf_counter()
        sent = call.first_sent
        queued = (now if sent is None else sent) - start
        if result is not None:
            await self._emit(
                "on_response",
                ResponseEvent(
                    request=request,
                    result=result,
                    usage=getattr(result, "usage", None),
                    request_id=call.request_id,
                    duration=now - start,
                    queued=queued,
                    attempts=call.attempt + 1,
                    time_to_first_chunk=first_chunk,
                ),
            )
        else:
            await self._emit(
                "on_error",
                ErrorEvent(
                    request=request,
                    error=error,
                    request_id=call.request_id,
                    duration=now - start,
                    queued=queued,
                    attempts=call.attempt + 1,
                    time_to_first_chunk=first_chunk,
                ),
            )
