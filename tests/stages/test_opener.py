"""`ReplyOpener` over a fake sender: error statuses become typed errors, a call's JSON body its
parsed reply (bad JSON and error payloads typed errors), and a stream is read up to its first
chunk with content, so that everything that can fail before then (a cut, an error event, an
HTML page) fails inside the retry stage. Failures that came from a stream's body are recorded
in `call.body_error`; the provider's terminator ends the read, and `drain` bounds what is read
after it."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

from llmrelay import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ChatResponse,
    ConflictError,
    InternalServerError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    RateLimitError,
    ResponseError,
    UnprocessableEntityError,
    Usage,
)
from llmrelay import _constants as C
from llmrelay._assembler import chunk_of
from llmrelay._keymask import KeyMask
from llmrelay.providers import get_provider
from llmrelay.stages import Call, StreamHead
from llmrelay.stages._opener import ReplyOpener, drain

from ._fakes import (
    HOLD,
    OPENAI,
    FakeReply,
    Inner,
    NetError,
    completion,
    delta,
    event,
    json_reply,
    make_call,
    sse_reply,
)

pytestmark = pytest.mark.anyio

KEY = "sk-secret-0123456789abcdef"
ANTHROPIC = get_provider("anthropic")


def opener_over(reply: FakeReply, provider: Any = OPENAI) -> ReplyOpener:
    return ReplyOpener(Inner(reply), provider=provider, mask=KeyMask(KEY))


async def open_stream(reply: FakeReply, provider: Any = OPENAI) -> tuple[StreamHead, Call]:
    call = make_call(stream=True, provider=provider)
    await opener_over(reply, provider).send(call)
    head = reply.value
    assert isinstance(head, StreamHead)
    return head, call


def error_body(message: str, **fields: Any) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "code": None, **fields}}


# -- error statuses ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, ConflictError),
        (422, UnprocessableEntityError),
        (429, RateLimitError),
        (500, InternalServerError),
        (503, InternalServerError),
        (529, OverloadedError),
        (418, APIStatusError),
    ],
)
@pytest.mark.parametrize("stream", [False, True], ids=["call", "stream"])
async def test_an_error_status_is_its_typed_error(
    status: int, cls: type[APIStatusError], stream: bool
) -> None:
    reply = json_reply(error_body("The model is tired."), status, **{"retry-after": "7"})
    call = make_call(stream=stream)
    with pytest.raises(cls) as info:
        await opener_over(reply).send(call)
    error = info.value
    assert type(error) is cls
    assert error.status_code == status
    assert "The model is tired." in str(error)
    assert error.request_id == call.request_id == "req_1"
    assert error.headers is not None and error.headers["retry-after"] == "7"  # for the retry
    assert call.body_error is None  # a status, not the stream's body: raised as it is
    assert reply.closed


async def test_an_error_body_never_shows_the_key() -> None:
    body = error_body(f"Incorrect API key provided: {KEY}.", code="invalid_api_key")
    with pytest.raises(AuthenticationError) as info:
        await opener_over(json_reply(body, 401)).send(make_call())
    assert KEY not in str(info.value)
    assert KEY not in json.dumps(info.value.body)
    assert "***" in str(info.value)


async def test_an_error_page_that_is_not_json_is_still_typed() -> None:
    page = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
    reply = FakeReply(502, content=page, headers={"content-type": "text/html"})
    with pytest.raises(InternalServerError) as info:
        await opener_over(reply).send(make_call())
    assert info.value.status_code == 502
    assert info.value.body == page.decode()


# -- a call's body -------------------------------------------------------------------------------


async def test_a_call_s_body_is_parsed_and_the_reply_finished_with_its_usage() -> None:
    reply = json_reply(completion("Hello!", total=4))
    await opener_over(reply).send(make_call())
    assert isinstance(reply.value, ChatResponse)
    assert (reply.value.text, reply.value.request_id) == ("Hello!", "req_1")
    seen: list[Any] = []
    reply.on_finish(lambda usage, error: seen.append((usage, error)))  # runs at once
    assert seen == [(Usage(prompt_tokens=3, completion_tokens=1, total_tokens=4), None)]


async def test_a_body_that_is_not_json_is_a_response_error() -> None:
    content = b"Service temporarily unavailable " + KEY.encode() + b" <"
    reply = FakeReply(200, content=content)
    call = make_call()
    with pytest.raises(ResponseError, match="not JSON") as info:
        await opener_over(reply).send(call)
    assert KEY not in str(info.value)
    assert "Service temporarily unavailable" in str(info.value)
    assert info.value.request_id == "req_1"
    assert reply.closed


async def test_json_that_is_no_reply_is_a_response_error() -> None:
    with pytest.raises(ResponseError):
        await opener_over(json_reply({"choices": "none"})).send(make_call())


@pytest.mark.parametrize(
    ("provider", "body", "cls", "status"),
    [
        (
            "openrouter",
            {"error": {"code": 502, "message": "Provider returned error", "metadata": {}}},
            InternalServerError,
            502,
        ),
        (
            "vllm",
            {"object": "error", "message": "bad input", "type": "BadRequestError", "code": 400},
            BadRequestError,
            400,
        ),
        (
            "openai",
            {
                "error": {
                    "message": f"key {KEY} is rate limited",
                    "type": "requests",
                    "code": "rate_limit_exceeded",
                }
            },
            RateLimitError,
            429,
        ),
    ],
    ids=["openrouter", "vllm", "openai"],
)
async def test_an_error_payload_in_a_200_body_is_the_typed_error(
    provider: str, body: dict[str, Any], cls: type[APIStatusError], status: int
) -> None:
    with pytest.raises(cls) as info:
        await opener_over(json_reply(body), get_provider(provider)).send(
            make_call(provider=get_provider(provider))
        )
    assert info.value.status_code == status
    assert KEY not in str(info.value)


# -- a stream, up to its first chunk -----------------------------------------------------------

ROLE = delta(role="assistant", content="")
DONE = event("[DONE]")
MESSAGE_START = event(
    {
        "type": "message_start",
        "message": {"id": "msg_1", "model": "claude", "usage": {"input_tokens": 3}},
    }
)


async def test_a_stream_is_read_up_to_its_first_chunk_with_content() -> None:
    reply = sse_reply(
        b": keep-alive\n\n" + ROLE + delta(content="Hel") + delta(content="lo"),
        delta(content="!"),
        delta(finish_reason="stop") + DONE,
    )
    head, call = await open_stream(reply)
    assert [c.text for c in head.chunks] == ["", "Hel"]  # the role-only opener, then content
    # The event that came in the same network read waits, unparsed, for the stream.
    assert [json.loads(e.data)["choices"][0]["delta"] for e in head.leftover] == [{"content": "lo"}]
    assert (head.ended, head.guard, head.whole) == (False, None, None)
    assert head.parser is not None and head.decoder is not None
    assert reply.consumed == 1  # the rest is the stream's to read
    assert not reply.closed
    assert call.body_error is None


async def test_the_role_only_opener_is_not_enough() -> None:
    reply = sse_reply(ROLE, b": ping\n\n", delta(content="Hi"), DONE)
    head, _ = await open_stream(reply)
    assert [c.text for c in head.chunks] == ["", "Hi"]
    assert reply.consumed == 3


async def test_a_stream_with_a_deadline_gets_its_guard() -> None:
    call = make_call(stream=True)
    call.deadline = anyio.current_time() + 30  # set by the retry stage
    reply = sse_reply(delta(content="Hi"), DONE)
    await opener_over(reply).send(call)
    head = reply.value
    assert head.guard is not None  # the stream reads the rest under the same deadline
    head.guard.close()


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "application/vnd.api+json"],
)
async def test_a_whole_json_reply_to_a_stream_request_is_its_one_chunk(content_type: str) -> None:
    data = json.dumps(completion("Whole.")).encode()
    reply = FakeReply(200, pieces=[data[:10], data[10:]], headers={"content-type": content_type})
    head, call = await open_stream(reply)
    assert head.whole is not None and head.whole.text == "Whole."
    assert head.chunks == [chunk_of(head.whole)]
    assert (head.parser, head.ended) == (None, True)
    assert call.body_error is None


@pytest.mark.parametrize(
    ("content", "cls"),
    [
        (json.dumps(error_body("overloaded", code=503)).encode(), InternalServerError),
        (b"{not json", ResponseError),
    ],
    ids=["error-payload", "bad-json"],
)
async def test_a_json_error_to_a_stream_request_comes_from_its_body(
    content: bytes, cls: type[Exception]
) -> None:
    reply = FakeReply(200, pieces=[content], headers={"content-type": "application/json"})
    call = make_call(stream=True)
    with pytest.raises(cls) as info:
        await opener_over(reply).send(call)
    assert call.body_error is info.value  # the stream reports it as a StreamError
    assert reply.closed


async def test_an_html_page_for_a_stream_is_a_response_error() -> None:
    reply = sse_reply(b"<html>Sign in</html>", content_type="text/html; charset=utf-8")
    call = make_call(stream=True)
    with pytest.raises(ResponseError, match=r"HTML page.*base URL"):
        await opener_over(reply).send(call)
    assert reply.consumed == 0 and reply.closed


@pytest.mark.parametrize(
    "pieces",
    [
        [],
        [b": keep-alive\n\n", b"\n\n"],
        [ROLE],  # only the role-only opener
        [ROLE, b": ping\n\n"],
    ],
    ids=["empty", "comments-only", "role-only", "role-and-ping"],
)
async def test_a_stream_cut_before_its_first_chunk_is_a_retryable_connection_error(
    pieces: list[bytes],
) -> None:
    reply = sse_reply(*pieces)
    call = make_call(stream=True)
    with pytest.raises(APIConnectionError, match="ended before its first event") as info:
        await opener_over(reply).send(call)
    assert call.body_error is info.value
    assert reply.closed


async def test_a_read_error_before_the_first_chunk_is_mapped_by_the_reply() -> None:
    cause = NetError("connection reset by peer")
    reply = sse_reply(ROLE, cause)
    call = make_call(stream=True)
    with pytest.raises(APIConnectionError, match="connection lost") as info:
        await opener_over(reply).send(call)
    assert info.value.__cause__ is cause
    assert call.body_error is info.value
    assert reply.closed


@pytest.mark.parametrize(
    ("data", "cls", "status"),
    [
        (
            {
                "error": {
                    "message": f"Rate limit reached for {KEY}",
                    "type": "tokens",
                    "code": "rate_limit_exceeded",
                }
            },
            RateLimitError,
            429,
        ),
        ({"object": "error", "message": "context too long", "code": 400}, BadRequestError, 400),
        ({"error": {"message": "The server had an error"}}, InternalServerError, 500),
    ],
    ids=["rate-limit", "vllm", "untyped"],
)
async def test_an_error_event_before_the_first_chunk_is_the_typed_error(
    data: dict[str, Any], cls: type[APIStatusError], status: int
) -> None:
    reply = sse_reply(ROLE + event(data), delta(content="never read"))
    call = make_call(stream=True)
    with pytest.raises(cls) as info:
        await opener_over(reply).send(call)
    assert info.value.status_code == status
    assert KEY not in str(info.value)
    assert call.body_error is info.value
    assert reply.closed


@pytest.mark.parametrize(
    "piece",
    [event("{not json"), b"data: " + b"x" * (C.MAX_SSE_EVENT_SIZE + 1) + b"\n\n"],
    ids=["bad-event", "oversized-line"],
)
async def test_an_unreadable_stream_is_a_response_error(piece: bytes) -> None:
    reply = sse_reply(piece)
    call = make_call(stream=True)
    with pytest.raises(ResponseError) as info:
        await opener_over(reply).send(call)
    assert call.body_error is info.value


async def test_an_anthropic_error_event_before_content() -> None:
    body = (
        MESSAGE_START + b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error",'
        b'"message":"Overloaded"}}\n\n'
    )
    reply = sse_reply(body)
    call = make_call(stream=True, provider=ANTHROPIC)
    with pytest.raises(OverloadedError):
        await ReplyOpener(Inner(reply), provider=ANTHROPIC, mask=KeyMask(KEY)).send(call)
    assert isinstance(call.body_error, OverloadedError)


# -- the terminator ------------------------------------------------------------------------------

ANTHROPIC_EMPTY = MESSAGE_START + event({"type": "message_stop"})


@pytest.mark.parametrize(
    ("provider", "body"),
    [(ANTHROPIC, ANTHROPIC_EMPTY), (OPENAI, ROLE + DONE)],
    ids=["anthropic-message_stop", "openai-DONE"],
)
async def test_the_terminator_ends_the_read_even_if_the_server_keeps_the_connection(
    provider: Any, body: bytes
) -> None:
    """A reply with nothing in it, then a server that neither closes nor talks: the opener
    stops at the terminator, gives the server `STREAM_DRAIN_SECONDS` to end the body, and
    hands over a stream that has ended."""
    reply = sse_reply(body, HOLD)
    with anyio.fail_after(10):  # a bound for the test, far above the drain time
        head, call = await open_stream(reply, provider)
    assert head.ended
    assert anyio.current_time() == pytest.approx(C.STREAM_DRAIN_SECONDS)
    assert call.body_error is None


@pytest.mark.parametrize(
    ("provider", "body"),
    [(ANTHROPIC, ANTHROPIC_EMPTY), (OPENAI, ROLE + DONE)],
    ids=["anthropic-message_stop", "openai-DONE"],
)
async def test_what_follows_the_terminator_is_not_parsed(provider: Any, body: bytes) -> None:
    reply = sse_reply(body + event("{garbage"), event({"error": {"message": "late"}}))
    head, _ = await open_stream(reply, provider)
    assert head.ended
    assert reply.consumed == 2  # drained, unread


async def test_drain_returns_when_the_body_ends() -> None:
    reply = sse_reply(b"a", b"b")
    assert reply.body is not None
    await drain(reply.body, reply.errors)
    assert reply.consumed == 2
    assert anyio.current_time() == 0


async def test_drain_gives_a_silent_server_a_moment_only() -> None:
    reply = sse_reply(b"a", HOLD)
    assert reply.body is not None
    await drain(reply.body, reply.errors)
    assert anyio.current_time() == pytest.approx(C.STREAM_DRAIN_SECONDS)


async def test_drain_stops_a_server_that_keeps_talking() -> None:
    piece = b"x" * (16 * 1024)
    reply = sse_reply(*[piece] * 100)
    assert reply.body is not None
    await drain(reply.body, reply.errors)
    assert reply.consumed == C.STREAM_DRAIN_BYTES // len(piece) + 1


async def test_drain_ignores_a_read_error() -> None:
    reply = sse_reply(b"a", NetError("reset"))
    assert reply.body is not None
    await drain(reply.body, reply.errors)
    assert reply.consumed == 1
