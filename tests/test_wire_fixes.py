"""Each wire fix, through the real client (its own connection pool, the whole stage chain) over
a loopback server that answers with exact bytes (`_loopback.py`), asserting what the user and
the server see.

Numbered as in the issue: 1 (stream terminators), 5 (embedding count), 6 (failures counted
once), 8 (errors inside a 200 body), 9 (failures before the first chunk judged alike), 10 (client
lifecycle errors), 11 (exact Anthropic replay), and at the end 2 (custom tool calls), 3 (`stop`
as given), 4 (in-stream error shapes). Fix 7 (proxies) has its own module, `test_proxy.py`,
through a real loopback proxy.
"""

from __future__ import annotations

import asyncio
import gc
import json
import warnings
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from anyio.from_thread import start_blocking_portal

from _loopback import (
    CUT,
    HOLD,
    LoopbackServer,
    Request,
    Response,
    Step,
    chat_completion,
    json_response,
    loopback,
    sse,
    sse_events,
)
from llmrelay import (
    APIConnectionError,
    APIStatusError,
    AsyncClient,
    BadRequestError,
    ClientStateError,
    InternalServerError,
    Message,
    RateLimitError,
    ResponseError,
    RetryPolicy,
    StreamError,
    Timeout,
)

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("engine")]

KEY = "sk-test-loopback-0123456789"
MAX_RETRIES = 2
BOUND = 1.0  # seconds: the longest any wait here may take when things work
QUICK = 0.5  # seconds: a stream that ends at its terminator takes far less

OPENAI_TEXT = sse_events("openai/text")  # role, 4 text deltas, finish, usage, [DONE]
OPENAI_REPLY = "Héllo 👋 there! How can I help?"
OPENAI_TOTAL_TOKENS = 17


def client_for(server: LoopbackServer, provider: str = "openai", **kwargs: Any) -> AsyncClient:
    """The real client on the loopback server: a 30 s read timeout (a stream that waited for
    the server to hang up would take that long), retries without backoff."""
    kwargs.setdefault("timeout", Timeout(read=30.0))
    kwargs.setdefault("retry", RetryPolicy(max_retries=MAX_RETRIES, backoff_base=0.0))
    # These tests count every retry of calls failing in a row: no circuit breaker between.
    kwargs.setdefault("circuit_breaker", None)
    return AsyncClient(
        provider=provider, api_key=KEY, base_url=server.base_url, model="m", **kwargs
    )


def by_kind(stream: Callable[[Request], Response]) -> Callable[[Request], Response]:
    """Streamed requests get `stream(request)`; others a JSON chat completion ("free")."""

    def respond(request: Request) -> Response:
        if request.json.get("stream"):
            return stream(request)
        return json_response(chat_completion("free"))

    return respond


def in_turn(*responses: Response) -> Callable[[Request], Response]:
    """The n-th request gets the n-th response (the last one from then on)."""
    count = 0

    def respond(request: Request) -> Response:
        nonlocal count
        count += 1
        return responses[min(count, len(responses)) - 1]

    return respond


async def assert_slot_is_free(client: AsyncClient) -> None:
    """With max_concurrency=1, a call completes only if the last stream gave its slot back."""
    with anyio.fail_after(BOUND):
        assert (await client.chat("next")).text == "free"


def event(data: Any, name: str | None = None) -> bytes:
    line = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return (f"event: {name}\n" if name else "").encode() + f"data: {line}\n\n".encode()


# -- 1. the terminator ends the stream ---------------------------------------------------------

OPENAI_AFTER_DONE: dict[str, list[bytes]] = {
    "nothing": [],
    "text": [
        event({"id": "x", "choices": [{"index": 0, "delta": {"content": " EXTRA"}}]}),
    ],
    "usage": [
        event({"id": "x", "choices": [], "usage": {"prompt_tokens": 900, "total_tokens": 999}}),
    ],
    "junk": [b"data: {not json\n\n", b"event: error\ndata: <html>oops</html>\n\n"],
}
OPENAI_AFTER_DONE["all"] = [piece for pieces in OPENAI_AFTER_DONE.values() for piece in pieces]


def after_terminator(events: list[bytes], after: list[bytes], delivery: str) -> list[Step]:
    """The reply, what follows its terminator, then the server holds the connection open."""
    if delivery == "one write":
        return [b"".join(events + after), HOLD]
    steps: list[Step] = []
    for piece in events + after:
        steps += [piece, 0.002]
    return [*steps, HOLD]


@pytest.mark.parametrize("delivery", ["one write", "event by event"])
@pytest.mark.parametrize("after", sorted(OPENAI_AFTER_DONE))
async def test_openai_done_ends_the_stream_when_the_server_holds_the_connection(
    after: str, delivery: str
) -> None:
    steps = after_terminator(OPENAI_TEXT, OPENAI_AFTER_DONE[after], delivery)
    async with (
        loopback(by_kind(lambda request: sse(steps))) as server,
        client_for(server, max_concurrency=1) as client,
    ):
        started = anyio.current_time()
        texts: list[str] = []
        with anyio.fail_after(BOUND):
            final = await client.stream("hi", on_text=texts.append).final()
        assert anyio.current_time() - started < QUICK
        # What came after [DONE] is neither kept nor raised.
        assert "".join(texts) == final.text == OPENAI_REPLY
        assert final.finish_reason == "stop"
        assert final.usage is not None and final.usage.total_tokens == OPENAI_TOTAL_TOKENS
        with anyio.fail_after(BOUND):
            await server.wait_closed(1)  # the client hung up on the held connection
        await assert_slot_is_free(client)
        assert client.usage.failures == 0


ANTHROPIC_TEXT = [
    event(
        {
            "type": "message_start",
            "message": {
                "id": "msg_loop",
                "type": "message",
                "role": "assistant",
                "model": "claude-loop",
                "content": [],
                "stop_reason": None,
                "usage": {"input_tokens": 12, "output_tokens": 1},
            },
        },
        "message_start",
    ),
    event(
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        "content_block_start",
    ),
    event({"type": "ping"}, "ping"),
    event(
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
        "content_block_delta",
    ),
    event(
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": " there."},
        },
        "content_block_delta",
    ),
    event({"type": "content_block_stop", "index": 0}, "content_block_stop"),
    event(
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 6},
        },
        "message_delta",
    ),
    event({"type": "message_stop"}, "message_stop"),
]
ANTHROPIC_AFTER_STOP = [
    event(
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "!"}},
        "content_block_delta",
    ),
    event({"type": "message_delta", "delta": {}, "usage": {"output_tokens": 999}}, "message_delta"),
    event({"type": "error", "error": {"type": "overloaded_error", "message": "late"}}, "error"),
    b"event: message_delta\ndata: {not json\n\n",
]


def anthropic_by_kind(stream: Callable[[Request], Response]) -> Callable[[Request], Response]:
    def respond(request: Request) -> Response:
        if request.json.get("stream"):
            return stream(request)
        return json_response(anthropic_message("free"))

    return respond


def anthropic_message(text: str) -> dict[str, Any]:
    return {
        "id": "msg_whole",
        "type": "message",
        "role": "assistant",
        "model": "claude-loop",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 3, "output_tokens": 1},
    }


@pytest.mark.parametrize("delivery", ["one write", "event by event"])
async def test_anthropic_message_stop_ends_the_stream_when_the_server_holds_the_connection(
    delivery: str,
) -> None:
    steps = after_terminator(ANTHROPIC_TEXT, ANTHROPIC_AFTER_STOP, delivery)
    async with (
        loopback(anthropic_by_kind(lambda request: sse(steps))) as server,
        client_for(server, "anthropic", max_concurrency=1) as client,
    ):
        started = anyio.current_time()
        texts: list[str] = []
        with anyio.fail_after(BOUND):
            final = await client.stream("hi", on_text=texts.append).final()
        assert anyio.current_time() - started < QUICK
        assert "".join(texts) == final.text == "Hi there."
        assert final.finish_reason == "stop"
        assert final.usage is not None and final.usage.completion_tokens == 6
        with anyio.fail_after(BOUND):
            await server.wait_closed(1)
        with anyio.fail_after(BOUND):
            assert (await client.chat("next")).text == "free"  # the slot is free
        assert client.usage.failures == 0


@pytest.mark.parametrize(
    ("provider", "events", "respond", "reply"),
    [
        ("openai", OPENAI_TEXT, by_kind, OPENAI_REPLY),
        ("anthropic", ANTHROPIC_TEXT, anthropic_by_kind, "Hi there."),
    ],
)
async def test_a_body_that_ends_at_its_terminator_keeps_the_connection_for_the_next_stream(
    provider: str,
    events: list[bytes],
    respond: Callable[[Callable[[Request], Response]], Callable[[Request], Response]],
    reply: str,
) -> None:
    async with (
        loopback(respond(lambda request: sse(list(events)))) as server,
        client_for(server, provider, max_concurrency=1) as client,
    ):
        for _ in range(2):
            with anyio.fail_after(BOUND):
                assert (await client.stream("hi").final()).text == reply
        assert len(server.requests) == 2
        assert (server.opened, server.closed) == (1, 0)  # both over one kept-alive connection


# -- 5. embed(): one vector per input ----------------------------------------------------------


def embeddings(count: int) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": [0.5, -0.25, float(i)]}
            for i in range(count)
        ],
        "model": "text-embedding-loop",
        "usage": {"prompt_tokens": 3, "total_tokens": 3},
    }


@pytest.mark.parametrize(("inputs", "vectors"), [(3, 2), (3, 4), (1, 0), (2, 2)])
async def test_embed_with_a_different_number_of_vectors_is_a_response_error(
    inputs: int, vectors: int
) -> None:
    async with (
        loopback(lambda request: json_response(embeddings(vectors))) as server,
        client_for(server) as client,
    ):
        texts = [f"text {i}" for i in range(inputs)]
        if inputs == vectors:
            assert len((await client.embed(texts)).vectors) == inputs
            assert client.usage.failures == 0
        else:
            with pytest.raises(ResponseError, match=f"{vectors} embeddings for {inputs} inputs"):
                await client.embed(texts)
            assert client.usage.failures == 1
        assert client.usage.retries == 0
        assert [r.path for r in server.requests] == ["/v1/embeddings"]
        assert server.requests[0].json["input"] == texts


# -- 6. a stream that fails before its first chunk is one failure ------------------------------

ROLE_ONLY = OPENAI_TEXT[0]  # the opener with the role: not content


def error_event(status: int, message: str) -> bytes:
    return event({"error": {"message": message, "type": "server_error", "code": status}})


@pytest.mark.parametrize(
    ("attempt", "requests", "raised", "cause"),
    [
        pytest.param(sse([CUT]), 3, StreamError, APIConnectionError, id="cut-before-any-event"),
        pytest.param(
            sse([ROLE_ONLY, CUT]), 3, StreamError, APIConnectionError, id="cut-after-the-role"
        ),
        pytest.param(
            sse([error_event(503, "busy")]),
            3,
            StreamError,
            InternalServerError,
            id="retryable-error-event",
        ),
        pytest.param(
            sse([ROLE_ONLY, error_event(400, "bad")]),
            1,
            StreamError,
            BadRequestError,
            id="final-error-event",
        ),
        pytest.param(
            json_response({"error": {"message": "busy"}}, status=503),
            3,
            InternalServerError,
            type(None),
            id="error-status",
        ),
    ],
)
async def test_a_stream_that_fails_for_good_before_its_first_chunk_is_counted_once(
    attempt: Response, requests: int, raised: type[Exception], cause: type[BaseException]
) -> None:
    async with (
        loopback(by_kind(lambda request: attempt)) as server,
        client_for(server, max_concurrency=1) as client,
    ):
        stream = client.stream("hi")
        with anyio.fail_after(BOUND), pytest.raises(raised) as info:
            async for _ in stream:
                pass
        assert type(info.value.__cause__) is cause
        with pytest.raises(raised):  # asked again: the same failure, not counted again
            await stream.final()
        await stream.aclose()
        assert len(server.requests) == requests
        assert client.usage.retries == requests - 1
        assert client.usage.failures == 1
        await assert_slot_is_free(client)
        assert client.usage.failures == 1


async def test_a_stream_cured_by_a_retry_is_no_failure() -> None:
    respond = in_turn(sse([CUT]), sse([ROLE_ONLY, CUT]), sse(OPENAI_TEXT))
    async with loopback(respond) as server, client_for(server) as client:
        with anyio.fail_after(BOUND):
            texts = [chunk.text async for chunk in client.stream("hi")]
        assert "".join(texts) == OPENAI_REPLY  # once: nothing from the failed attempts
        assert (client.usage.retries, client.usage.failures) == (2, 0)
        assert len(server.requests) == 3


# -- 8. an error inside a 200 body: chat() and stream() retry alike ----------------------------


@pytest.mark.parametrize(
    ("body", "status", "error_class", "requests"),
    [
        pytest.param(
            {"error": {"code": 502, "message": "upstream"}},
            502,
            InternalServerError,
            3,
            id="openrouter-502",
        ),
        pytest.param(
            {"error": {"code": 429, "message": "slow down"}},
            429,
            RateLimitError,
            3,
            id="openrouter-429",
        ),
        pytest.param(
            {"error": {"code": 400, "message": "bad model"}},
            400,
            BadRequestError,
            1,
            id="openrouter-400",
        ),
        pytest.param(
            {"object": "error", "message": "bad", "type": "BadRequestError", "code": 400},
            400,
            BadRequestError,
            1,
            id="vllm-400",
        ),
    ],
)
async def test_an_error_in_a_200_body_is_judged_alike_by_chat_and_stream(
    body: dict[str, Any], status: int, error_class: type[APIStatusError], requests: int
) -> None:
    respond = lambda request: json_response(body)  # noqa: E731 - to chat and stream alike
    async with loopback(respond) as server, client_for(server) as client:
        with anyio.fail_after(BOUND), pytest.raises(APIStatusError) as chat_info:
            await client.chat("hi")
        chat_requests = len(server.requests)
        with anyio.fail_after(BOUND), pytest.raises(StreamError) as stream_info:
            await client.stream("hi").final()
        stream_requests = len(server.requests) - chat_requests
        assert chat_requests == stream_requests == requests
        assert type(chat_info.value) is type(stream_info.value.__cause__) is error_class
        assert chat_info.value.status_code == status
        cause = stream_info.value.__cause__
        assert isinstance(cause, APIStatusError) and cause.status_code == status
        assert stream_info.value.partial == ""
        assert client.usage.retries == 2 * (requests - 1)
        assert client.usage.failures == 2


# -- 9. failures before the first chunk: chat and stream alike ---------------------------------

HTML = b"<!doctype html><html><body><h1>Welcome to nginx!</h1></body></html>"


async def test_an_html_page_is_a_response_error_at_once_for_chat_and_stream() -> None:
    page = Response([HTML], content_type="text/html; charset=utf-8", chunked=False)
    async with loopback(lambda request: page) as server, client_for(server) as client:
        with anyio.fail_after(BOUND), pytest.raises(ResponseError) as chat_info:
            await client.chat("hi")
        assert len(server.requests) == 1
        # The opener raises it as it is (it is no stream failure), so the caller gets the
        # ResponseError itself, not a StreamError around it.
        with anyio.fail_after(BOUND), pytest.raises(ResponseError) as stream_info:
            async for _ in client.stream("hi"):
                pass
        assert len(server.requests) == 2  # one request each: nothing retried
        assert type(chat_info.value) is type(stream_info.value) is ResponseError
        assert "HTML" in str(stream_info.value)
        assert (client.usage.retries, client.usage.failures) == (0, 2)


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
async def test_a_cut_before_the_first_chunk_is_retried_for_chat_and_stream(chunked: bool) -> None:
    # Headers, then the socket closes with no body byte (the mock's `truncate;after=0`).
    def respond(request: Request) -> Response:
        kind = "text/event-stream" if request.json.get("stream") else "application/json"
        return Response([CUT], content_type=kind, chunked=chunked, length=None if chunked else 64)

    async with loopback(respond) as server, client_for(server) as client:
        with anyio.fail_after(BOUND), pytest.raises(StreamError) as stream_info:
            async for _ in client.stream("hi"):
                pass
        assert len(server.requests) == MAX_RETRIES + 1
        assert type(stream_info.value.__cause__) is APIConnectionError
        assert stream_info.value.partial == "" and stream_info.value.retryable
        with anyio.fail_after(BOUND), pytest.raises(APIConnectionError) as chat_info:
            await client.chat("hi")
        assert type(chat_info.value) is APIConnectionError
        assert len(server.requests) == 2 * (MAX_RETRIES + 1)
        assert (client.usage.retries, client.usage.failures) == (2 * MAX_RETRIES, 2)
        # Every attempt of one call carries the same idempotency key; each call its own.
        keys = [request.headers["idempotency-key"] for request in server.requests]
        assert len(set(keys[: MAX_RETRIES + 1])) == len(set(keys[MAX_RETRIES + 1 :])) == 1
        assert keys[0] != keys[-1]


# -- 10. client lifecycle ----------------------------------------------------------------------


def test_aclose_from_another_event_loop_is_a_client_state_error(engine: str) -> None:
    if engine == "aiohttp":
        # aiohttp's ClientSession warns when it is collected unclosed, and one whose loop has
        # ended cannot be closed any more (docs/guides/engines.md says so).
        pytest.skip("an aiohttp session left on an ended loop warns when collected")

    async def use() -> AsyncClient:
        # The server ends each connection after its reply: the first loop leaves no socket
        # open behind it, so anything left over would be the failed close's doing.
        reply = json_response(chat_completion("first loop"), close=True)
        async with loopback(lambda request: reply) as server:
            client = client_for(server)
            assert (await client.chat("hi")).text == "first loop"
            with anyio.fail_after(BOUND):
                await server.wait_closed(1)
            return client

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client = anyio.run(use)
        with pytest.raises(ClientStateError, match="another event loop") as info:
            anyio.run(client.aclose)
        message = str(info.value)
        del client, info
        gc.collect()  # an unclosed socket or transport would warn now
    assert "Event loop is closed" not in message
    assert [f"{w.category.__name__}: {w.message}" for w in caught] == []


def test_a_refused_close_leaves_the_client_closable_from_its_own_loop() -> None:
    respond = lambda request: json_response(chat_completion("kept"))  # noqa: E731 - keep-alive
    with (
        start_blocking_portal() as portal,  # the server on a loop of its own, in a thread
        portal.wrap_async_context_manager(loopback(respond)) as server,
        asyncio.Runner() as runner,
    ):
        client = client_for(server)

        async def use() -> None:
            assert (await client.chat("hi")).text == "kept"

        runner.run(use())
        with pytest.raises(ClientStateError, match="another event loop"):
            anyio.run(client.aclose)
        assert (server.opened, server.closed) == (1, 0)  # its connection was left alone
        runner.run(client.aclose())

        async def closed() -> None:
            with anyio.fail_after(BOUND):
                await server.wait_closed(1)

        portal.call(closed)


@pytest.mark.parametrize("method", ["batch", "as_completed"])
async def test_a_misspelt_batch_option_is_a_plain_type_error_and_sends_nothing(
    method: str,
) -> None:
    async with loopback(by_kind(lambda request: sse(OPENAI_TEXT))) as server:
        async with client_for(server) as client:
            with pytest.raises(TypeError) as info:
                if method == "batch":
                    await client.batch(["a"], temprature=1)  # type: ignore[call-arg]
                else:
                    async for _ in client.as_completed(["a"], temprature=1):  # type: ignore[call-arg]
                        pass
        assert type(info.value) is TypeError  # not an ExceptionGroup from the workers
        assert "'temprature'" in str(info.value) and "'temperature'" in str(info.value)
        assert server.requests == [] and server.opened == 0


# -- 11. Anthropic replay is exact -------------------------------------------------------------


def _block_events(index: int, block: dict[str, Any], deltas: list[dict[str, Any]]) -> list[bytes]:
    return [
        event(
            {"type": "content_block_start", "index": index, "content_block": block},
            "content_block_start",
        ),
        *(
            event(
                {"type": "content_block_delta", "index": index, "delta": d}, "content_block_delta"
            )
            for d in deltas
        ),
        event({"type": "content_block_stop", "index": index}, "content_block_stop"),
    ]


THINKING_REPLY = [
    ANTHROPIC_TEXT[0],  # message_start
    *_block_events(
        0,
        {"type": "thinking", "thinking": "", "signature": ""},
        [
            {"type": "thinking_delta", "thinking": "Step one: "},
            {"type": "thinking_delta", "thinking": "read it."},
            {"type": "signature_delta", "signature": "SIG-ONE/+=="},
        ],
    ),
    *_block_events(1, {"type": "redacted_thinking", "data": "EncRYPted+Opaque=="}, []),
    *_block_events(
        2,
        {"type": "thinking", "thinking": "", "signature": ""},
        [
            {"type": "thinking_delta", "thinking": "Step two: answer."},
            {"type": "signature_delta", "signature": "SIG-TWO/+=="},
        ],
    ),
    *_block_events(3, {"type": "text", "text": ""}, [{"type": "text_delta", "text": "Forty-two."}]),
    *ANTHROPIC_TEXT[-2:],  # message_delta, message_stop
]


async def test_anthropic_replay_sends_every_thinking_block_in_order_with_its_signature() -> None:
    async with (
        loopback(anthropic_by_kind(lambda request: sse(THINKING_REPLY))) as server,
        client_for(server, "anthropic") as client,
    ):
        with anyio.fail_after(BOUND):
            first = await client.stream("What is the answer?").final()
        assert first.text == "Forty-two."
        with anyio.fail_after(BOUND):
            await client.chat(
                [
                    Message(role="user", content="What is the answer?"),
                    first.message,
                    Message(role="user", content="Why?"),
                ]
            )
    sent = server.requests[-1].json["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[1]["content"] == [
        {"type": "thinking", "thinking": "Step one: read it.", "signature": "SIG-ONE/+=="},
        {"type": "redacted_thinking", "data": "EncRYPted+Opaque=="},
        {"type": "thinking", "thinking": "Step two: answer.", "signature": "SIG-TWO/+=="},
        {"type": "text", "text": "Forty-two."},
    ]


# -- 2. every reply the spec allows parses: custom tool calls --------------------------------


async def test_a_custom_tool_call_parses_and_goes_back_in_its_own_shape() -> None:
    custom = {"id": "call_c1", "type": "custom", "custom": {"name": "grep", "input": "TODO *.py"}}
    reply_body = {
        "id": "chatcmpl-c",
        "object": "chat.completion",
        "model": "loop-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "tool_calls": [custom]},
                "finish_reason": "tool_calls",
            }
        ],
    }
    async with (
        loopback(
            in_turn(json_response(reply_body), json_response(chat_completion("ok")))
        ) as server,
        client_for(server) as client,
    ):
        reply = await client.chat("find the TODOs")
        (call,) = reply.tool_calls
        assert (call.type, call.name, call.input) == ("custom", "grep", "TODO *.py")
        tool_turn = {"role": "tool", "tool_call_id": "call_c1", "content": "a.py:3"}
        await client.chat([{"role": "user", "content": "find"}, reply.message, tool_turn])
    sent = server.requests[1].json["messages"][1]
    assert sent["tool_calls"] == [custom]


# -- 3. send what the caller gave: stop -------------------------------------------------------


@pytest.mark.parametrize("stop", ["END", ["END", "STOP"]])
async def test_stop_goes_out_as_given(stop: str | list[str]) -> None:
    async with (
        loopback(lambda request: json_response(chat_completion("ok"))) as server,
        client_for(server) as client,
    ):
        await client.chat("hi", stop=stop)
        async for _ in client.stream("hi", stop=stop):
            pass
    assert [request.json["stop"] for request in server.requests] == [stop, stop]


# -- 4. in-stream error shapes ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "cause", "requests"),
    [
        # LiteLLM's proxy writes the status as text.
        (event({"error": {"code": "400", "message": "bad input"}}), BadRequestError, 1),
        (event({"error": {"code": "429", "message": "slow down"}}), RateLimitError, 3),
        # Any JSON payload of an `error` event is an error carrying its message.
        (event({"message": "boom"}, name="error"), InternalServerError, 3),
    ],
    ids=["code-400-as-text", "code-429-as-text", "error-event-with-a-bare-message"],
)
async def test_error_shapes_inside_a_stream_map_to_their_class(
    error: bytes, cause: type[APIStatusError], requests: int
) -> None:
    async with loopback(by_kind(lambda request: sse([ROLE_ONLY, error]))) as server:
        async with client_for(server) as client:
            with pytest.raises(StreamError) as info:
                await client.stream("hi").final()
        assert type(info.value.__cause__) is cause
        message = str(info.value)
        assert any(word in message for word in ("bad input", "slow down", "boom"))
        assert len(server.requests) == requests  # 400: final; 429 and an unnamed error: retried
