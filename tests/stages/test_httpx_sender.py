"""`HttpxSender` against `httpx.MockTransport`, both ways it sends (straight to its own
transport, and through an `httpx.AsyncClient` such as a user's `http_client`): the request it
builds, error bodies and calls read whole, a stream's body left open, and httpx's exceptions
mapped to `APIConnectionError` / `APITimeoutError` (when sending, and while a body is read,
through `reply.errors` / `reply.map_error`)."""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest

from llmrelay import APIConnectionError, APITimeoutError, ClientStateError, LLMError, Timeout
from llmrelay._keymask import KeyMask
from llmrelay.senders._httpx import HttpxReply, HttpxSender
from llmrelay.stages import Call

from ._fakes import make_call

pytestmark = pytest.mark.anyio

Handler = Callable[[httpx.Request], httpx.Response]
KEY = "sk-sender-test-0123456789"


@pytest.fixture(params=["own-transport", "http-client"])
def through(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def sender_over(handler: Handler, through: str, *, owns_http: bool = True) -> HttpxSender:
    transport = httpx.MockTransport(handler)
    return HttpxSender(
        provider="fake",
        request_id_header="x-request-id",
        mask=KeyMask(KEY),
        http=httpx.AsyncClient(transport=transport),
        transport=transport if through == "own-transport" else None,
        owns_http=owns_http,
    )


class Body(httpx.AsyncByteStream):
    """A response body as a transport gives it, played piece by piece: records what it
    produced and whether it was closed (the connection given back). Its own iterator, not an
    async generator: httpx's wrappers leave an inner generator to the garbage collector
    (encode/httpx#3686), which is httpx's business, not the sender's."""

    def __init__(self, *pieces: bytes | BaseException) -> None:
        self.pieces = list(pieces)
        self.produced: list[bytes] = []
        self.closed = False

    def __aiter__(self) -> Body:  # type: ignore[override]
        return self

    async def __anext__(self) -> bytes:
        if not self.pieces:
            raise StopAsyncIteration
        piece = self.pieces.pop(0)
        if isinstance(piece, BaseException):
            raise piece
        self.produced.append(piece)
        return piece

    async def aclose(self) -> None:
        self.closed = True


def answer(status: int = 200, body: Body | bytes = b"{}", **headers: str) -> Handler:
    all_headers = {"x-request-id": "req_1", "content-type": "application/json", **headers}

    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(body, Body):
            return httpx.Response(status, stream=body, headers=all_headers)
        return httpx.Response(status, content=body, headers=all_headers)

    return handler


async def test_the_request_it_sends(through: str) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    call = make_call()
    call.json = {"model": "gpt-x", "messages": [{"role": "user", "content": "héllo ✓"}]}
    call.headers = {"authorization": "Bearer sk-x", "idempotency-key": "k1"}
    call.params = {"api-version": "2024-10-21"}
    call.timeout = Timeout(connect=3, read=30)
    sender = sender_over(handler, through)
    await sender.send(call)
    await sender.aclose()
    (request,) = seen
    assert (request.method, str(request.url)) == (
        "POST",
        "https://api.example.com/v1/chat/completions?api-version=2024-10-21",
    )
    assert request.headers["authorization"] == "Bearer sk-x"
    assert request.headers["idempotency-key"] == "k1"
    assert request.headers["content-type"] == "application/json"
    # Compact JSON, non-ASCII as UTF-8 (not \u escapes).
    assert request.content == json.dumps(
        call.json, ensure_ascii=False, separators=(",", ":")
    ).encode("utf-8")
    assert request.extensions["timeout"] == {"connect": 3, "read": 30, "write": 60, "pool": 60}


async def test_a_request_without_json_has_no_body(through: str) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"data": []})

    call = make_call()
    call.method, call.json, call.url = "GET", None, "https://api.example.com/v1/models"
    sender = sender_over(handler, through)
    await sender.send(call)
    await sender.aclose()
    assert seen[0].content == b""
    assert "content-type" not in seen[0].headers


async def test_a_call_s_body_is_read_whole(through: str) -> None:
    body = Body(b'{"id": ', b'"x"}')
    sender = sender_over(answer(body=body), through)
    reply = await sender.send(make_call())
    assert isinstance(reply, HttpxReply)
    assert (reply.status, reply.request_id, reply.content, reply.body) == (
        200,
        "req_1",
        b'{"id": "x"}',
        None,
    )
    assert reply.headers["Content-Type"] == "application/json"  # any case
    assert body.closed  # the connection is back already
    assert await reply.read() == b'{"id": "x"}'
    await sender.aclose()


@pytest.mark.parametrize("status", [400, 429, 500, 503])
async def test_an_error_body_is_read_whole_even_for_a_stream(through: str, status: int) -> None:
    body = Body(b'{"error": ', b'{"message": "no"}}')
    sender = sender_over(answer(status, body), through)
    reply = await sender.send(make_call(stream=True))
    assert (reply.status, reply.content, reply.body) == (
        status,
        b'{"error": {"message": "no"}}',
        None,
    )
    assert body.closed
    await sender.aclose()


async def test_a_stream_s_body_is_left_open_until_read_and_closed(through: str) -> None:
    body = Body(b"data: one\n\n", b"data: two\n\n", b"data: three\n\n")
    sender = sender_over(answer(body=body, **{"content-type": "text/event-stream"}), through)
    reply = await sender.send(make_call(stream=True))
    assert reply.content is None and reply.body is not None
    assert body.produced == []  # nothing read yet: the stream reads as the caller goes
    assert await reply.body.__anext__() == b"data: one\n\n"
    assert not body.closed
    finished: list[Any] = []
    reply.on_finish(lambda usage, error: finished.append(error))
    await reply.aclose()
    assert body.closed and finished == [None]
    assert body.produced == [b"data: one\n\n"]
    await sender.aclose()


async def test_closing_a_stream_works_in_a_cancelled_task(through: str) -> None:
    body = Body(b"data: one\n\n", b"data: two\n\n")
    sender = sender_over(answer(body=body, **{"content-type": "text/event-stream"}), through)
    reply = await sender.send(make_call(stream=True))
    assert reply.body is not None
    await reply.body.__anext__()
    with anyio.CancelScope() as scope:
        scope.cancel()
        await reply.aclose()  # shielded: the connection is given back all the same
    assert body.closed
    await sender.aclose()


async def test_a_gzipped_stream_is_decoded(through: str) -> None:
    data = b"data: " + "é".encode() * 2000 + b"\n\n"
    packed = gzip.compress(data)
    body = Body(packed[:100], packed[100:])
    handler = answer(body=body, **{"content-type": "text/event-stream", "content-encoding": "gzip"})
    sender = sender_over(handler, through)
    reply = await sender.send(make_call(stream=True))
    assert reply.body is not None
    assert b"".join([piece async for piece in reply.body]) == data
    await reply.aclose()
    await sender.aclose()


SEND_ERRORS: list[tuple[Exception, type[LLMError], str]] = [
    (httpx.ConnectError("[Errno 111] Connection refused"), APIConnectionError, "connection failed"),
    (httpx.RemoteProtocolError("peer closed"), APIConnectionError, "connection failed: peer"),
    (httpx.ConnectTimeout(""), APITimeoutError, "connecting timed out"),
    (httpx.ReadTimeout(""), APITimeoutError, "reading (no data within the read timeout)"),
    (httpx.WriteTimeout(""), APITimeoutError, "sending timed out"),
    (httpx.PoolTimeout(""), APITimeoutError, "waiting for a connection timed out"),
]


@pytest.mark.parametrize(("exc", "cls", "words"), SEND_ERRORS, ids=lambda v: type(v).__name__)
async def test_sending_errors_are_typed(
    through: str, exc: Exception, cls: type[LLMError], words: str
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    sender = sender_over(handler, through)
    with pytest.raises(cls) as info:
        await sender.send(make_call())
    assert type(info.value) is cls
    assert words in str(info.value) and str(info.value).startswith("fake: ")
    assert info.value.__cause__ is exc
    await sender.aclose()


async def test_a_bug_is_not_disguised_as_a_connection_error(through: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise ValueError("a bug")

    sender = sender_over(handler, through)
    with pytest.raises(ValueError, match="a bug"):
        await sender.send(make_call())
    await sender.aclose()


@pytest.mark.parametrize("stream", [False, True], ids=["call", "stream-error-status"])
async def test_a_body_cut_while_read_whole_is_a_connection_error(
    through: str, stream: bool
) -> None:
    body = Body(b'{"partial', httpx.ReadError("connection reset"))
    sender = sender_over(answer(500 if stream else 200, body), through)
    with pytest.raises(APIConnectionError, match="connection reset"):
        await sender.send(make_call(stream=stream))
    assert body.closed
    await sender.aclose()


@pytest.mark.parametrize(
    ("exc", "cls"),
    [
        (httpx.ReadError("connection reset"), APIConnectionError),
        (httpx.RemoteProtocolError("incomplete chunked read"), APIConnectionError),
        (httpx.ReadTimeout("timed out"), APITimeoutError),
    ],
    ids=lambda v: getattr(v, "__name__", type(v).__name__),
)
async def test_errors_reading_a_stream_are_mapped_by_the_reply(
    through: str, exc: Exception, cls: type[LLMError]
) -> None:
    body = Body(b"data: one\n\n", exc)
    sender = sender_over(answer(body=body, **{"content-type": "text/event-stream"}), through)
    reply = await sender.send(make_call(stream=True))
    assert reply.body is not None
    assert await reply.body.__anext__() == b"data: one\n\n"
    with pytest.raises(reply.errors) as info:  # what the stream's read loop catches
        await reply.body.__anext__()
    error = reply.map_error(info.value)
    assert type(error) is cls
    assert error.__cause__ is info.value
    assert error.provider == "fake"
    await reply.aclose()
    await sender.aclose()


async def test_reading_the_rest_of_a_stream_whole(through: str) -> None:
    body = Body(b'{"a": ', b"1}")
    sender = sender_over(answer(body=body), through)
    reply = await sender.send(make_call(stream=True))
    assert await reply.read() == b'{"a": 1}'
    assert await reply.read() == b'{"a": 1}'  # kept
    await reply.aclose()

    cut = Body(b'{"a": ', httpx.ReadError("reset"))
    reply = await sender_over(answer(body=cut), through).send(make_call(stream=True))
    with pytest.raises(APIConnectionError, match="reset"):
        await reply.read()
    await reply.aclose()
    await sender.aclose()


async def test_closing_the_sender_closes_only_its_own_client() -> None:
    own = sender_over(answer(), "http-client")
    await own.aclose()
    assert own._http.is_closed
    transport = httpx.MockTransport(answer())
    async with httpx.AsyncClient(transport=transport) as users:
        sender = HttpxSender(
            provider="fake",
            request_id_header="x-request-id",
            mask=KeyMask(KEY),
            http=users,
            owns_http=False,
        )
        await sender.aclose()
        assert not users.is_closed
        assert (await users.get("https://api.test/v1/models")).status_code == 200
        with pytest.raises(ClientStateError):  # the closed client's sender sends nothing more
            await sender.send(make_call())


async def test_debug_logs_name_the_path_and_attempt_only(
    through: str, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    call: Call = make_call()
    call.url = "https://tenant.example.com/v1/chat/completions"
    call.params = {"key": "secret"}
    with caplog.at_level(logging.DEBUG, logger="llmrelay"):
        sender = sender_over(answer(), through)
        await sender.send(call)
        call.attempt = 1
        with pytest.raises(APIConnectionError):
            await sender_over(refuse, through).send(call)
        await sender.aclose()
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0].startswith("POST /v1/chat/completions -> 200 in ")
    assert messages[0].endswith("(attempt 1, request id req_1)")
    assert "(attempt 2, no response)" in messages[1]
    assert "APIConnectionError" in messages[1]
    assert not any("secret" in m or "tenant" in m for m in messages)
