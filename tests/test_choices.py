"""Several choices (`n`): every choice in `reply.choices`, choice 0 in the reply's own fields,
stream chunks filed under their choice's `index`, `final()` equal to `chat()`.

Through the real client over the exact-bytes loopback server (`_loopback.py`) with the choices
on the wire in turns (llama.cpp), one after the other, in reverse, and together in one event;
then the pure assembler against every interleaving Hypothesis finds.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from _loopback import LoopbackServer, Request, Response, json_response, loopback, sse
from llmrelay import (
    AsyncClient,
    ChatResponse,
    Choice,
    ConfigError,
    ReasoningBlock,
    RetryPolicy,
    StreamChunk,
    StreamError,
    Timeout,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from llmrelay._assembler import assemble, chunks_of
from llmrelay._types import make_stream_chunk

KEY = "sk-test-choices-0123456789"


def client_for(server: LoopbackServer, provider: str = "openai") -> AsyncClient:
    return AsyncClient(
        provider=provider,
        api_key=KEY,
        base_url=server.base_url,
        model="m",
        timeout=Timeout(read=30.0),
        retry=RetryPolicy(max_retries=0),
    )


def by_kind(stream: list[bytes], whole: dict[str, Any]) -> Callable[[Request], Response]:
    """A streamed request gets the events `stream`, any other the JSON body `whole`."""

    def respond(request: Request) -> Response:
        body = request.json or {}
        if body.get("stream") or request.path.endswith("alt=sse"):
            return sse(list(stream))
        return json_response(whole)

    return respond


def data(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, ensure_ascii=False).encode() + b"\n\n"


def same_reply(streamed: ChatResponse, whole: ChatResponse) -> None:
    """`final()` equals `chat()` for the same reply (each request has its own request id)."""
    assert dataclasses.replace(streamed, request_id=whole.request_id) == whole


# -- the OpenAI wire ---------------------------------------------------------------------------

# Each choice as the deltas a server streams for it, the last with its finish reason. Choice 0
# and 1 are the reply of the issue (llama.cpp, n=2); choice 2 reasons, then calls a tool in
# fragments.
SCRIPTS: list[list[tuple[dict[str, Any], str | None]]] = [
    [
        ({"role": "assistant", "content": ""}, None),
        ({"content": " no"}, None),
        ({"content": " R"}, None),
        ({"content": " grüß"}, None),
        ({}, "stop"),
    ],
    [
        ({"role": "assistant", "content": ""}, None),
        ({"content": " yes"}, None),
        ({"content": " S"}, None),
        ({"content": " tschüss"}, "length"),
    ],
    [
        ({"role": "assistant", "reasoning_content": "hmm, "}, None),
        ({"reasoning_content": "a tool"}, None),
        (
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "f", "arguments": ""},
                    }
                ]
            },
            None,
        ),
        ({"tool_calls": [{"index": 0, "function": {"arguments": '{"x": '}}]}, None),
        ({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}, "tool_calls"),
    ],
]
TEXTS = [" no R grüß", " yes S tschüss", ""]
USAGE = {"prompt_tokens": 4, "completion_tokens": 20, "total_tokens": 24}
CALL = ToolCall(id="call_a", name="f", arguments='{"x": 1}', parsed_arguments={"x": 1})


def openai_choice(index: int, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {"index": index, "delta": delta, "finish_reason": finish}


def openai_event(*choices: dict[str, Any]) -> bytes:
    return data(
        {
            "id": "chatcmpl-n",
            "object": "chat.completion.chunk",
            "model": "loop-model",
            "choices": list(choices),
        }
    )


def openai_order(order: str, scripts: list[list[tuple[dict[str, Any], str | None]]]) -> list[bytes]:
    """The events of `scripts` in an `order`: "turns" (one choice per event, taking turns, as
    llama.cpp sends them), "sequential" (choice by choice), "reversed" (the last choice first),
    "together" (each event carries the next delta of every choice still going)."""
    steps = [[openai_choice(i, d, f) for d, f in script] for i, script in enumerate(scripts)]
    if order == "sequential":
        events = [openai_event(c) for choice in steps for c in choice]
    elif order == "reversed":
        events = [openai_event(c) for choice in reversed(steps) for c in choice]
    else:
        rounds = [[choice[k] for choice in steps if k < len(choice)] for k in range(5)]
        if order == "turns":
            events = [openai_event(c) for round_ in rounds for c in round_]
        else:
            events = [openai_event(*round_) for round_ in rounds]
    usage = data({"id": "chatcmpl-n", "model": "loop-model", "choices": [], "usage": USAGE})
    return [*events, usage, b"data: [DONE]\n\n"]


def openai_whole(scripts: list[list[tuple[dict[str, Any], str | None]]]) -> dict[str, Any]:
    """The chat completion the same choices make."""
    choices = []
    for index, script in enumerate(scripts):
        text = "".join(d.get("content", "") for d, _ in script)
        reasoning = "".join(d.get("reasoning_content", "") for d, _ in script)
        message: dict[str, Any] = {"role": "assistant", "content": text or None}
        if reasoning:
            message["reasoning_content"] = reasoning
        if any("tool_calls" in d for d, _ in script):
            message["tool_calls"] = [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "f", "arguments": '{"x": 1}'},
                }
            ]
        finish = next(f for _, f in reversed(script) if f)
        choices.append({"index": index, "message": message, "finish_reason": finish})
    return {
        "id": "chatcmpl-n",
        "object": "chat.completion",
        "model": "loop-model",
        "choices": choices,
        "usage": USAGE,
    }


ORDERS = ["turns", "sequential", "reversed", "together"]


@pytest.mark.parametrize("order", ORDERS)
async def test_a_stream_of_several_choices_keeps_them_apart(order: str) -> None:
    respond = by_kind(openai_order(order, SCRIPTS), openai_whole(SCRIPTS))
    texts: list[str] = []
    seen: list[StreamChunk] = []
    async with loopback(respond) as server, client_for(server) as client:
        async with client.stream("hi", n=3, on_text=texts.append, on_chunk=seen.append) as stream:
            chunks = [chunk async for chunk in stream]
            final = await stream.final()
            streamed_text = stream.text
        reply = await client.chat("hi", n=3)
    assert [request.json["n"] for request in server.requests] == [3, 3]
    joined = {i: "".join(c.text for c in chunks if c.index == i) for i in range(3)}
    assert joined == dict(enumerate(TEXTS))
    assert {c.index for c in chunks} == {0, 1, 2}
    # The stream's own text and `on_text` follow choice 0 only; `on_chunk` gets every chunk.
    assert streamed_text == "".join(texts) == " no R grüß"
    assert seen == chunks
    assert [c.index for c in reply.choices] == [0, 1, 2]
    assert [c.text for c in reply.choices] == TEXTS
    assert [c.finish_reason for c in reply.choices] == ["stop", "length", "tool_calls"]
    assert reply.choices[2].tool_calls == (CALL,)
    assert reply.choices[2].reasoning == "hmm, a tool"
    assert reply.choices[2].message.tool_calls == (CALL,)
    assert (reply.text, reply.finish_reason, reply.tool_calls, reply.reasoning) == (
        " no R grüß",
        "stop",
        (),
        None,
    )
    assert reply.usage == Usage(prompt_tokens=4, completion_tokens=20, total_tokens=24)
    same_reply(final, reply)


async def test_n_given_through_extra_body_is_no_longer_mixed_together() -> None:
    """The issue's case: llama.cpp, ``extra_body={"n": 2}``, one choice per event in turns.
    The stream's text was ``' no no R R grüß grüß'``."""
    scripts = [SCRIPTS[0], SCRIPTS[0]]
    respond = by_kind(openai_order("turns", scripts), openai_whole(scripts))
    async with loopback(respond) as server, client_for(server) as client:
        async with client.stream("hi", extra_body={"n": 2}) as stream:
            final = await stream.final()
            text = stream.text
        reply = await client.chat("hi", extra_body={"n": 2})
    assert text == final.text == reply.text == " no R grüß"
    assert [c.text for c in final.choices] == [" no R grüß", " no R grüß"]
    same_reply(final, reply)


async def test_a_single_choice_reply_has_itself_as_its_one_choice() -> None:
    scripts = [SCRIPTS[0]]
    respond = by_kind(openai_order("turns", scripts), openai_whole(scripts))
    async with loopback(respond) as server, client_for(server) as client:
        reply = await client.chat("hi")
        final = await client.stream("hi").final()
    assert "n" not in server.requests[0].json
    assert reply.choices == (Choice(index=0, text=" no R grüß", finish_reason="stop"),)
    same_reply(final, reply)


async def test_a_whole_reply_to_a_stream_request_gives_a_chunk_per_choice() -> None:
    """A server that ignored `stream` and sent the JSON completion."""
    whole = openai_whole(SCRIPTS)
    async with (
        loopback(lambda request: json_response(whole)) as server,
        client_for(server) as client,
    ):
        stream = client.stream("hi", n=3)
        chunks = [chunk async for chunk in stream]
        final = await stream.final()
        reply = await client.chat("hi", n=3)
    assert [(c.index, c.text) for c in chunks] == list(enumerate(TEXTS))
    same_reply(final, reply)


@pytest.mark.parametrize(
    ("finished", "complete"),
    [((True, True), True), ((True, False), False), ((False, True), False)],
)
async def test_a_stream_without_done_is_complete_only_when_every_choice_finished(
    finished: tuple[bool, bool], complete: bool
) -> None:
    """No ``[DONE]`` (some llama.cpp forks): the body's end is the reply's end only if each
    choice got its finish reason; else the stream was cut."""
    events = [
        openai_event(openai_choice(i, {"content": f"c{i}"}, "stop" if done else None))
        for i, done in enumerate(finished)
    ]
    async with loopback(lambda request: sse(events)) as server, client_for(server) as client:
        stream = client.stream("hi", n=2)
        if complete:
            final = await stream.final()
            assert [c.text for c in final.choices] == ["c0", "c1"]
        else:
            with pytest.raises(StreamError, match="before the reply was complete"):
                await stream.final()


@pytest.mark.parametrize(
    ("choices", "indexes"),
    [
        ([{"delta": {"content": "a"}}, {"delta": {"content": "b"}}], [0, 1]),  # no index: position
        ([{"index": 1, "delta": {"content": "b"}}, {"index": 0, "delta": {}}], [1, 0]),
        ([{"index": "1", "delta": {"content": "a"}}], [0]),  # alone, no usable index: choice 0
        ([{"index": -2, "delta": {"content": "a"}}, {"delta": {"content": "b"}}], [0, 1]),
    ],
)
async def test_each_choice_of_an_event_is_filed_under_its_index(
    choices: list[dict[str, Any]], indexes: list[int]
) -> None:
    events = [openai_event(*choices), b"data: [DONE]\n\n"]
    async with loopback(lambda request: sse(events)) as server, client_for(server) as client:
        chunks = [chunk async for chunk in client.stream("hi")]
    assert [c.index for c in chunks] == indexes
    assert [c.text for c in chunks] == [c["delta"].get("content", "") for c in choices]


async def test_batch_passes_n_on() -> None:
    whole = openai_whole(SCRIPTS[:2])
    async with (
        loopback(lambda request: json_response(whole)) as server,
        client_for(server) as client,
    ):
        [reply] = await client.batch(["hi"], n=2)
    assert server.requests[0].json["n"] == 2
    assert [c.text for c in reply.choices] == TEXTS[:2]


@pytest.mark.parametrize("n", [0, -1, True, 1.5, "2", [2]])
@pytest.mark.parametrize("method", ["chat", "stream"])
async def test_n_must_be_a_positive_int_before_anything_is_sent(n: Any, method: str) -> None:
    whole = openai_whole(SCRIPTS[:1])
    async with (
        loopback(lambda request: json_response(whole)) as server,
        client_for(server) as client,
    ):
        with pytest.raises(ConfigError, match=r"n \(how many choices\) must be a positive int"):
            if method == "chat":
                await client.chat("hi", n=n)
            else:
                await client.stream("hi", n=n).final()
    assert server.requests == []


# -- Anthropic: one reply per request ------------------------------------------------------------

ANTHROPIC_REPLY = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "m",
    "content": [{"type": "text", "text": "hello"}],
    "stop_reason": "end_turn",
    "usage": {"input_tokens": 1, "output_tokens": 1},
}


async def test_anthropic_refuses_several_choices_before_sending() -> None:
    async with (
        loopback(lambda request: json_response(ANTHROPIC_REPLY)) as server,
        client_for(server, "anthropic") as client,
    ):
        for call in (
            lambda: client.chat("hi", n=2),
            lambda: client.stream("hi", n=2).final(),
        ):
            with pytest.raises(ConfigError, match="one choice per request"):
                await call()
        assert server.requests == []
        reply = await client.chat("hi", n=1)  # the default, said out loud: fine
    assert "n" not in server.requests[0].json
    assert reply.choices == (Choice(index=0, text="hello", finish_reason="stop"),)


# -- Gemini: candidateCount ---------------------------------------------------------------------


def gemini_candidate(index: int, parts: list[dict[str, Any]], finish: str | None) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}}
    if index:  # proto3 JSON leaves a zero index out
        candidate["index"] = index
    if finish:
        candidate["finishReason"] = finish
    return candidate


def gemini_event(*candidates: dict[str, Any], usage: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"candidates": list(candidates), "modelVersion": "gm", "responseId": "r"}
    if usage:
        body["usageMetadata"] = {"promptTokenCount": 2, "candidatesTokenCount": 6}
    return body


GEMINI_WHOLE = gemini_event(
    gemini_candidate(0, [{"text": "Hallo "}, {"text": "Welt"}], "STOP"),
    gemini_candidate(1, [{"functionCall": {"name": "f", "args": {"x": 1}}}], "STOP"),
    usage=True,
)
GEMINI_STREAMS = {
    "together": [
        gemini_event(
            gemini_candidate(0, [{"text": "Hallo "}], None),
            gemini_candidate(1, [{"functionCall": {"name": "f", "args": {"x": 1}}}], None),
        ),
        gemini_event(
            gemini_candidate(0, [{"text": "Welt"}], "STOP"),
            gemini_candidate(1, [], "STOP"),
            usage=True,
        ),
    ],
    "turns": [
        gemini_event(
            gemini_candidate(1, [{"functionCall": {"name": "f", "args": {"x": 1}}}], None)
        ),
        gemini_event(gemini_candidate(0, [{"text": "Hallo "}], None)),
        gemini_event(gemini_candidate(1, [], "STOP")),
        gemini_event(gemini_candidate(0, [{"text": "Welt"}], "STOP"), usage=True),
    ],
}


@pytest.mark.parametrize("order", sorted(GEMINI_STREAMS))
async def test_gemini_maps_n_to_candidate_count_and_reads_every_candidate(order: str) -> None:
    respond = by_kind([data(e) for e in GEMINI_STREAMS[order]], GEMINI_WHOLE)
    async with loopback(respond) as server, client_for(server, "gemini") as client:
        stream = client.stream("hi", n=2)
        chunks = [chunk async for chunk in stream]
        final = await stream.final()
        reply = await client.chat("hi", n=2)
    assert [r.json["generationConfig"]["candidateCount"] for r in server.requests] == [2, 2]
    assert "".join(c.text for c in chunks if c.index == 0) == "Hallo Welt"
    assert [c.text for c in reply.choices] == ["Hallo Welt", ""]
    assert reply.choices[1].tool_calls == (
        ToolCall(id="call_0", name="f", arguments='{"x": 1}', parsed_arguments={"x": 1}),
    )
    assert [c.finish_reason for c in reply.choices] == ["stop", "tool_calls"]
    same_reply(final, reply)


# -- the value types ----------------------------------------------------------------------------


def test_choice_zero_is_always_the_replys_own_fields() -> None:
    reply = ChatResponse(text="a", finish_reason="stop", reasoning="r")
    assert reply.choices == (
        Choice(
            index=0,
            text="a",
            finish_reason="stop",
            reasoning="r",
            reasoning_blocks=(ReasoningBlock(text="r"),),
        ),
    )
    two = ChatResponse(text="a", choices=(Choice(index=0, text="a"), Choice(index=1, text="b")))
    changed = dataclasses.replace(two, text="z")
    assert [c.text for c in changed.choices] == ["z", "b"]
    assert changed.text == changed.choices[0].text
    assert "choices" not in repr(two)  # the reply's own fields already show choice 0


def test_stream_chunks_belong_to_choice_zero_unless_told() -> None:
    args = ("t", None, None, None, None, None, None, None, None, None, None)
    assert StreamChunk().index == 0
    assert make_stream_chunk(*args).index == 0
    assert make_stream_chunk(*args, None, 2) == StreamChunk(text="t", index=2)


# -- the assembler against every interleaving -------------------------------------------------


@st.composite
def choice_chunks(draw: st.DrawFn, index: int) -> list[StreamChunk]:
    """One choice's chunks, in order: text and reasoning pieces, a signature, a tool call in
    fragments, a finish reason at the end (each chunk filed under `index`)."""
    out: list[StreamChunk] = [StreamChunk(role="assistant", index=index)]
    pieces = st.text(max_size=4)
    for reasoning in draw(st.lists(pieces.filter(bool), max_size=3)):
        out.append(StreamChunk(reasoning=reasoning, index=index))
    if draw(st.booleans()):
        out.append(StreamChunk(reasoning_signature=f"sig{index}", index=index))
    for text in draw(st.lists(pieces, max_size=4)):
        out.append(StreamChunk(text=text, index=index))
    fragments = draw(st.lists(st.sampled_from(['{"a"', ": ", "1}"]), max_size=3))
    if fragments:
        first = ToolCallDelta(index=0, id=f"call_{index}", name=f"f{index}")
        out.append(StreamChunk(tool_calls=(first,), index=index))
        for piece in fragments:
            delta = ToolCallDelta(index=0, arguments=piece)
            out.append(StreamChunk(tool_calls=(delta,), index=index))
    out.append(StreamChunk(finish_reason=draw(st.sampled_from(["stop", "length"])), index=index))
    return out


@st.composite
def interleavings(draw: st.DrawFn) -> tuple[list[list[StreamChunk]], list[StreamChunk]]:
    """Some choices (not always numbered from 0 on) and one order of all their chunks that
    keeps each choice's own order."""
    indexes = draw(st.lists(st.integers(0, 5), min_size=1, max_size=4, unique=True))
    per_choice = [draw(choice_chunks(index)) for index in indexes]
    labels = [k for k, chunks in enumerate(per_choice) for _ in chunks]
    order = draw(st.permutations(labels))
    positions = [0] * len(per_choice)
    wire = []
    for k in order:
        wire.append(per_choice[k][positions[k]])
        positions[k] += 1
    return per_choice, wire


@given(interleavings())
def test_every_interleaving_assembles_each_choice_as_if_it_came_alone(
    case: tuple[list[list[StreamChunk]], list[StreamChunk]],
) -> None:
    per_choice, wire = case
    usage = Usage(prompt_tokens=1, completion_tokens=2, total_tokens=3)
    tail = StreamChunk(usage=usage, id="x", model="m")
    reply = assemble([*wire, tail], request_id="req", provider="p")
    alone = {
        chunks[0].index: assemble(
            [dataclasses.replace(c, index=0) for c in chunks], request_id=None, provider=None
        ).choices[0]
        for chunks in per_choice
    }
    indexes = sorted({0, *alone})  # choice 0 is the reply's own, if only empty
    assert [c.index for c in reply.choices] == indexes
    for choice in reply.choices:
        expected = alone.get(choice.index, Choice(index=0, text=""))
        assert choice == dataclasses.replace(expected, index=choice.index)
    assert reply.text == reply.choices[0].text
    assert (reply.usage, reply.id, reply.model) == (usage, "x", "m")
    # A whole reply split into a chunk per choice assembles back to itself.
    assert assemble(chunks_of(reply), request_id="req", provider="p") == reply
