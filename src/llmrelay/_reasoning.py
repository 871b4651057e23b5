"""Reasoning blocks from streamed pieces: pure, no I/O, one object per reply.

A reply's reasoning streams as three kinds of piece (the `StreamChunk` fields of the same names):

1. ``reasoning`` — a text delta: it is added to the current block (opened by the first delta
   after the previous block closed).
2. ``reasoning_signature`` — closes the current block with that signature. A signature with no
   text before it closes an empty block (a ``thinking`` block whose text the provider left
   out is still sent back, signature and all).
3. ``reasoning_redacted`` — one whole redacted block. Text still open is closed first, unsigned,
   so the blocks keep the order they arrived in.

Within one call to `add`, the pieces apply in that order: text, then signature, then the
redacted block. Text left open at the end is a last, unsigned block (a reply cut short, or a
provider that signs nothing).

Anthropic's non-streamed reply is fed through the same rules, block by block, so a streamed and a
whole reply give equal blocks::

    blocks = ReasoningAssembler()
    blocks.add("Step one.", None, None)
    blocks.add(None, "SIG1", None)
    blocks.add(None, None, "opaque")
    blocks.blocks()  # (ReasoningBlock(text="Step one.", signature="SIG1"),
                     #  ReasoningBlock(redacted="opaque"))
"""

from __future__ import annotations

from ._types import ReasoningBlock

__all__ = ["ReasoningAssembler"]


class ReasoningAssembler:
    """Collects reasoning pieces, in order, into `ReasoningBlock`s."""

    __slots__ = ("_closed", "_open")

    def __init__(self) -> None:
        self._closed: list[ReasoningBlock] = []
        self._open: list[str] = []  # text deltas of the block not yet closed

    def add(self, reasoning: str | None, signature: str | None, redacted: str | None) -> None:
        """One chunk's reasoning pieces; empty strings count as absent."""
        if reasoning:
            self._open.append(reasoning)
        if signature:
            self._closed.append(ReasoningBlock(text="".join(self._open), signature=signature))
            self._open.clear()
        if redacted:
            self._close_unsigned()
            self._closed.append(ReasoningBlock(redacted=redacted))

    def blocks(self) -> tuple[ReasoningBlock, ...]:
        """The blocks so far, in order; open text is shown as a last, unsigned block."""
        if self._open:
            return (*self._closed, ReasoningBlock(text="".join(self._open)))
        return tuple(self._closed)

    def _close_unsigned(self) -> None:
        if self._open:
            self._closed.append(ReasoningBlock(text="".join(self._open)))
            self._open.clear()
