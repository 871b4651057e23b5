"""Gemini response side: candidates, usage, finish reasons, errors, and the stream parser.

A streamed reply is a series of whole `GenerateContentResponse` objects, each holding only the
new parts, so the same `read_parts` serves `parse_chat` and the stream. Tool calls arrive
whole; both paths number them in order and give an id-less call the id ``call_<n>``, so a
stream's `final()` equals `chat()` for the same reply.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from .._exceptions import APIStatusError, make_status_error
from .._types import Choice, StreamChunk, ToolCall, ToolCallDelta, Usage, make_stream_chunk
from ._common import as_int, bad_response, load_event, make_tool_call
from ._logprobs import gemini_logprobs

if TYPE_CHECKING:
    from .._sse import ServerSentEvent
    from ._base import Provider

_FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "BLOCKLIST": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
}

# google.rpc.Code names and the HTTP status each one stands for (for errors in a 200 body).
_RPC_STATUS = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ABORTED": 409,
    "ALREADY_EXISTS": 409,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INTERNAL": 500,
    "DATA_LOSS": 500,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}
_RETRY_INFO = "google.rpc.RetryInfo"
# A protobuf Duration in JSON: decimal seconds with an "s" suffix ("38s", "1.5s").
_DURATION = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)s\s*")


def finish_reason(raw: Any, has_calls: bool) -> str | None:
    if not isinstance(raw, str) or not raw:
        return None
    if raw == "STOP" and has_calls:
        return "tool_calls"
    return _FINISH_REASONS.get(raw, raw.lower())


def parse_usage(data: Any) -> Usage | None:
    if not isinstance(data, dict):
        return None
    thoughts = as_int(data.get("thoughtsTokenCount"))
    prompt = as_int(data.get("promptTokenCount")) + as_int(data.get("toolUsePromptTokenCount"))
    completion = as_int(data.get("candidatesTokenCount")) + thoughts
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=as_int(data.get("totalTokenCount")) or prompt + completion,
        cached_tokens=as_int(data.get("cachedContentTokenCount")),
        reasoning_tokens=thoughts,
    )


# -- errors -------------------------------------------------------------------------------------


def retry_delay(details: Any) -> float | None:
    """Seconds from a ``google.rpc.RetryInfo`` entry of an error's ``details`` list."""
    if not isinstance(details, list):
        return None
    for item in details:
        if not isinstance(item, dict) or not str(item.get("@type", "")).endswith(_RETRY_INFO):
            continue
        delay = item.get("retryDelay")
        if isinstance(delay, str):
            match = _DURATION.fullmatch(delay)
            if match:
                return float(match.group(1))
        elif isinstance(delay, dict):  # the proto form {seconds, nanos}
            seconds = delay.get("seconds", 0)
            nanos = delay.get("nanos", 0)
            try:
                value = float(seconds) + float(nanos) / 1e9
            except (TypeError, ValueError):
                continue
            if value >= 0:
                return value
    return None


def error_fields(body: Any) -> tuple[str, str | None, float | None, int | None]:
    """(message, status name, retry delay, numeric code) from ``{error: {...}}``; a list body
    (the non-SSE stream form) is read from its first element."""
    if isinstance(body, list) and body:
        body = body[0]
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        message = err.get("message")
        status = err.get("status")
        code = err.get("code")
        return (
            str(message) if message is not None else json.dumps(err)[:500],
            str(status) if status else None,
            retry_delay(err.get("details")),
            code if isinstance(code, int) and not isinstance(code, bool) else None,
        )
    if isinstance(err, str):
        return err, None, None, None
    if isinstance(body, str | bytes):
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        return text[:500] or "no error message", None, None, None
    if isinstance(body, dict) and body:
        return json.dumps(body)[:500], None, None, None
    return "no error message", None, None, None


def status_error(provider: Provider, data: Any, request_id: str | None) -> APIStatusError:
    """The typed error for an error object that arrived in a 200 body or a stream event."""
    message, status, delay, code = error_fields(data)
    if code is None or not 400 <= code < 600:
        code = _RPC_STATUS.get(status or "", 500)
    return make_status_error(
        code,
        message,
        provider=provider.name,
        request_id=request_id,
        body=data,
        retry_after=delay,
        code=status,
    )


def check_reply(provider: Provider, data: Any, request_id: str | None) -> list[Any]:
    """The candidates of a reply, after raising for an error object or a blocked prompt."""
    if not isinstance(data, dict):
        raise bad_response(provider.name, "the body is not a JSON object", data)
    if "error" in data:
        raise status_error(provider, data, request_id)
    candidates = data.get("candidates")
    if candidates:
        if not isinstance(candidates, list) or not isinstance(candidates[0], dict):
            raise bad_response(provider.name, "'candidates' is not a list of objects", data)
        return candidates
    feedback = data.get("promptFeedback")
    reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
    if reason:
        raise make_status_error(
            400,
            f"prompt blocked: {reason}",
            provider=provider.name,
            request_id=request_id,
            body=data,
            code="prompt_blocked",
        )
    return []


# -- parts --------------------------------------------------------------------------------------


class Parts:
    """What one candidate's parts hold. `calls` are (id, name, JSON arguments)."""

    __slots__ = ("calls", "reasoning", "signature", "text")

    def __init__(self) -> None:
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.calls: list[tuple[str, str, str]] = []
        self.signature: str | None = None


def read_parts(provider: Provider, candidate: dict[str, Any], first_call: int) -> Parts:
    """Sort a candidate's parts; id-less calls are numbered from `first_call`."""
    out = Parts()
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    if not isinstance(parts, list):
        return out
    for part in parts:
        if not isinstance(part, dict):
            raise bad_response(provider.name, "a content part is not an object", candidate)
        signature = part.get("thoughtSignature")
        if isinstance(signature, str) and signature:
            out.signature = signature
        call = part.get("functionCall")
        if isinstance(call, dict):
            name = call.get("name")
            if not isinstance(name, str):
                raise bad_response(provider.name, "a functionCall has no name", candidate)
            call_id = call.get("id")
            if not isinstance(call_id, str) or not call_id:
                call_id = f"call_{first_call + len(out.calls)}"
            out.calls.append(
                (call_id, name, json.dumps(call.get("args") or {}, ensure_ascii=False))
            )
            continue
        text = part.get("text")
        if isinstance(text, str) and text:
            (out.reasoning if part.get("thought") is True else out.text).append(text)
    return out


def tool_calls(parts: Parts) -> tuple[ToolCall, ...]:
    return tuple(make_tool_call(call_id, name, args) for call_id, name, args in parts.calls)


def candidate_index(candidate: dict[str, Any], position: int) -> int:
    """A candidate's ``index``; JSON leaves out a zero, and a left-out index is its position."""
    index = candidate.get("index")
    return index if type(index) is int and index >= 0 else position


def read_choice(provider: Provider, candidate: Any, position: int, data: Any) -> Choice:
    """One candidate of a whole reply as a `Choice` (id-less tool calls numbered from 0)."""
    if not isinstance(candidate, dict):
        raise bad_response(provider.name, "a candidate is not an object", data)
    parts = read_parts(provider, candidate, 0)
    return Choice(
        index=candidate_index(candidate, position),
        text="".join(parts.text),
        finish_reason=finish_reason(candidate.get("finishReason"), bool(parts.calls)),
        tool_calls=tool_calls(parts),
        reasoning="".join(parts.reasoning) or None,
        reasoning_signature=parts.signature,
        logprobs=gemini_logprobs(candidate.get("logprobsResult")),
    )


# -- streaming ----------------------------------------------------------------------------------


class StreamParser:
    """Gemini SSE: no event names and no ``[DONE]``; the reply is complete once every candidate
    seen carried a ``finishReason``. Usage is cumulative, so every chunk's usage replaces the
    last. With several candidates (``candidateCount``) an event may carry each: it gives a
    tuple of chunks, one per candidate with something new, the first with the usage."""

    __slots__ = ("_calls", "_ended", "_provider", "_seen")

    done = False  # no terminal event: the end of the body ends the stream

    def __init__(self, provider: Provider) -> None:
        self._provider = provider
        self._calls: dict[int, int] = {}  # tool calls so far, by candidate
        self._seen: set[int] = set()  # candidates seen
        self._ended: set[int] = set()  # ... and those that finished

    def finished(self) -> bool:
        return bool(self._ended) and self._seen <= self._ended

    def parse(self, event: ServerSentEvent) -> StreamChunk | tuple[StreamChunk, ...] | None:
        data = event.data
        if not data or data == "[DONE]":  # "[DONE]": a proxy that adds the OpenAI terminator
            return None
        obj = load_event(self._provider.name, data)
        candidates = check_reply(self._provider, obj, None)
        raw_usage = obj.get("usageMetadata")
        usage = parse_usage(raw_usage) if raw_usage is not None else None
        response_id = obj.get("responseId")
        model = obj.get("modelVersion")
        if not isinstance(response_id, str):
            response_id = None
        if not isinstance(model, str):
            model = None
        chunks = []
        for position, candidate in enumerate(candidates):
            chunk = self._candidate(candidate, position, obj, usage, response_id, model)
            if chunk is not None:
                chunks.append(chunk)
                usage = None  # the usage goes with the first chunk only
        if not chunks:
            if usage is None:
                return None
            return make_stream_chunk(
                "", None, None, None, usage, None, None, response_id, model, None, obj
            )
        return chunks[0] if len(chunks) == 1 else tuple(chunks)

    def _candidate(
        self,
        candidate: Any,
        position: int,
        obj: Any,
        usage: Usage | None,
        response_id: str | None,
        model: str | None,
    ) -> StreamChunk | None:
        """The chunk of one candidate of an event (`None` when it carries nothing)."""
        if not isinstance(candidate, dict):
            raise bad_response(self._provider.name, "a candidate is not an object", obj)
        index = candidate_index(candidate, position)
        self._seen.add(index)
        calls = self._calls.get(index, 0)
        parts = read_parts(self._provider, candidate, calls)
        text = "".join(parts.text)
        reasoning = "".join(parts.reasoning) or None
        signature = parts.signature
        deltas = None
        if parts.calls:
            self._calls[index] = calls + len(parts.calls)
            deltas = tuple(
                ToolCallDelta(index=calls + i, id=call_id, name=name, arguments=args)
                for i, (call_id, name, args) in enumerate(parts.calls)
            )
        finish = None
        raw_finish = candidate.get("finishReason")
        if raw_finish:
            finish = finish_reason(raw_finish, index in self._calls)
            if finish is not None:
                self._ended.add(index)
        logprobs = gemini_logprobs(candidate.get("logprobsResult"))
        if not (text or reasoning or deltas or finish or usage or signature or logprobs):
            return None
        return make_stream_chunk(
            text,
            reasoning,
            deltas,
            finish,
            usage,
            None,
            None,
            response_id,
            model,
            signature,
            obj,
            None,
            index,
            logprobs,
        )
