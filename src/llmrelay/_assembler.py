"""The pure reply assembler: `StreamChunk`s in, the final `ChatResponse` out.

No I/O and no provider knowledge: the same chunks always give the same reply, so that
`stream.final() == chat()` for the same reply is tested per wire family without HTTP.
Rules: text, reasoning and refusal deltas are joined in order; reasoning blocks follow
`_reasoning.ReasoningAssembler` (a signature closes a block, a redacted piece is one); tool-call fragments are grouped
by `index` (the first fragment with an id or name gives it; arguments are joined and parsed
once, at the end); the last finish reason and the last usage win; id and model come from the
first chunk that has them; token log probabilities are joined in order (`None` unless some
chunk had them). All of that holds per choice: chunks are grouped by their `index`
(choice 0 makes the reply's own fields, every choice is in `choices`), in whatever order the
choices interleave; usage, id and model are the whole reply's.
"""

from __future__ import annotations

from typing import Any

from ._reasoning import ReasoningAssembler
from ._types import ChatResponse, Choice, StreamChunk, TokenLogprob, ToolCall, ToolCallDelta
from .providers._common import make_tool_call, reply_of_choices


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
    """A whole single-choice reply as the one chunk of its stream (see `chunks_of`)."""
    return chunks_of(reply)[0]


def chunks_of(reply: ChatResponse) -> list[StreamChunk]:
    """A whole reply as the chunks of its stream, one per choice (a server that ignored
    `stream`): the first carries the reply's usage, id and model."""
    out = []
    for position, choice in enumerate(reply.choices):
        calls = tuple(
            ToolCallDelta(index=i, id=c.id, name=c.name, arguments=c.arguments)
            for i, c in enumerate(choice.tool_calls)
        )
        first = position == 0
        out.append(
            StreamChunk(
                text=choice.text,
                reasoning=choice.reasoning,
                tool_calls=calls or None,
                finish_reason=choice.finish_reason,
                usage=reply.usage if first else None,
                role="assistant",
                refusal=choice.refusal,
                id=reply.id,
                model=reply.model,
                reasoning_signature=choice.reasoning_signature,
                raw=reply.raw if first else None,
                index=choice.index,
                logprobs=choice.logprobs,
            )
        )
    return out


class ChoiceParts:
    """The pieces of one choice received so far."""

    __slots__ = (
        "finish_reason",
        "logprobs",
        "reasoning",
        "refusal",
        "signature",
        "text",
        "thinking",
        "tools",
    )

    def __init__(self) -> None:
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.signature: str | None = None
        self.thinking = ReasoningAssembler()  # the reasoning blocks, each with its signature
        self.refusal: list[str] = []
        self.tools: dict[int, list[Any]] = {}  # index -> [id, name, [argument pieces]]
        self.finish_reason: str | None = None
        self.logprobs: list[TokenLogprob] | None = None  # None: no chunk had any

    @property
    def partial(self) -> str:
        """The text so far. Joined once and kept joined, so that reading it after every chunk
        (a UI showing `stream.text`) costs the new pieces only, not the whole text each time."""
        text = self.text
        if len(text) > 1:
            text[:] = ["".join(text)]
        return text[0] if text else ""

    def choice(self, index: int) -> Choice:
        return Choice(
            index=index,
            text=self.partial,
            finish_reason=self.finish_reason,
            tool_calls=self.tool_calls(),
            reasoning="".join(self.reasoning) or None,
            reasoning_signature=self.signature,
            reasoning_blocks=self.thinking.blocks(),
            refusal="".join(self.refusal) or None,
            logprobs=None if self.logprobs is None else tuple(self.logprobs),
        )

    def tool_calls(self) -> tuple[ToolCall, ...]:
        return tuple(
            make_tool_call(entry[0] or f"call_{index}", entry[1] or "", "".join(entry[2]))
            for index, entry in sorted(self.tools.items())
        )


class ReplyAssembler(ChoiceParts):
    """Accumulates chunks (`add`) and builds the reply (`reply`).

    Each choice (a chunk's `index`) is assembled apart, whatever order the chunks of several
    choices arrive in; usage, id and model belong to the whole reply. The assembler holds
    choice 0's pieces itself (`partial` is its text), so the usual single-choice stream costs
    one check per chunk for choices.
    """

    __slots__ = ("id", "model", "others", "usage")

    def __init__(self) -> None:
        super().__init__()
        self.others: dict[int, ChoiceParts] | None = None  # choices other than 0, by index
        self.usage: Any = None
        self.id: str | None = None
        self.model: str | None = None

    def add(self, chunk: StreamChunk) -> None:
        # The per-chunk hot path: the fields of one choice are updated inline.
        parts = self if not chunk.index else self._other(chunk.index)
        if chunk.text:
            parts.text.append(chunk.text)
        if chunk.reasoning:
            parts.reasoning.append(chunk.reasoning)
        if chunk.reasoning_signature:
            parts.signature = chunk.reasoning_signature
        if chunk.reasoning or chunk.reasoning_signature or chunk.reasoning_redacted:
            parts.thinking.add(chunk.reasoning, chunk.reasoning_signature, chunk.reasoning_redacted)
        if chunk.refusal:
            parts.refusal.append(chunk.refusal)
        if chunk.tool_calls:
            tools = parts.tools
            for delta in chunk.tool_calls:
                entry = tools.get(delta.index)
                if entry is None:
                    entry = tools[delta.index] = [delta.id, delta.name, []]
                else:
                    entry[0] = entry[0] or delta.id
                    entry[1] = entry[1] or delta.name
                if delta.arguments:
                    entry[2].append(delta.arguments)
        if chunk.finish_reason:
            parts.finish_reason = chunk.finish_reason
        if chunk.logprobs is not None:
            if parts.logprobs is None:
                parts.logprobs = []
            parts.logprobs.extend(chunk.logprobs)
        if chunk.usage is not None:
            self.usage = chunk.usage
        if self.id is None and chunk.id:
            self.id = chunk.id
        if self.model is None and chunk.model:
            self.model = chunk.model

    def _other(self, index: int) -> ChoiceParts:
        others = self.others
        if others is None:
            others = self.others = {}
        parts = others.get(index)
        if parts is None:
            parts = others[index] = ChoiceParts()
        return parts

    def reply(self, *, request_id: str | None, provider: str | None) -> ChatResponse:
        others = self.others or {}
        return reply_of_choices(
            [self.choice(0), *(others[index].choice(index) for index in others)],
            usage=self.usage,
            model=self.model,
            id=self.id,
            request_id=request_id,
            provider=provider,
        )


def assemble(chunks: list[StreamChunk] | tuple[StreamChunk, ...], **reply: Any) -> ChatResponse:
    """The reply a sequence of chunks makes (`reply` takes `request_id` and `provider`)."""
    assembler = ReplyAssembler()
    for chunk in chunks:
        assembler.add(chunk)
    return assembler.reply(**reply)
