"""The unified value types every provider translates to and from.

All are frozen, slotted, keyword-only dataclasses: cheap to build on the hot path, safe to share.
Messages travel internally as OpenAI-shaped dicts (the lingua franca of the wire families);
`Message` is the typed way to write one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

Role = Literal["system", "developer", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCall:
    """A complete tool call the model asked for.

    A function call (``type == "function"``) has `arguments`, the JSON text as sent, and
    `parsed_arguments`, it decoded (`None` when the model produced invalid JSON). A call of an
    OpenAI custom tool (``type == "custom"``) has `input`, the free-form text the model wrote
    for the tool `name`; its `arguments` stay ``"{}"`` and `parsed_arguments` `None`.
    `to_dict()` gives the OpenAI wire shape of either kind, so a conversation can be replayed.
    """

    id: str
    name: str
    arguments: str = "{}"
    parsed_arguments: Any = None
    type: str = "function"
    input: str | None = None

    def parse_arguments(self, into: Any = None) -> Any:
        """The arguments decoded: a dict, or an instance of `into` (a pydantic model, a
        dataclass or a TypedDict) checked against its schema. Arguments that are not JSON, or
        do not fit `into`, raise `OutputValidationError` (with the raw text)."""
        from ._tools import parse_arguments

        return parse_arguments(self, into)

    def to_dict(self) -> dict[str, Any]:
        if self.type == "custom":
            return {
                "id": self.id,
                "type": "custom",
                "custom": {"name": self.name, "input": self.input or ""},
            }
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCallDelta:
    """A fragment of a streamed tool call. Fragments with the same `index` belong together:
    the first carries `id` and `name`, later ones slices of `arguments`."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReasoningBlock:
    """One block of a reply's reasoning, kept apart so it can be sent back exactly as it came.

    An Anthropic ``thinking`` block is `text` with its own `signature`; a ``redacted_thinking``
    block is only its opaque `redacted` data (the encrypted reasoning, to send back untouched).
    Providers without blocks give their whole reasoning as one block.
    """

    text: str = ""
    signature: str | None = None
    redacted: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The plain dict that travels in a message dict (see `REASONING_BLOCKS_KEY`)."""
        out: dict[str, Any] = {"text": self.text}
        if self.signature is not None:
            out["signature"] = self.signature
        if self.redacted is not None:
            out["redacted"] = self.redacted
        return out


# The message-dict key under which `Message.to_dict()` puts an assistant turn's reasoning
# blocks (a list of `ReasoningBlock.to_dict()` dicts). Internal to llmrelay: the Anthropic
# request builder reads it, every other wire family leaves it out.
REASONING_BLOCKS_KEY = "reasoning_blocks"


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """One conversation turn. `content` is text or a list of parts (``{"type": "text", ...}``,
    ``{"type": "image_url", ...}``). Assistant turns may carry `tool_calls` and `reasoning`
    (with `reasoning_signature`, which some providers need replayed) or, to replay a reply
    exactly, its `reasoning_blocks` (`ChatResponse.message` fills all three); tool turns carry
    `tool_call_id`."""

    role: Role
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    reasoning: str | None = None
    reasoning_signature: str | None = None
    reasoning_blocks: tuple[ReasoningBlock, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The OpenAI-shaped dict llmrelay uses internally."""
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.name is not None:
            out["name"] = self.name
        if self.tool_calls:
            out["tool_calls"] = [call.to_dict() for call in self.tool_calls]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        if self.reasoning is not None:
            out["reasoning_content"] = self.reasoning
        if self.reasoning_signature is not None:
            out["reasoning_signature"] = self.reasoning_signature
        if self.reasoning_blocks:
            out[REASONING_BLOCKS_KEY] = [block.to_dict() for block in self.reasoning_blocks]
        return out


# -- messages written as dicts, typed ------------------------------------------------------------
# A dict literal passed to `chat()` is checked against these, so a misspelt key or role is a
# type error. The keys a message may leave out sit in a `total=False` subclass: with postponed
# annotations Python 3.11 cannot tell `NotRequired[...]` apart at run time, and the request
# check (`_request._check_message`) reads each role's keys from these very classes.


class _ImageURLKeys(TypedDict):
    url: str


class ImageURL(_ImageURLKeys, total=False):
    """An image by ``http(s)://`` URL or ``data:<media type>;base64,...`` URL; `mime_type`
    tells Gemini the type of a file URL whose name does not."""

    detail: Literal["auto", "low", "high"]
    mime_type: str


class _TextPartKeys(TypedDict):
    type: Literal["text"]
    text: str


class TextPart(_TextPartKeys, total=False):
    """``{"type": "text", "text": ...}``; `cache_control` marks an Anthropic cache breakpoint."""

    cache_control: Mapping[str, Any]


class _ImagePartKeys(TypedDict):
    type: Literal["image_url"]
    image_url: ImageURL


class ImagePart(_ImagePartKeys, total=False):
    """``{"type": "image_url", "image_url": {"url": ...}}``."""

    cache_control: Mapping[str, Any]


class InputAudio(TypedDict):
    data: str  # base64
    format: Literal["wav", "mp3"]


class AudioPart(TypedDict):
    """``{"type": "input_audio", "input_audio": {"data": ..., "format": "wav"}}`` (OpenAI's
    audio models, Gemini)."""

    type: Literal["input_audio"]
    input_audio: InputAudio


ContentPart = TextPart | ImagePart | AudioPart


class ToolCallFunction(TypedDict):
    name: str
    arguments: str  # the JSON text of the arguments


class ToolCallDict(TypedDict):
    """A function call in an assistant message, as `ToolCall.to_dict()` gives it (an OpenAI
    custom tool's call has another shape: replay it as a `Message`)."""

    id: str
    type: Literal["function"]
    function: ToolCallFunction


class ReasoningBlockDict(TypedDict, total=False):
    """The shape `ReasoningBlock.to_dict()` gives."""

    text: str
    signature: str | None
    redacted: str | None


class _SystemKeys(TypedDict):
    role: Literal["system"]
    content: str | Sequence[TextPart]


class SystemMessage(_SystemKeys, total=False):
    name: str


class _DeveloperKeys(TypedDict):
    role: Literal["developer"]
    content: str | Sequence[TextPart]


class DeveloperMessage(_DeveloperKeys, total=False):
    name: str


class _UserKeys(TypedDict):
    role: Literal["user"]
    content: str | Sequence[ContentPart]


class UserMessage(_UserKeys, total=False):
    name: str


class _AssistantKeys(TypedDict):
    role: Literal["assistant"]


class AssistantMessage(_AssistantKeys, total=False):
    """A model turn. `reasoning_content`/`reasoning_signature`/`reasoning_blocks` replay its
    reasoning (`Message.to_dict()` fills them; each family sends back what it takes), `prefix`
    (DeepSeek, Mistral) and `partial` (Moonshot) ask the model to continue this turn."""

    content: str | Sequence[TextPart] | None
    name: str
    tool_calls: Sequence[ToolCallDict]
    refusal: str | None
    reasoning_content: str | None
    reasoning_signature: str | None
    reasoning_blocks: Sequence[ReasoningBlockDict | ReasoningBlock]
    prefix: bool
    partial: bool


class _ToolKeys(TypedDict):
    role: Literal["tool"]
    content: str | Sequence[ContentPart]
    tool_call_id: str


class ToolMessage(_ToolKeys, total=False):
    """A tool's result. `name` is the function's (Gemini needs it when no earlier assistant
    turn in the list made the call); `is_error` marks a failed call (Anthropic)."""

    name: str
    is_error: bool


MessageDict = SystemMessage | DeveloperMessage | UserMessage | AssistantMessage | ToolMessage


@dataclass(frozen=True, slots=True, kw_only=True)
class Usage:
    """Token counts of one reply (or running totals). `prompt_tokens` includes cached tokens."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenLogprob:
    """One token of a reply with its log probability (natural log; 0 is certain).

    `top` holds the most likely tokens at that position, best first, when the call asked for
    ``top_logprobs``: each a `TokenLogprob` whose own `top` is empty. OpenAI's list includes
    the chosen token itself, as Gemini's does.
    """

    token: str
    logprob: float
    top: tuple[TokenLogprob, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Choice:
    """One of a reply's choices: a call with ``n=3`` gets three, told apart by `index`.

    The fields mean what the `ChatResponse` fields of the same names mean; a reply's own
    `text`, `finish_reason`, `tool_calls` and reasoning are those of its first choice.
    """

    index: int
    text: str
    finish_reason: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    reasoning: str | None = None
    reasoning_signature: str | None = None
    reasoning_blocks: tuple[ReasoningBlock, ...] = ()
    refusal: str | None = None
    logprobs: tuple[TokenLogprob, ...] | None = None

    def __post_init__(self) -> None:
        if not self.reasoning_blocks and (self.reasoning or self.reasoning_signature):
            block = ReasoningBlock(text=self.reasoning or "", signature=self.reasoning_signature)
            object.__setattr__(self, "reasoning_blocks", (block,))

    @property
    def message(self) -> Message:
        """This choice as an assistant `Message`, ready to append to the conversation."""
        return Message(
            role="assistant",
            content=self.text,
            tool_calls=self.tool_calls,
            reasoning=self.reasoning,
            reasoning_signature=self.reasoning_signature,
            reasoning_blocks=self.reasoning_blocks,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatResponse:
    """A complete reply: `text`, why it stopped, what it cost, and any tool calls.

    `reasoning` is all reasoning text joined and `reasoning_signature` the last signature;
    `reasoning_blocks` keeps each block apart, in order, with its own signature (Anthropic
    sends several, some redacted). A reply made with `reasoning` but no blocks gets that
    reasoning as its one block, so streamed and whole replies compare equal.

    `choices` holds every choice, in `index` order (several when the call gave ``n``); the
    reply's own fields are its first choice's: ``choices[0]`` is always made from them (with
    the index it was given), so ``reply.text == reply.choices[0].text`` holds however the
    reply was built. Usage, id and model belong to the whole reply.

    `parsed` is the reply's value when the call gave ``response_format=`` a type or a schema
    (an instance of that type; a dict or list for a schema), else `None`; it stays `None`
    when the model refused (see `refusal`).

    `logprobs` holds a `TokenLogprob` per token of the text when the call gave
    ``logprobs=True`` (OpenAI, Gemini), else `None`.
    """

    text: str
    finish_reason: str | None = None
    usage: Usage | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    model: str | None = None
    id: str | None = None
    request_id: str | None = None
    reasoning: str | None = None
    reasoning_signature: str | None = None
    reasoning_blocks: tuple[ReasoningBlock, ...] = ()
    refusal: str | None = None
    provider: str | None = None
    choices: tuple[Choice, ...] = field(default=(), repr=False)
    raw: Any = field(default=None, repr=False, compare=False)
    parsed: Any = field(default=None, repr=False)
    logprobs: tuple[TokenLogprob, ...] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.reasoning_blocks and (self.reasoning or self.reasoning_signature):
            block = ReasoningBlock(text=self.reasoning or "", signature=self.reasoning_signature)
            object.__setattr__(self, "reasoning_blocks", (block,))
        choices = self.choices
        if type(choices) is tuple and choices and _is_head(choices[0], self):
            return  # already made from these fields (the adapters' `reply_of_choices`)
        first = Choice(
            index=choices[0].index if choices else 0,
            text=self.text,
            finish_reason=self.finish_reason,
            tool_calls=self.tool_calls,
            reasoning=self.reasoning,
            reasoning_signature=self.reasoning_signature,
            reasoning_blocks=self.reasoning_blocks,
            refusal=self.refusal,
            logprobs=self.logprobs,
        )
        object.__setattr__(self, "choices", (first, *choices[1:]))

    @property
    def message(self) -> Message:
        """This reply as an assistant `Message`, ready to append to the conversation."""
        return Message(
            role="assistant",
            content=self.text,
            tool_calls=self.tool_calls,
            reasoning=self.reasoning,
            reasoning_signature=self.reasoning_signature,
            reasoning_blocks=self.reasoning_blocks,
        )


def _is_head(choice: Choice, reply: ChatResponse) -> bool:
    """Whether `choice` holds the reply's own per-choice fields (the very same objects)."""
    return (
        choice.text is reply.text
        and choice.finish_reason is reply.finish_reason
        and choice.tool_calls is reply.tool_calls
        and choice.reasoning is reply.reasoning
        and choice.reasoning_signature is reply.reasoning_signature
        and choice.reasoning_blocks is reply.reasoning_blocks
        and choice.refusal is reply.refusal
        and choice.logprobs is reply.logprobs
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamChunk:
    """One streamed increment. `text` is the new text (may be ""); the other fields are `None`
    unless this chunk carries them.

    Reasoning arrives as `reasoning` text deltas, a `reasoning_signature` that closes the
    current reasoning block, and `reasoning_redacted`, one whole redacted block (Anthropic's
    ``redacted_thinking`` data).

    `index` is the choice the chunk belongs to: always 0 unless the call asked for several
    (``n``), when the chunks of every choice arrive in one stream, in the server's order.

    `logprobs` holds the `TokenLogprob`s of this chunk's tokens (``logprobs=True``), else `None`.
    """

    text: str = ""
    reasoning: str | None = None
    tool_calls: tuple[ToolCallDelta, ...] | None = None
    finish_reason: str | None = None
    usage: Usage | None = None
    role: str | None = None
    refusal: str | None = None
    id: str | None = None
    model: str | None = None
    reasoning_signature: str | None = None
    raw: Any = field(default=None, repr=False, compare=False)
    reasoning_redacted: str | None = None
    index: int = 0
    logprobs: tuple[TokenLogprob, ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EmbeddingResponse:
    """Vectors in input order."""

    vectors: list[list[float]]
    model: str | None = None
    usage: Usage | None = None
    request_id: str | None = None
    raw: Any = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelInfo:
    """One entry of a provider's model list."""

    id: str
    owned_by: str | None = None
    created: int | None = None
    raw: Any = field(default=None, repr=False, compare=False)


# Hot-path constructors. A frozen dataclass's __init__ sets each field through
# object.__setattr__ (~2 µs for a StreamChunk); setting the slots through their descriptors
# builds the very same frozen instance in ~0.8 µs. Used once per streamed chunk.
_new = object.__new__
(
    _set_text,
    _set_reasoning,
    _set_tool_calls,
    _set_finish_reason,
    _set_usage,
    _set_role,
    _set_refusal,
    _set_id,
    _set_model,
    _set_signature,
    _set_raw,
    _set_redacted,
    _set_index,
    _set_logprobs,
) = (StreamChunk.__dict__[name].__set__ for name in StreamChunk.__slots__)


assert StreamChunk.__slots__ == (
    "text",
    "reasoning",
    "tool_calls",
    "finish_reason",
    "usage",
    "role",
    "refusal",
    "id",
    "model",
    "reasoning_signature",
    "raw",
    "reasoning_redacted",
    "index",
    "logprobs",
), "make_stream_chunk must follow StreamChunk's fields"


def make_stream_chunk(
    text: str,
    reasoning: str | None,
    tool_calls: tuple[ToolCallDelta, ...] | None,
    finish_reason: str | None,
    usage: Usage | None,
    role: str | None,
    refusal: str | None,
    id: str | None,
    model: str | None,
    reasoning_signature: str | None,
    raw: Any,
    reasoning_redacted: str | None = None,
    index: int = 0,
    logprobs: tuple[TokenLogprob, ...] | None = None,
) -> StreamChunk:
    """`StreamChunk(...)` with every field given positionally, about 2.5× faster (the rarely
    set `reasoning_redacted` and `index` last, with defaults, so most call sites leave them
    out)."""
    chunk: StreamChunk = _new(StreamChunk)
    _set_text(chunk, text)
    _set_reasoning(chunk, reasoning)
    _set_tool_calls(chunk, tool_calls)
    _set_finish_reason(chunk, finish_reason)
    _set_usage(chunk, usage)
    _set_role(chunk, role)
    _set_refusal(chunk, refusal)
    _set_id(chunk, id)
    _set_model(chunk, model)
    _set_signature(chunk, reasoning_signature)
    _set_raw(chunk, raw)
    _set_redacted(chunk, reasoning_redacted)
    _set_index(chunk, index)
    _set_logprobs(chunk, logprobs)
    return chunk


(
    _put_text,
    _put_finish_reason,
    _put_usage,
    _put_tool_calls,
    _put_model,
    _put_id,
    _put_request_id,
    _put_reasoning,
    _put_signature,
    _put_blocks,
    _put_refusal,
    _put_provider,
    _put_choices,
    _put_raw,
    _put_parsed,
    _put_logprobs,
) = (ChatResponse.__dict__[name].__set__ for name in ChatResponse.__slots__)

assert ChatResponse.__slots__ == (
    "text",
    "finish_reason",
    "usage",
    "tool_calls",
    "model",
    "id",
    "request_id",
    "reasoning",
    "reasoning_signature",
    "reasoning_blocks",
    "refusal",
    "provider",
    "choices",
    "raw",
    "parsed",
    "logprobs",
), "reply_of_head must follow ChatResponse's fields"


def reply_of_head(
    choices: tuple[Choice, ...],
    usage: Usage | None,
    model: str | None,
    id: str | None,
    request_id: str | None,
    provider: str | None,
    raw: Any,
) -> ChatResponse:
    """`ChatResponse(...)` whose own per-choice fields are those of ``choices[0]``, as the
    adapters build a reply: the very instance the dataclass would give (that choice already has
    its reasoning block, so `__post_init__` would change nothing), ~2× faster. Once per reply."""
    head = choices[0]
    reply: ChatResponse = _new(ChatResponse)
    _put_text(reply, head.text)
    _put_finish_reason(reply, head.finish_reason)
    _put_usage(reply, usage)
    _put_tool_calls(reply, head.tool_calls)
    _put_model(reply, model)
    _put_id(reply, id)
    _put_request_id(reply, request_id)
    _put_reasoning(reply, head.reasoning)
    _put_signature(reply, head.reasoning_signature)
    _put_blocks(reply, head.reasoning_blocks)
    _put_refusal(reply, head.refusal)
    _put_provider(reply, provider)
    _put_choices(reply, choices)
    _put_raw(reply, raw)
    _put_parsed(reply, None)
    _put_logprobs(reply, head.logprobs)
    return reply
