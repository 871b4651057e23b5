"""The pure reply assembler, without HTTP: a recorded stream's bytes go through the SSE decoder
and the wire family's own stream parser into `ReplyAssembler`, and the reply it builds must equal
what the family's `parse_chat` makes of the same answer as one JSON body (text, tool calls,
reasoning and its blocks, usage, finish reason, id and model). Then the assembler's own rules,
one at a time, on hand-made chunks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from llmrelay import ChatResponse, ReasoningBlock, StreamChunk, ToolCall, ToolCallDelta, Usage
from llmrelay._assembler import ReplyAssembler, assemble, carries_content, chunk_of
from llmrelay._request import ChatRequest
from llmrelay._sse import SSEDecoder
from llmrelay.providers import get_provider

TESTS = Path(__file__).parent
PAIRS = TESTS / "providers" / "fixtures"  # <name>.sse with the same answer as <name>.json
OPENAI_STREAMS = TESTS / "fixtures" / "openai"  # streams only


def assembled(provider_name: str, sse: bytes, piece: int) -> tuple[ChatResponse, bool]:
    """(the reply the assembler builds from `sse` fed in `piece`-byte slices, whether the
    parser saw the stream's proper end)."""
    provider = get_provider(provider_name)
    request = ChatRequest(
        model="m", messages=[{"role": "user", "content": "hi"}], params={}, stream=True
    )
    parser = provider.adapter.new_stream_parser(provider, request)
    decoder = SSEDecoder()
    assembler = ReplyAssembler()
    events = []
    for start in range(0, len(sse), piece):
        events.extend(decoder.feed(sse[start : start + piece]))
    events.extend(decoder.flush())
    for event in events:
        chunk = parser.parse(event)
        if chunk is not None:
            assembler.add(chunk)
    return assembler.reply(request_id="req_1", provider=provider.name), parser.finished()


def whole(provider_name: str, data: Any) -> ChatResponse:
    provider = get_provider(provider_name)
    reply: ChatResponse = provider.adapter.parse_chat(provider, data, "req_1")
    return reply


def sse_events(path: Path) -> list[dict[str, Any]]:
    """The JSON data of each event in a fixture (comments, fields and ``[DONE]`` skipped)."""
    decoder = SSEDecoder()
    events = decoder.feed(path.read_bytes()) + decoder.flush()
    return [json.loads(e.data) for e in events if e.data and e.data != "[DONE]"]


def merged_openai(path: Path) -> dict[str, Any]:
    """The `chat.completion` body an OpenAI-family server sends for the same answer as a stream
    of `chat.completion.chunk`s: deltas joined, tool calls by index, the last finish reason and
    usage (wherever the service put it), the first id and model."""
    text: list[str] = []
    reasoning: dict[str, list[str]] = {}
    refusal: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    out: dict[str, Any] = {"object": "chat.completion"}
    finish = None
    for event in sse_events(path):
        for key in ("id", "model"):
            if event.get(key) and key not in out:
                out[key] = event[key]
        usage = event.get("usage") or (event.get("x_groq") or {}).get("usage")
        for choice in event.get("choices") or []:
            delta = choice.get("delta") or {}
            text.append(delta.get("content") or "")
            refusal.append(delta.get("refusal") or "")
            for key in ("reasoning_content", "reasoning"):
                if delta.get(key):
                    reasoning.setdefault(key, []).append(delta[key])
            for fragment in delta.get("tool_calls") or []:
                call = calls.setdefault(fragment["index"], {"type": "function", "arguments": []})
                call.setdefault("id", fragment.get("id"))
                function = fragment.get("function") or {}
                if function.get("name"):
                    call["name"] = function["name"]
                call["arguments"].append(function.get("arguments") or "")
            finish = choice.get("finish_reason") or finish
            usage = usage or choice.get("usage")
        if usage:
            out["usage"] = usage
    message: dict[str, Any] = {"role": "assistant", "content": "".join(text) or None}
    if "".join(refusal):
        message["refusal"] = "".join(refusal)
    for key, pieces in reasoning.items():
        message[key] = "".join(pieces)
    if calls:
        message["tool_calls"] = [
            {
                "id": call["id"],
                "type": "function",
                "function": {"name": call["name"], "arguments": "".join(call["arguments"])},
            }
            for _, call in sorted(calls.items())
        ]
    out["choices"] = [{"index": 0, "message": message, "finish_reason": finish}]
    return out


def merged_gemini(path: Path) -> dict[str, Any]:
    """The `generateContent` body for the same answer as a `streamGenerateContent` stream: every
    chunk's parts in order, the last finish reason and the last (cumulative) usage."""
    parts: list[Any] = []
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    out: dict[str, Any] = {"candidates": [candidate]}
    for event in sse_events(path):
        for key in ("usageMetadata", "modelVersion", "responseId"):
            if key in event:
                out[key] = event[key]
        for each in event.get("candidates", []):
            parts.extend(each["content"]["parts"])
            if "finishReason" in each:
                candidate["finishReason"] = each["finishReason"]
    return out


# (provider, stream fixture, the whole reply's JSON)
CASES: list[tuple[str, Path, Any]] = [
    *(
        (provider, PAIRS / f"{name}.sse", json.loads((PAIRS / f"{name}.json").read_text("utf-8")))
        for provider, name in [
            ("openai", "openai/azure_content_filter"),
            ("azure", "openai/azure_content_filter"),
            ("ollama", "openai/no_done_with_finish"),
            ("deepseek", "compat/deepseek_reasoning"),
            ("groq", "compat/groq_x_groq_usage"),
            ("moonshot", "compat/moonshot_usage_in_choice"),
            ("openrouter", "compat/openrouter_reasoning"),
            ("vllm", "compat/vllm_reasoning"),
            ("anthropic", "anthropic/text"),
            ("anthropic", "anthropic/thinking"),
            ("anthropic", "anthropic/thinking_blocks"),
            ("anthropic", "anthropic/tool_use"),
        ]
    ),
    *(
        (provider, OPENAI_STREAMS / f"{name}.sse", merged_openai(OPENAI_STREAMS / f"{name}.sse"))
        for provider, name in [
            ("openai", "text"),
            ("openai", "tool_calls_parallel"),
            ("groq", "tool_calls_whole"),
            ("openai", "refusal"),
            ("deepseek", "reasoning_content"),
            ("openrouter", "reasoning_field"),
            ("moonshot", "usage_in_choice"),
            ("azure", "azure_empty_first"),
            ("openai", "comments_keepalive"),
            ("ollama", "done_missing_finished"),
        ]
    ),
    *(
        ("gemini", PAIRS / f"gemini/{name}.sse", merged_gemini(PAIRS / f"gemini/{name}.sse"))
        for name in ["text", "function_call", "thoughts"]
    ),
]
IDS = [f"{provider}:{path.parent.name}/{path.stem}" for provider, path, _ in CASES]


@pytest.mark.parametrize("piece", [1 << 20, 7], ids=["whole", "7-byte pieces"])
@pytest.mark.parametrize(("provider", "sse", "data"), CASES, ids=IDS)
def test_the_assembled_stream_equals_the_whole_reply(
    provider: str, sse: Path, data: Any, piece: int
) -> None:
    streamed, complete = assembled(provider, sse.read_bytes(), piece)
    expected = whole(provider, data)
    assert complete  # every fixture here is a whole answer: no cut, no error
    assert expected.text or expected.tool_calls or expected.refusal  # the pair says something
    # Field by field first, so a failure names what differs; then everything, id and model too.
    assert streamed.text == expected.text
    assert streamed.tool_calls == expected.tool_calls
    assert streamed.reasoning == expected.reasoning
    assert streamed.reasoning_signature == expected.reasoning_signature
    assert streamed.reasoning_blocks == expected.reasoning_blocks
    assert streamed.refusal == expected.refusal
    assert streamed.usage == expected.usage
    assert streamed.finish_reason == expected.finish_reason
    assert streamed == expected


def test_the_fixtures_cover_what_a_reply_can_hold() -> None:
    """The comparison above is only worth what the fixtures carry: together they hold text,
    parallel tool calls, reasoning with signed and redacted blocks, refusals and cached
    tokens."""
    replies = [whole(provider, data) for provider, _, data in CASES]
    assert any(len(r.tool_calls) >= 2 for r in replies)
    assert any(r.reasoning and not r.reasoning_signature for r in replies)
    assert any(any(b.redacted for b in r.reasoning_blocks) for r in replies)
    assert any(len([b for b in r.reasoning_blocks if b.signature]) >= 2 for r in replies)
    assert any(r.refusal for r in replies)
    assert any(r.usage and r.usage.cached_tokens for r in replies)
    assert {r.finish_reason for r in replies} >= {"stop", "tool_calls"}


@pytest.mark.parametrize(("provider", "sse", "data"), CASES, ids=IDS)
def test_a_whole_reply_as_one_chunk_assembles_back(provider: str, sse: Path, data: Any) -> None:
    """`chunk_of` (a server that ignored `stream` and sent JSON) round-trips through the
    assembler, except that one chunk holds a single reasoning block."""
    reply = whole(provider, data)
    back = assemble([chunk_of(reply)], request_id="req_1", provider=reply.provider)
    if len(reply.reasoning_blocks) > 1:
        assert back.reasoning == reply.reasoning
        back = ChatResponse(
            **{f: getattr(back, f) for f in back.__dataclass_fields__ if f != "reasoning_blocks"},
            reasoning_blocks=reply.reasoning_blocks,
        )
    assert back == reply


# -- the rules, on hand-made chunks -------------------------------------------------------------


def test_text_reasoning_and_refusal_deltas_join_in_order() -> None:
    reply = assemble(
        [
            StreamChunk(role="assistant"),
            StreamChunk(reasoning="Think "),
            StreamChunk(reasoning="hard."),
            StreamChunk(text="Hel"),
            StreamChunk(text="lo", refusal="No"),
            StreamChunk(text="!", refusal="pe."),
        ],
        request_id="r",
        provider="p",
    )
    assert (reply.text, reply.reasoning, reply.refusal) == ("Hello!", "Think hard.", "Nope.")
    assert reply.reasoning_blocks == (ReasoningBlock(text="Think hard."),)
    assert (reply.request_id, reply.provider) == ("r", "p")


def test_tool_call_fragments_are_grouped_by_index_and_sorted() -> None:
    """Parallel calls interleave their fragments; the first fragment with an id or name gives
    it (a later one cannot rename the call); arguments are joined, then parsed once."""
    chunks = [
        StreamChunk(tool_calls=(ToolCallDelta(index=1, id="call_b", name="mul"),)),
        StreamChunk(tool_calls=(ToolCallDelta(index=0, arguments='{"a"'),)),
        StreamChunk(
            tool_calls=(
                ToolCallDelta(index=0, id="call_a", name="add", arguments=": 1}"),
                ToolCallDelta(index=1, arguments='{"x": '),
            )
        ),
        StreamChunk(tool_calls=(ToolCallDelta(index=1, id="other", name="div", arguments="2}"),)),
        StreamChunk(tool_calls=(ToolCallDelta(index=5, name="broken", arguments='{"unclosed'),)),
        StreamChunk(tool_calls=(ToolCallDelta(index=3, name="no_args"),)),
    ]
    reply = assemble(chunks, request_id=None, provider=None)
    assert reply.tool_calls == (
        ToolCall(id="call_a", name="add", arguments='{"a": 1}', parsed_arguments={"a": 1}),
        ToolCall(id="call_b", name="mul", arguments='{"x": 2}', parsed_arguments={"x": 2}),
        # No id anywhere: one made from the index; no arguments: an empty object.
        ToolCall(id="call_3", name="no_args", arguments="{}", parsed_arguments={}),
        # Invalid JSON is kept as sent, unparsed.
        ToolCall(id="call_5", name="broken", arguments='{"unclosed', parsed_arguments=None),
    )


def test_the_last_usage_and_finish_reason_win_and_absent_ones_change_nothing() -> None:
    early = Usage(prompt_tokens=9, completion_tokens=2, total_tokens=11)
    final = Usage(prompt_tokens=9, completion_tokens=10, total_tokens=19, cached_tokens=4)
    reply = assemble(
        [
            StreamChunk(text="a", usage=early),
            StreamChunk(text="b", finish_reason="length"),
            StreamChunk(finish_reason="stop", usage=final),
            StreamChunk(text="", usage=None, finish_reason=None),
        ],
        request_id=None,
        provider=None,
    )
    assert (reply.usage, reply.finish_reason) == (final, "stop")


def test_the_first_id_and_model_win() -> None:
    """Azure opens with an empty id and model (a prompt-filter chunk); a proxy may name another
    model later: the first real values are the reply's."""
    reply = assemble(
        [
            StreamChunk(id="", model=""),
            StreamChunk(text="x", id="chatcmpl-1", model="gpt-4o-2024-08-06"),
            StreamChunk(text="y", id="chatcmpl-2", model="gpt-4o"),
        ],
        request_id=None,
        provider=None,
    )
    assert (reply.id, reply.model) == ("chatcmpl-1", "gpt-4o-2024-08-06")


def test_reasoning_blocks_close_at_a_signature_and_a_redacted_piece_is_one_block() -> None:
    reply = assemble(
        [
            StreamChunk(reasoning="First "),
            StreamChunk(reasoning="step."),
            StreamChunk(reasoning_signature="SIG1"),
            StreamChunk(reasoning_redacted="opaque=="),
            StreamChunk(reasoning="Second."),
            StreamChunk(reasoning_signature="SIG2"),
            StreamChunk(reasoning="Left open."),
            StreamChunk(text="Answer."),
        ],
        request_id=None,
        provider=None,
    )
    assert reply.reasoning_blocks == (
        ReasoningBlock(text="First step.", signature="SIG1"),
        ReasoningBlock(redacted="opaque=="),
        ReasoningBlock(text="Second.", signature="SIG2"),
        ReasoningBlock(text="Left open."),
    )
    assert reply.reasoning == "First step.Second.Left open."
    assert reply.reasoning_signature == "SIG2"  # the last one
    assert reply.text == "Answer."


def test_no_chunks_make_an_empty_reply() -> None:
    assert assemble([], request_id="r", provider="p") == ChatResponse(
        text="", request_id="r", provider="p"
    )


def test_partial_is_the_text_so_far() -> None:
    assembler = ReplyAssembler()
    assert assembler.partial == ""
    for piece in ["Once ", "upon ", "a time"]:
        assembler.add(StreamChunk(text=piece, reasoning="ignored"))
    assert assembler.partial == "Once upon a time"


@pytest.mark.parametrize(
    ("chunk", "content"),
    [
        (StreamChunk(role="assistant", id="x", model="m"), False),
        (StreamChunk(text=""), False),
        (StreamChunk(text="a"), True),
        (StreamChunk(reasoning="r"), True),
        (StreamChunk(refusal="no"), True),
        (StreamChunk(tool_calls=(ToolCallDelta(index=0, name="f"),)), True),
        (StreamChunk(finish_reason="stop"), True),
        (StreamChunk(usage=Usage(total_tokens=1)), True),
    ],
)
def test_a_role_only_opener_carries_no_content(chunk: StreamChunk, content: bool) -> None:
    assert carries_content(chunk) is content


def test_chunk_of_round_trips_a_full_reply() -> None:
    reply = ChatResponse(
        text="Calling.",
        finish_reason="tool_calls",
        usage=Usage(prompt_tokens=5, completion_tokens=7, total_tokens=12, reasoning_tokens=3),
        tool_calls=(
            ToolCall(id="c1", name="f", arguments='{"a": 1}', parsed_arguments={"a": 1}),
            ToolCall(id="c2", name="g", arguments="{}", parsed_arguments={}),
        ),
        model="m-2025",
        id="resp-1",
        request_id="req_9",
        reasoning="Because.",
        reasoning_signature="sig",
        refusal="partly",
        provider="p",
    )
    chunk = chunk_of(reply)
    assert carries_content(chunk)
    assert assemble([chunk], request_id="req_9", provider="p") == reply
