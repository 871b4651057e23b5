"""Anthropic Messages, the reply side: usage, stop reasons, error events and the SSE parser.

A streamed reply is a sequence of named events (see the Messages streaming docs):

1. ``message_start`` carries the message id, model and the input-side usage;
2. each content block is ``content_block_start`` → ``content_block_delta``… → ``content_block_stop``
   (deltas: ``text_delta``, ``input_json_delta``, ``thinking_delta``, ``signature_delta``,
   ``citations_delta``);
3. ``message_delta`` carries the stop reason and *cumulative* usage, then ``message_stop`` ends it.

``ping`` may come anywhere, ``error`` may follow the HTTP 200, and unknown event types are
ignored. A stream that ends without ``message_stop`` was cut short.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, NoReturn

from .._exceptions import make_status_error
from .._types import StreamChunk, ToolCallDelta, Usage
from ._common import as_int, bad_response, error_message

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

# Error `type` → the HTTP status it is documented with; used for errors that arrive with a 200
# (an `event: error` in a stream, or an error object as a 200 body).
ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "conflict_error": 409,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
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
    status = ERROR_STATUS.get(code or "", 500)
    raise make_status_error(
        status,
        message,
        provider=provider.name,
        request_id=request_id or _str_or_none(body.get("request_id")),
        body=body,
        code=code,
    )


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


class StreamParser:
    """Turns Anthropic's named events into `StreamChunk`s.

    Tool-use blocks are numbered 0, 1, … in order of appearance: that number is the
    `ToolCallDelta.index`, so fragments of one call are joined, whatever other blocks
    (text, thinking) sit between them.
    """

    __slots__ = ("_done", "_id", "_model", "_next_tool", "_provider", "_tool_index", "_usage")

    def __init__(self, provider: Provider) -> None:
        self._provider = provider
        self._done = False
        self._tool_index: dict[int, int] = {}  # content block index -> tool-call index
        self._next_tool = 0
        self._usage: dict[str, Any] = {}
        self._id: str | None = None
        self._model: str | None = None

    def finished(self) -> bool:
        return self._done

    def parse(self, event: ServerSentEvent) -> StreamChunk | None:
        if not event.data:
            return None
        try:
            obj = json.loads(event.data)
        except ValueError:
            raise bad_response(
                self._provider.name, "a stream event is not JSON", event.data
            ) from None
        if not isinstance(obj, dict):
            raise bad_response(self._provider.name, "a stream event is not a JSON object", obj)
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
            self._done = True
            return None
        if kind == "error":
            raise_error_object(self._provider, obj, None)
        return None  # ping, content_block_stop, and event types added later

    def _message_start(self, obj: dict[str, Any]) -> StreamChunk:
        message = obj.get("message")
        if not isinstance(message, dict):
            raise bad_response(self._provider.name, "message_start has no 'message'", obj)
        usage = message.get("usage")
        if isinstance(usage, dict):
            self._usage.update(usage)
        self._id = _str_or_none(message.get("id"))
        self._model = _str_or_none(message.get("model"))
        return StreamChunk(role="assistant", id=self._id, model=self._model, raw=obj)

    def _block_start(self, obj: dict[str, Any]) -> StreamChunk | None:
        block = obj.get("content_block")
        if not isinstance(block, dict):
            raise bad_response(self._provider.name, "content_block_start has no block", obj)
        kind = block.get("type")
        if kind == "text":
            text = block.get("text")
            return StreamChunk(text=text, raw=obj) if isinstance(text, str) and text else None
        if kind == "tool_use":
            index = self._next_tool
            self._next_tool += 1
            self._tool_index[_block_index(obj)] = index
            initial = block.get("input")
            arguments = json.dumps(initial, ensure_ascii=False) if initial else ""
            delta = ToolCallDelta(
                index=index,
                id=_str_or_none(block.get("id")),
                name=_str_or_none(block.get("name")),
                arguments=arguments,
            )
            return StreamChunk(tool_calls=(delta,), raw=obj)
        if kind == "thinking":
            thinking = block.get("thinking")
            signature = block.get("signature")
            if not thinking and not signature:
                return None
            return StreamChunk(
                reasoning=thinking if isinstance(thinking, str) and thinking else None,
                reasoning_signature=signature if isinstance(signature, str) and signature else None,
                raw=obj,
            )
        return None  # redacted_thinking, server tools, …: kept out of the unified reply

    def _delta(self, obj: dict[str, Any]) -> StreamChunk | None:
        delta = obj.get("delta")
        if not isinstance(delta, dict):
            raise bad_response(self._provider.name, "content_block_delta has no 'delta'", obj)
        kind = delta.get("type")
        if kind == "text_delta":
            text = delta.get("text")
            return StreamChunk(text=text, raw=obj) if isinstance(text, str) and text else None
        if kind == "input_json_delta":
            partial = delta.get("partial_json")
            if not isinstance(partial, str) or not partial:
                return None
            index = self._tool_index.get(_block_index(obj))
            if index is None:
                raise bad_response(
                    self._provider.name, "tool input arrived for a block that never started", obj
                )
            return StreamChunk(tool_calls=(ToolCallDelta(index=index, arguments=partial),), raw=obj)
        if kind == "thinking_delta":
            thinking = delta.get("thinking")
            if not isinstance(thinking, str) or not thinking:
                return None
            return StreamChunk(reasoning=thinking, raw=obj)
        if kind == "signature_delta":
            signature = delta.get("signature")
            if not isinstance(signature, str) or not signature:
                return None
            return StreamChunk(reasoning_signature=signature, raw=obj)
        return None  # citations_delta and later kinds

    def _message_delta(self, obj: dict[str, Any]) -> StreamChunk:
        delta = obj.get("delta")
        stop = delta.get("stop_reason") if isinstance(delta, dict) else None
        usage = obj.get("usage")
        if isinstance(usage, dict):
            # Cumulative counts: later values replace earlier ones, absent ones are kept.
            self._usage.update({k: v for k, v in usage.items() if v is not None})
        return StreamChunk(
            finish_reason=finish_reason(stop),
            usage=parse_usage(self._usage) if self._usage else None,
            id=self._id,
            model=self._model,
            raw=obj,
        )


def _block_index(obj: dict[str, Any]) -> int:
    return as_int(obj.get("index"))
