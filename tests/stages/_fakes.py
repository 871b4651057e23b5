"""Fakes for the stage tests: a scripted inner stage, replies with scripted bodies, and calls.

Each stage is tested on its own over `Inner`, which answers with scripted `Reply`s or raises
scripted typed errors, and records what it was sent and when (on the test's fake clock).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from functools import partial
from typing import Any

import anyio

from llmrelay import RetryPolicy, Timeout, Usage
from llmrelay._exceptions import APIConnectionError, APIStatusError, LLMError, make_status_error
from llmrelay._request import ChatRequest
from llmrelay.providers import get_provider
from llmrelay.stages import Call, Reply

OPENAI = get_provider("openai")
URL = "https://api.example.com/v1/chat/completions"


class NetError(Exception):
    """What the fake sender's body raises while it is read (its "HTTP library" error)."""


HOLD = "hold"  # a body piece: send nothing more and keep the connection open

Piece = bytes | float | str | BaseException  # data, a pause (seconds), HOLD, or a failure


class FakeReply(Reply):
    """A reply whose body plays `pieces` (when given) or is `content`, read whole. It counts
    the pieces handed out and the times the body was closed."""

    errors = (NetError,)

    def __init__(
        self,
        status: int = 200,
        *,
        content: bytes | None = None,
        pieces: list[Piece] | None = None,
        headers: Mapping[str, str] | None = None,
        request_id: str | None = "req_1",
    ) -> None:
        self.consumed = 0
        self.closed = 0
        self._gen = None if pieces is None else self._play(pieces)
        if pieces is None and content is None:
            content = b""
        super().__init__(status, dict(headers or {}), request_id, content, self._gen)

    async def _play(self, pieces: list[Piece]) -> AsyncIterator[bytes]:
        for piece in pieces:
            if piece == HOLD:
                await anyio.sleep_forever()
            elif isinstance(piece, BaseException):
                raise piece
            elif isinstance(piece, float | int):
                await anyio.sleep(piece)
            else:
                assert isinstance(piece, bytes)
                self.consumed += 1
                yield piece

    def map_error(self, exc: BaseException) -> LLMError:
        return APIConnectionError(f"fake: connection lost ({exc})", provider="fake")

    async def read(self) -> bytes:
        if self.content is None:
            assert self.body is not None
            self.content = b"".join([piece async for piece in self.body])
        return self.content

    async def _close_body(self) -> None:
        self.closed += 1
        gen, self._gen = self._gen, None
        if gen is not None and not gen.ag_running:
            await gen.aclose()


def json_reply(data: Any, status: int = 200, **headers: str) -> FakeReply:
    return FakeReply(
        status,
        content=json.dumps(data).encode(),
        headers={"content-type": "application/json", **headers},
    )


def sse_reply(*pieces: Piece, content_type: str = "text/event-stream") -> FakeReply:
    return FakeReply(200, pieces=list(pieces), headers={"content-type": content_type})


def event(data: Any) -> bytes:
    """One SSE event carrying `data` (JSON unless it is a str)."""
    text = data if isinstance(data, str) else json.dumps(data)
    return f"data: {text}\n\n".encode()


def completion(text: str = "hi", total: int = 4) -> dict[str, Any]:
    """An OpenAI chat completion body."""
    return {
        "id": "chatcmpl-1",
        "model": "gpt-x",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": total - 1, "completion_tokens": 1, "total_tokens": total},
    }


def delta(**fields: Any) -> bytes:
    """One OpenAI stream event whose first choice carries `fields` (`finish_reason` apart)."""
    finish = fields.pop("finish_reason", None)
    return event(
        {
            "id": "chatcmpl-1",
            "model": "gpt-x",
            "choices": [{"index": 0, "delta": fields, "finish_reason": finish}],
        }
    )


def status_error(
    status: int,
    headers: Mapping[str, str] | None = None,
    *,
    retry_after: float | None = None,
    should_retry: bool | None = None,
) -> APIStatusError:
    """The typed error the opener raises for an error status."""
    error = make_status_error(
        status, f"status {status}", provider="fake", request_id=None, retry_after=retry_after
    )
    error.headers = dict(headers or {})
    error.should_retry = should_retry
    return error


Step = Reply | BaseException | Callable[[Call], Awaitable[Reply]]


class Inner:
    """A fake inner stage. Each send takes the next step (the last one repeats): a reply to
    return, an error to raise, or an async function of the call. It records the attempt
    number, the time and the deadline each call came with."""

    def __init__(self, *steps: Step) -> None:
        self.steps = list(steps)
        self.attempts: list[int] = []
        self.times: list[float] = []
        self.deadlines: list[float | None] = []
        self.replies: list[Reply] = []

    async def send(self, call: Call) -> Reply:
        self.attempts.append(call.attempt)
        self.times.append(anyio.current_time())
        self.deadlines.append(call.deadline)
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, BaseException):
            raise step
        reply = step if isinstance(step, Reply) else await step(call)
        self.replies.append(reply)
        return reply

    def gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.times, self.times[1:], strict=False)]


def finished_reply(usage: Usage | None = None) -> Callable[[Call], Awaitable[Reply]]:
    """A step giving a fresh reply already finished, as the opener returns a call's reply."""

    async def step(call: Call) -> Reply:
        reply = Reply(200, {}, "req_1")
        reply.finish(usage)
        return reply

    return step


def open_reply() -> Callable[[Call], Awaitable[Reply]]:
    """A step giving a fresh, unfinished reply, as the opener returns a stream's."""

    async def step(call: Call) -> Reply:
        return Reply(200, {}, "req_1")

    return step


def make_call(
    *,
    stream: bool = False,
    total: float | None = None,
    retry: RetryPolicy | None = None,
    estimated_tokens: int = 1,
    provider: Any = OPENAI,
) -> Call:
    request = ChatRequest(
        model="gpt-x", messages=[{"role": "user", "content": "hi"}], params={}, stream=stream
    )
    adapter = provider.adapter
    return Call(
        method="POST",
        url=URL,
        headers={},
        json={"model": "gpt-x"},
        params=None,
        timeout=Timeout(total=total),
        retry=retry or RetryPolicy(),
        parse=lambda data, request_id: adapter.parse_chat(provider, data, request_id),
        stream=stream,
        new_parser=partial(adapter.new_stream_parser, provider, request) if stream else None,
        estimated_tokens=estimated_tokens,
        model="gpt-x",
    )
