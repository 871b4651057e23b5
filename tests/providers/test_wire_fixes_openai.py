"""OpenAI-family wire details: custom tool calls, `stop` sent as given, typed in-stream errors
and the stream parser's `done` flag. Through the real client over an in-process fake server
where the user can see it, on the parser directly for what only the stream layer sees."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llmrelay import (
    AsyncClient,
    BadRequestError,
    ConfigError,
    InternalServerError,
    Message,
    NotFoundError,
    RateLimitError,
    ResponseError,
    StreamError,
    ToolCall,
)
from llmrelay._request import ChatRequest
from llmrelay._sse import ServerSentEvent
from llmrelay.providers import StreamParser, get_provider
from llmrelay.providers import gemini as gemini_adapter
from llmrelay.providers import openai as adapter

from ._helpers import FakeServer, client_over, completion

KEY = "sk-wire-test-0123456789"


def client(wire: FakeServer, provider: str = "openai") -> AsyncClient:
    return client_over(wire, provider=provider, api_key=KEY, max_retries=0)


def reply_with_calls(*calls: dict[str, Any]) -> dict[str, Any]:
    message = {"role": "assistant", "content": None, "refusal": None, "tool_calls": list(calls)}
    choice = {"index": 0, "finish_reason": "tool_calls", "logprobs": None, "message": message}
    return completion(choices=[choice])


CUSTOM = {"id": "call_c", "type": "custom", "custom": {"name": "shell", "input": "ls -la\n"}}
FUNCTION = {"id": "call_f", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}


# -- custom tool calls --------------------------------------------------------------------------


async def test_a_custom_tool_call_reaches_the_user_and_replays_as_it_came() -> None:
    wire = FakeServer(reply=reply_with_calls(FUNCTION, CUSTOM))
    async with client(wire) as chat:
        reply = await chat.chat("list the files", model="gpt-5")
        function, custom = reply.tool_calls
        assert custom == ToolCall(id="call_c", name="shell", type="custom", input="ls -la\n")
        assert function.type == "function"
        assert function.parsed_arguments == {"a": 1}
        assert function.input is None
        # The reply goes back into the conversation unchanged.
        await chat.chat(
            [
                {"role": "user", "content": "list the files"},
                reply.message,
                {"role": "tool", "tool_call_id": "call_c", "content": "README.md"},
            ],
            model="gpt-5",
        )
    assert wire.body["messages"][1]["tool_calls"] == [FUNCTION, CUSTOM]


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (CUSTOM, ToolCall(id="call_c", name="shell", type="custom", input="ls -la\n")),
        (  # no type: the kind is told by its field
            {"id": "c", "custom": {"name": "shell", "input": "pwd"}},
            ToolCall(id="c", name="shell", type="custom", input="pwd"),
        ),
        (  # no id: named by position, as for function calls
            {"type": "custom", "custom": {"name": "shell", "input": ""}},
            ToolCall(id="call_0", name="shell", type="custom", input=""),
        ),
        (
            {"id": "c", "type": "custom", "custom": {"name": "shell"}},
            ToolCall(id="c", name="shell", type="custom", input=""),
        ),
    ],
    ids=["custom", "untyped", "no id", "no input"],
)
def test_custom_call_shapes(call: dict[str, Any], expected: ToolCall) -> None:
    reply = adapter.parse_chat(get_provider("openai"), reply_with_calls(call), None)
    assert reply.tool_calls == (expected,)


def test_a_tool_call_of_an_unknown_kind_stays_in_raw() -> None:
    future = {"id": "call_x", "type": "computer_use", "computer_use": {"action": "click"}}
    body = reply_with_calls(future, FUNCTION)
    reply = adapter.parse_chat(get_provider("openai"), body, None)
    assert [call.id for call in reply.tool_calls] == ["call_f"]
    assert reply.raw["choices"][0]["message"]["tool_calls"][0] == future


@pytest.mark.parametrize(
    "call",
    [
        {"id": "c", "type": "custom", "custom": {"input": "x"}},
        {"id": "c", "type": "custom", "custom": {"name": "shell", "input": 5}},
        {"id": "c", "type": "custom"},
        {"id": "c", "type": "function", "custom": {"name": "shell", "input": "x"}},
        "call",
    ],
    ids=["no name", "input not text", "no custom", "function without function", "not an object"],
)
def test_malformed_tool_calls_are_response_errors(call: Any) -> None:
    with pytest.raises(ResponseError, match="openai"):
        adapter.parse_chat(get_provider("openai"), reply_with_calls(call), None)


def test_tool_call_to_dict_for_both_kinds() -> None:
    assert ToolCall(id="a", name="f", arguments='{"x": 1}').to_dict() == {
        "id": "a",
        "type": "function",
        "function": {"name": "f", "arguments": '{"x": 1}'},
    }
    assert ToolCall(id="b", name="g", type="custom", input="hi").to_dict() == {
        "id": "b",
        "type": "custom",
        "custom": {"name": "g", "input": "hi"},
    }
    replayed = Message(role="assistant", tool_calls=(ToolCall(id="b", name="g", type="custom"),))
    assert replayed.to_dict()["tool_calls"] == [
        {"id": "b", "type": "custom", "custom": {"name": "g", "input": ""}}
    ]


def sse(*events: Any, done: bool = True) -> bytes:
    lines = [f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n" for e in events]
    return ("".join(lines) + ("data: [DONE]\n\n" if done else "")).encode()


def delta_chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return {"id": "c1", "object": "chat.completion.chunk", "model": "m", "choices": [choice]}


async def test_a_streamed_tool_call_of_another_kind_is_left_in_raw() -> None:
    custom = {"index": 0, "id": "call_c", "type": "custom", "custom": {"name": "shell"}}
    more = {"index": 0, "custom": {"input": "ls"}}  # a later fragment names only its index
    function = {"index": 1, "id": "call_f", "type": "function", "function": {"name": "f"}}
    wire = FakeServer(
        sse=sse(
            delta_chunk({"role": "assistant", "tool_calls": [custom]}),
            delta_chunk({"tool_calls": [more, function]}),
            delta_chunk({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}),
            delta_chunk({}, "tool_calls"),
        )
    )
    async with client(wire) as chat:
        stream = chat.stream("hi", model="m")
        chunks = [chunk async for chunk in stream]
        final = await stream.final()
    assert chunks[0].tool_calls is None
    assert chunks[0].raw["choices"][0]["delta"]["tool_calls"] == [custom]
    assert final.tool_calls == (
        ToolCall(id="call_f", name="f", arguments="{}", parsed_arguments={}),
    )


# -- stop ---------------------------------------------------------------------------------------

ANTHROPIC_REPLY = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude",
    "content": [{"type": "text", "text": "ok"}],
    "stop_reason": "end_turn",
    "usage": {"input_tokens": 1, "output_tokens": 1},
}
GEMINI_REPLY = {
    "candidates": [
        {"content": {"role": "model", "parts": [{"text": "ok"}]}, "finishReason": "STOP"}
    ]
}


@pytest.mark.parametrize(
    ("stop", "sent"),
    [("END", "END"), (["END"], ["END"]), (["a", "b"], ["a", "b"]), (("a", "b"), ["a", "b"])],
    ids=["text", "list of one", "list", "tuple"],
)
async def test_stop_goes_to_openai_compatible_services_as_given(stop: Any, sent: Any) -> None:
    for provider in ("openai", "deepseek", "groq"):
        wire = FakeServer()
        async with client(wire, provider) as chat:
            await chat.chat("hi", model="m", stop=stop)
        assert wire.body["stop"] == sent, provider


@pytest.mark.parametrize(
    ("provider", "reply", "field"),
    [
        ("anthropic", ANTHROPIC_REPLY, ("stop_sequences",)),
        ("gemini", GEMINI_REPLY, ("generationConfig", "stopSequences")),
    ],
)
@pytest.mark.parametrize(
    ("stop", "sent"), [("END", ["END"]), (["a", "b"], ["a", "b"])], ids=["text", "list"]
)
async def test_stop_goes_to_anthropic_and_gemini_as_a_list(
    provider: str, reply: dict[str, Any], field: tuple[str, ...], stop: Any, sent: list[str]
) -> None:
    wire = FakeServer(reply=reply)
    async with client(wire, provider) as chat:
        await chat.chat("hi", model="m", stop=stop)
    value: Any = wire.body
    for key in field:
        value = value[key]
    assert value == sent


@pytest.mark.parametrize("stop", [5, ["a", 5], [None]])
async def test_a_stop_that_is_not_text_is_a_config_error(stop: Any) -> None:
    wire = FakeServer()
    async with client(wire) as chat:
        with pytest.raises(ConfigError, match="stop must be a string or a list of strings"):
            await chat.chat("hi", model="m", stop=stop)
    assert wire.requests == []


# -- errors inside a stream ---------------------------------------------------------------------


def parser() -> StreamParser:
    request = ChatRequest(model="m", messages=[], params={})
    return adapter.new_stream_parser(get_provider("openai"), request)


def error_event(data: Any, name: str = "message") -> ServerSentEvent:
    return ServerSentEvent(event=name, data=data if isinstance(data, str) else json.dumps(data))


@pytest.mark.parametrize(
    ("name", "data", "cls", "status", "message"),
    [
        # LiteLLM's proxy: the status as text in `code`.
        ("message", {"error": {"code": "400", "message": "bad"}}, BadRequestError, 400, "bad"),
        ("message", {"error": {"code": "429", "message": "slow"}}, RateLimitError, 429, "slow"),
        ("message", {"error": {"code": 404, "message": "gone"}}, NotFoundError, 404, "gone"),
        # Text that is no status falls back to the documented names, then 500.
        (
            "message",
            {"error": {"code": "rate_limit_exceeded", "message": "m"}},
            RateLimitError,
            429,
            "m",
        ),
        ("message", {"error": {"code": "700", "message": "m"}}, InternalServerError, 500, "m"),
        ("message", {"error": {"code": "٤٠٠", "message": "m"}}, InternalServerError, 500, "m"),
        # `event: error` with any payload.
        ("error", {"message": "boom"}, InternalServerError, 500, "boom"),
        ("error", {"code": "400", "message": "no"}, BadRequestError, 400, "no"),
        ("error", {"type": "rate_limit_error", "message": "wait"}, RateLimitError, 429, "wait"),
        (
            "error",
            {"error": {"type": "invalid_request_error", "message": "x"}},
            BadRequestError,
            400,
            "x",
        ),
        ("error", "upstream exploded", InternalServerError, 500, "upstream exploded"),
        ("error", '"quoted"', InternalServerError, 500, "quoted"),
        ("error", "[1, 2]", InternalServerError, 500, "[1, 2]"),
        ("error", "", InternalServerError, 500, "an error event with no message"),
    ],
)
def test_stream_error_events_raise_the_status_class(
    name: str, data: Any, cls: type[Exception], status: int, message: str
) -> None:
    with pytest.raises(cls) as info:
        parser().parse(error_event(data, name))
    assert type(info.value) is cls
    assert info.value.status_code == status  # type: ignore[attr-defined]
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("event", "cause", "retryable"),
    [
        (
            b'data: {"error": {"code": "400", "message": "context too long"}}\n\n',
            BadRequestError,
            False,
        ),
        (b'event: error\ndata: {"message": "boom"}\n\n', InternalServerError, True),
    ],
    ids=["litellm 400", "event error"],
)
async def test_a_stream_error_reaches_the_user_typed(
    event: bytes, cause: type[Exception], retryable: bool
) -> None:
    first = f"data: {json.dumps(delta_chunk({'content': 'Hel'}))}\n\n".encode()
    wire = FakeServer(sse=first + event)
    async with client(wire) as chat:
        seen = []
        with pytest.raises(StreamError) as info:
            async for chunk in chat.stream("hi", model="m"):
                seen.append(chunk.text)
    assert seen == ["Hel"]
    assert type(info.value.__cause__) is cause
    assert info.value.partial == "Hel"
    assert info.value.retryable is retryable


# -- done ---------------------------------------------------------------------------------------


def test_done_turns_true_at_the_terminator_and_later_events_are_ignored() -> None:
    p = parser()
    assert p.done is False
    chunk = p.parse(error_event(delta_chunk({"content": "hi"})))
    assert chunk is not None and chunk.text == "hi"
    assert p.done is False
    assert p.parse(ServerSentEvent(data="[DONE]")) is None
    assert p.done is True
    assert p.finished()
    # Whatever a server sends after its terminator is not read as part of the reply.
    for late in (
        error_event(delta_chunk({"content": "more"})),
        error_event("not json"),
        error_event({"error": {"code": 500, "message": "late"}}),
        error_event({"message": "late"}, "error"),
        ServerSentEvent(data="[DONE]"),
    ):
        assert p.parse(late) is None
    assert p.done is True


def test_a_finish_reason_alone_finishes_but_is_not_done() -> None:
    p = parser()
    p.parse(error_event(delta_chunk({}, "stop")))
    assert p.finished()
    assert p.done is False


def test_gemini_has_no_terminator() -> None:
    provider = get_provider("gemini")
    p = gemini_adapter.new_stream_parser(provider, ChatRequest(model="m", messages=[], params={}))
    assert p.done is False
    event = {"candidates": [{"content": {"parts": [{"text": "hi"}]}, "finishReason": "STOP"}]}
    assert p.parse(error_event(event)) is not None
    assert p.parse(ServerSentEvent(data="[DONE]")) is None  # a proxy's OpenAI terminator
    assert p.finished()
    assert p.done is False


def test_the_parser_protocol_names_done() -> None:
    assert "done" in StreamParser.__annotations__
