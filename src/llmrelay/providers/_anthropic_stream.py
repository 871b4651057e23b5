"""Anthropic Messages, the reply side: usage, stop reasons, error events and the SSE parser.

A streamed reply is a sequence of named events (see the Messages streaming docs):

1. ``message_start`` carries the message id, model and the input-side usage;
2. each content block is ``content_block_start`` → ``content_block_delta``… → ``content_block_stop``
   (deltas: ``text_delta``, ``input_json_delta``, ``thinking_delta``, ``signature_delta``,
   ``citations_delta``); a ``redacted_thinking`` block comes whole in its start event;
3. ``message_delta`` carries the stop reason and *cumulative* usage, then ``message_stop`` ends it.

``ping`` may come anywhere, ``error`` may follow the HTTP 200, and unknown event types are
ignored. A stream that ends without ``message_stop`` was cut short; events after it are ignored.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, NoReturn

from .._exceptions import make_status_error
from .._types import StreamChunk, ToolCallDelta, Usage, make_stream_chunk
from ._common import ERROR_TYPE_STATUS, as_int, bad_response, error_message, load_event, str_or_none

if TYPE_CHECKING:
    from .._sse import ServerSentEvent
    from ._base import Provider

# Anthropic's `stop_reason` → the unified `finish_reason`; other values pass through unchanged
# (`pause_turn`, `model_context_window_exceeded`, …).
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def finish_reason(stop_reason: Any) -> str | None:
    if not isinstance(stop_reason, str):
        return None
    return FINISH_REASONS.get(stop_reason, stop_reason)


def parse_usage(data: Any) -> Usage | None:
    """Anthropic counts cache reads and writes apart from `input_tokens`; the unified
    `prompt_tokens` is all three together."""
    if not isinstance(data, dict):
        return None
    cache_write = as_int(data.get("cache_creation_input_tokens"))
    cache_read = as_int(data.get("cache_read_input_tokens"))
    prompt = as_int(data.get("input_tokens")) + cache_write + cache_read
    completion = as_int(data.get("output_tokens"))
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        cached_tokens=cache_read,
        cache_write_tokens=cache_write,
    )


def error_details(body: Any) -> tuple[str, str | None]:
    """(message, error type) of an Anthropic error body ``{type: "error", error: {...}}``.

    A ``details.error_code`` (e.g. ``enforced_spend_limit_reached`` on a 429) is added to the
    message, since it tells the user that waiting will not help.
    """
    message, code = error_message(body)
    err = body.get("error") if isinstance(body, dict) else None
    details = err.get("details") if isinstance(err, dict) else None
    if isinstance(details, dict) and isinstance(details.get("error_code"), str):
        message = f"{message} ({details['error_code']})"
    return message, code


def raise_error_object(
    provider: Provider, body: dict[str, Any], request_id: str | None
) -> NoReturn:
    """Raise the typed error for an error object that came with an HTTP 200."""
    message, code = error_details(body)
    status = ERROR_TYPE_STATUS.get(code or "", 500)
    raise make_status_error(
        status,
        message,
        provider=provider.name,
        request_id=request_id or str_or_none(body.get("request_id")),
        body=body,
        code=code,
    )


class StreamParser:
    """Turns Anthropic's named events into `StreamChunk`s.

    Tool-use blocks are numbered 0, 1, … in order of appearance: that number is the
    `ToolCallDelta.index`, so fragments of one call are joined, whatever other blocks
    (text, thinking) sit between them. The message id and model, sent once in
    ``message_start``, are repeated on the chunks that carry the role and the finish.

    Thinking becomes `reasoning` deltas closed by the block's `reasoning_signature`; a
    ``redacted_thinking`` block becomes one chunk with `reasoning_redacted` (see `_reasoning`).
    `done` turns true at ``message_stop``; anything after it is ignored.
    """

    __slots__ = ("_id", "_model", "_next_tool", "_provider", "_tool_index", "_usage", "done")

    def __init__(self, provider: Provider) -> None:
        self._provider = provider
        self.done = False
        self._tool_index: dict[int, int] = {}  # content block index -> tool-call index
        self._next_tool = 0
        self._usage: dict[str, Any] = {}
        self._id: str | None = None
        self._model: str | None = None

    def finished(self) -> bool:
        return self.done

    def parse(self, event: ServerSentEvent) -> StreamChunk | None:
        if self.done or not event.data:
            return None
        obj = load_event(self._provider.name, event.data)
        kind = obj.get("type")
        if not isinstance(kind, str):
            kind = event.event
        if kind == "content_block_delta":  # the common case first
            return self._delta(obj)
        if kind == "content_block_start":
            return self._block_start(obj)
        if kind == "message_start":
            return self._message_start(obj)
        if kind == "message_delta":
            return self._message_delta(obj)
        if kind == "message_stop":
            self.done = True
            return None
        if kind == "error":
            raise_error_object(self._provider, obj, None)
        return None  # ping, content_block_stop, and event types added later

    def _delta(self, obj: dict[str, Any]) -> StreamChunk | None:
        delta = obj.get("delta")
        if not isinstance(delta, dict):
            raise bad_response(self._provider.name, "content_block_delta has no 'delta'", obj)
        kind = delta.get("type")
        if kind == "text_delta":
            text = delta.get("text")
            if not isinstance(text, str) or not text:
                return None
            return make_stream_chunk(
                text, None, None, None, None, None, None, None, None, None, obj
            )
        if kind == "input_json_delta":
            partial = delta.get("partial_json")
            if not isinstance(partial, str) or not partial:
                return None
            index = self._tool_index.get(as_int(obj.get("index")))
            if index is None:
                raise bad_response(
                    self._provider.name, "tool input arrived for a block that never started", obj
                )
            calls = (ToolCallDelta(index=index, arguments=partial),)
            return make_stream_chunk("", None, calls, None, None, None, None, None, None, None, obj)
        if kind == "thinking_delta":
            thinking = delta.get("thinking")
            if not isinstance(thinking, str) or not thinking:
                return None
            return make_stream_chunk(
                "", thinking, None, None, None, None, None, None, None, None, obj
            )
        if kind == "signature_delta":
            signature = delta.get("signature")
            if not isinstance(signature, str) or not signature:
                return None
            return make_stream_chunk(
                "", None, None, None, None, None, None, None, None, signature, obj
            )
        return None  # citations_delta and later kinds

    def _block_start(self, obj: dict[str, Any]) -> StreamChunk | None:
        block = obj.get("content_block")
        if not isinstance(block, dict):
            raise bad_response(self._provider.name, "content_block_start has no block", obj)
        kind = block.get("type")
        if kind == "text":
            text = block.get("text")
            if not isinstance(text, str) or not text:
                return None
            return make_stream_chunk(
                text, None, None, None, None, None, None, None, None, None, obj
            )
        if kind == "tool_use":
            index = self._tool_index[as_int(obj.get("index"))] = self._next_tool
            self._next_tool += 1
            initial = block.get("input")
            delta = ToolCallDelta(
                index=index,
                id=str_or_none(block.get("id")),
                name=str_or_none(block.get("name")),
                arguments=json.dumps(initial, ensure_ascii=False) if initial else "",
            )
            return make_stream_chunk(
                "", None, (delta,), None, None, None, None, None, None, None, obj
            )
        if kind == "thinking":
            thinking = str_or_none(block.get("thinking")) or None
            signature = str_or_none(block.get("signature")) or None
            if thinking is None and signature is None:
                return None
            return make_stream_chunk(
                "", thinking, None, None, None, None, None, None, None, signature, obj
            )
        if kind == "redacted_thinking":
            redacted = block.get("data")
            if not isinstance(redacted, str) or not redacted:
                raise bad_response(
                    self._provider.name, "a redacted_thinking block has no 'data'", obj
                )
            return make_stream_chunk(
                "", None, None, None, None, None, None, None, None, None, obj, redacted
            )
        return None  # server tools, …: kept out of the unified reply

    def _message_start(self, obj: dict[str, Any]) -> StreamChunk:
        message = obj.get("message")
        if not isinstance(message, dict):
            raise bad_response(self._provider.name, "message_start has no 'message'", obj)
        usage = message.get("usage")
        if isinstance(usage, dict):
            self._usage.update(usage)
        self._id = str_or_none(message.get("id"))
        self._model = str_or_none(message.get("model"))
        return make_stream_chunk(
            "", None, None, None, None, "assistant", None, self._id, self._model, None, obj
        )

    def _message_delta(self, obj: dict[str, Any]) -> StreamChunk:
        delta = obj.get("delta")
        stop = delta.get("stop_reason") if isinstance(delta, dict) else None
        usage = obj.get("usage")
        if isinstance(usage, dict):
            # Cumulative counts: later values replace earlier ones, absent ones are kept.
            self._usage.update({k: v for k, v in usage.items() if v is not None})
        return make_stream_chunk(
            "",
            None,
            None,
            finish_reason(stop),
            parse_usage(self._usage) if self._usage else None,
            None,
            None,
            self._id,
            self._model,
            None,
            obj,
        )
