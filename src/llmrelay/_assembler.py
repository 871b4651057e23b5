"""The pure reply assembler: `StreamChunk`s in, the final `ChatResponse` out.

No I/O and no provider knowledge: the same chunks always give the same reply, so that
`stream.final() == chat()` for the same reply is tested per wire family without HTTP.
Rules: text, reasoning and refusal deltas are joined in order; reasoning blocks follow
`_reasoning.ReasoningAssembler` (a signature closes a block, a redacted piece is one); tool-call fragments are grouped
by `index` (the first fragment with an id or name gives it; arguments are joined and parsed
once, at the end); the last finish reason and the last usage win; id and model come from the
first chunk that has them.
"""

from __future__ import annotations

from typing import Any

from ._reasoning import ReasoningAssembler
from ._types import ChatResponse, StreamChunk, ToolCall, ToolCallDelta
from .providers._common import make_tool_call


def carries_content(chunk: StreamChunk) -> bool:
    """Whether a chunk tells the caller anything (a role-only opener does not)."""
    return bool(
        chunk.text
        or chunk.reasoning
        or chunk.tool_calls
        or chunk.refusal
        or chunk.finish_reason
        or chunk.usage
    )


def chunk_of(reply: ChatResponse) -> StreamChunk:
    """A whole reply as the one chunk of its stream (a server that ignored `stream`)."""
    calls = tuple(
        ToolCallDelta(index=i, id=c.id, name=c.name, arguments=c.arguments)
        for i, c in enumerate(reply.tool_calls)
    )
    return StreamChunk(
        text=reply.text,
        reasoning=reply.reasoning,
        tool_calls=calls or None,
        finish_reason=reply.finish_reason,
        usage=reply.usage,
        role="assistant",
        refusal=reply.refusal,
        id=reply.id,
        model=reply.model,
        reasoning_signature=reply.reasoning_signature,
        raw=reply.raw,
    )


class ReplyAssembler:
    """Accumulates chunks (`add`) and builds the reply (`reply`)."""

    __slots__ = (
        "finish_reason",
        "id",
        "model",
        "reasoning",
        "refusal",
        "signature",
        "text",
        "thinking",
        "tools",
        "usage",
    )

    def __init__(self) -> None:
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.signature: str | None = None
        self.thinking = ReasoningAssembler()  # the reasoning blocks, each with its signature
        self.refusal: list[str] = []
        self.tools: dict[int, list[Any]] = {}  # index -> [id, name, [argument pieces]]
        self.finish_reason: str | None = None
        self.usage: Any = None
        self.id: str | None = None
        self.model: str | None = None

    @property
    def partial(self) -> str:
        """The text so far. Joined once and kept joined, so that reading it after every chunk
        (a UI showing `stream.text`) costs the new pieces only, not the whole text each time."""
        text = self.text
        if len(text) > 1:
            text[:] = ["".join(text)]
        return text[0] if text else ""

    def add(self, chunk: StreamChunk) -> None:
        if chunk.text:
            self.text.append(chunk.text)
        if chunk.reasoning:
            self.reasoning.append(chunk.reasoning)
        if chunk.reasoning_signature:
            self.signature = chunk.reasoning_signature
        if chunk.reasoning or chunk.reasoning_signature or chunk.reasoning_redacted:
            self.thinking.add(chunk.reasoning, chunk.reasoning_signature, chunk.reasoning_redacted)
        if chunk.refusal:
            self.refusal.append(chunk.refusal)
        if chunk.tool_calls:
            for delta in chunk.tool_calls:
                entry = self.tools.get(delta.index)
                if entry is None:
                    entry = self.tools[delta.index] = [delta.id, delta.name, []]
                else:
                    entry[0] = entry[0] or delta.id
                    entry[1] = entry[1] or delta.name
                if delta.arguments:
                    entry[2].append(delta.arguments)
        if chunk.finish_reason:
            self.finish_reason = chunk.finish_reason
        if chunk.usage is not None:
            self.usage = chunk.usage
        if self.id is None and chunk.id:
            self.id = chunk.id
        if self.model is None and chunk.model:
            self.model = chunk.model

    def reply(self, *, request_id: str | None, provider: str | None) -> ChatResponse:
        return ChatResponse(
            text=self.partial,
            finish_reason=self.finish_reason,
            usage=self.usage,
            tool_calls=self._tool_calls(),
            model=self.model,
            id=self.id,
            request_id=request_id,
            reasoning="".join(self.reasoning) or None,
            reasoning_signature=self.signature,
            reasoning_blocks=self.thinking.blocks(),
            refusal="".join(self.refusal) or None,
            provider=provider,
        )

    def _tool_calls(self) -> tuple[ToolCall, ...]:
        return tuple(
            make_tool_call(entry[0] or f"call_{index}", entry[1] or "", "".join(entry[2]))
            for index, entry in sorted(self.tools.items())
        )


def assemble(chunks: list[StreamChunk] | tuple[StreamChunk, ...], **reply: Any) -> ChatResponse:
    """The reply a sequence of chunks makes (`reply` takes `request_id` and `provider`)."""
    assembler = ReplyAssembler()
    for chunk in chunks:
        assembler.add(chunk)
    return assembler.reply(**reply)
