"""Reasoning blocks: the pure assembler's rules (see `_reasoning.py`), and how the value types
carry the blocks."""

from __future__ import annotations

import pytest

from llmrelay import ChatResponse, Message, ReasoningBlock, StreamChunk
from llmrelay._reasoning import ReasoningAssembler
from llmrelay._types import make_stream_chunk

Piece = tuple[str | None, str | None, str | None]  # (reasoning, signature, redacted)


@pytest.mark.parametrize(
    ("pieces", "blocks"),
    [
        ([], ()),
        # Text deltas join; a signature closes the block.
        (
            [("a", None, None), ("b", None, None), (None, "S1", None)],
            (ReasoningBlock(text="ab", signature="S1"),),
        ),
        # Each block keeps its own signature.
        (
            [("a", None, None), (None, "S1", None), ("b", None, None), (None, "S2", None)],
            (ReasoningBlock(text="a", signature="S1"), ReasoningBlock(text="b", signature="S2")),
        ),
        # Text and signature in one chunk: the text belongs to the block it closes.
        ([("a", "S1", None)], (ReasoningBlock(text="a", signature="S1"),)),
        # A signature with no text closes an empty block.
        ([(None, "S1", None)], (ReasoningBlock(text="", signature="S1"),)),
        # A redacted block is whole; open text is closed (unsigned) before it, keeping order.
        (
            [("a", None, None), (None, None, "R"), ("b", None, None)],
            (ReasoningBlock(text="a"), ReasoningBlock(redacted="R"), ReasoningBlock(text="b")),
        ),
        (
            [(None, None, "R1"), (None, None, "R2")],
            (ReasoningBlock(redacted="R1"), ReasoningBlock(redacted="R2")),
        ),
        # Within one call: text, then signature, then the redacted block.
        (
            [("a", "S1", "R")],
            (ReasoningBlock(text="a", signature="S1"), ReasoningBlock(redacted="R")),
        ),
        # Empty strings count as absent.
        ([("", "", ""), ("a", None, None)], (ReasoningBlock(text="a"),)),
        # Text left open at the end is a last, unsigned block.
        (
            [(None, "S1", None), ("tail", None, None)],
            (ReasoningBlock(text="", signature="S1"), ReasoningBlock(text="tail")),
        ),
    ],
    ids=[
        "nothing",
        "deltas-then-signature",
        "two-signed",
        "same-chunk",
        "signature-only",
        "redacted-closes-open-text",
        "two-redacted",
        "one-call-order",
        "empty-strings",
        "open-tail",
    ],
)
def test_assembler_rules(pieces: list[Piece], blocks: tuple[ReasoningBlock, ...]) -> None:
    assembler = ReasoningAssembler()
    for piece in pieces:
        assembler.add(*piece)
    assert assembler.blocks() == blocks
    assert assembler.blocks() == blocks  # reading does not change the state


def test_blocks_can_be_read_while_text_is_still_open() -> None:
    assembler = ReasoningAssembler()
    assembler.add("a", None, None)
    assert assembler.blocks() == (ReasoningBlock(text="a"),)
    assembler.add("b", "S", None)
    assert assembler.blocks() == (ReasoningBlock(text="ab", signature="S"),)


def test_a_reply_with_reasoning_but_no_blocks_has_it_as_one_block() -> None:
    # Providers without blocks (OpenAI-compatible reasoning, Gemini thoughts) fill only
    # `reasoning`/`reasoning_signature`; a stream of the same reply assembles the same block.
    reply = ChatResponse(text="x", reasoning="think", reasoning_signature="S")
    assert reply.reasoning_blocks == (ReasoningBlock(text="think", signature="S"),)
    assert ChatResponse(text="x").reasoning_blocks == ()
    given = (ReasoningBlock(redacted="R"),)
    assert ChatResponse(text="x", reasoning="t", reasoning_blocks=given).reasoning_blocks == given


def test_message_carries_blocks_into_its_dict() -> None:
    blocks = (ReasoningBlock(text="t", signature="S"), ReasoningBlock(redacted="R"))
    message = ChatResponse(text="x", reasoning="t", reasoning_blocks=blocks).message
    assert message.reasoning_blocks == blocks
    assert message.to_dict()["reasoning_blocks"] == [
        {"text": "t", "signature": "S"},
        {"text": "", "redacted": "R"},
    ]
    assert "reasoning_blocks" not in Message(role="assistant", content="x").to_dict()


def test_make_stream_chunk_leaves_reasoning_redacted_unset_by_default() -> None:
    args = ("", None, None, None, None, None, None, None, None, None, None)
    assert make_stream_chunk(*args) == StreamChunk()
    assert make_stream_chunk(*args, "R") == StreamChunk(reasoning_redacted="R")
