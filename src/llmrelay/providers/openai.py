"""OpenAI Chat Completions wire format: OpenAI itself and every OpenAI-compatible service.

Preset options read here:
- ``max_tokens_field``: ``"max_completion_tokens"`` (OpenAI) or ``"max_tokens"`` (most others).
- ``replay_reasoning``: send an assistant turn's reasoning back as ``reasoning_content``
  (DeepSeek, Moonshot answer 400 to a tool-call turn without it).
- ``tool_call_id_style``: ``"mistral"`` rewrites replayed tool-call ids that are not 9
  alphanumerics, the same way in an assistant's ``tool_calls`` and in the tool result.
- ``strip_message_name``: drop ``messages[].name`` (Groq answers 400 to it).

Usage is read from ``usage``, else ``x_groq.usage`` (Groq), else ``choices[0].usage`` (Moonshot).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .._exceptions import make_status_error
from .._request import ChatRequest, WireRequest
from .._types import (
    ChatResponse,
    EmbeddingResponse,
    ModelInfo,
    StreamChunk,
    ToolCall,
    ToolCallDelta,
    Usage,
    make_stream_chunk,
)
from ._base import ErrorInfo, Provider
from ._common import as_int, bad_response, error_message, make_tool_call

if TYPE_CHECKING:
    from .._sse import ServerSentEvent

request_id_header = "x-request-id"

# Error `type`/`code` values that arrive inside a 200 stream, and the status they stand for.
_STREAM_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "rate_limit_error": 429,
    "rate_limit_exceeded": 429,
    "insufficient_quota": 429,
    "overloaded_error": 529,
    "overloaded": 529,
    "server_error": 500,
    "api_error": 500,
}


def auth_headers(provider: Provider, api_key: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {api_key}"} if api_key else {}


def _wire_messages(provider: Provider, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop llmrelay's replay-only keys unless this service wants reasoning sent back, and
    apply the preset's message quirks. The caller's dicts are never modified."""
    options = provider.options
    if options.get("tool_call_id_style") == "mistral" or options.get("strip_message_name"):
        return [_quirky_message(options, msg) for msg in messages]
    replay = options.get("replay_reasoning", False)
    out = messages
    for i, msg in enumerate(messages):
        if "reasoning_content" in msg or "reasoning_signature" in msg:
            if out is messages:
                out = list(messages)
            out[i] = _clean_reasoning(msg, replay)
    return out


def _clean_reasoning(msg: dict[str, Any], replay: bool) -> dict[str, Any]:
    clean = {k: v for k, v in msg.items() if k != "reasoning_signature"}
    if not replay:
        clean.pop("reasoning_content", None)
    return clean


def _quirky_message(options: Mapping[str, Any], msg: dict[str, Any]) -> dict[str, Any]:
    out = _clean_reasoning(msg, options.get("replay_reasoning", False))
    if options.get("strip_message_name"):
        out.pop("name", None)
    if options.get("tool_call_id_style") == "mistral":
        calls = out.get("tool_calls")
        if isinstance(calls, list):
            out["tool_calls"] = [
                {**call, "id": mistral_tool_call_id(call["id"])}
                if isinstance(call, dict) and isinstance(call.get("id"), str)
                else call
                for call in calls
            ]
        if isinstance(out.get("tool_call_id"), str):
            out["tool_call_id"] = mistral_tool_call_id(out["tool_call_id"])
    return out


_MISTRAL_ID = re.compile(r"[A-Za-z0-9]{9}")
_ALPHANUMERIC = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def mistral_tool_call_id(call_id: str) -> str:
    """A tool-call id Mistral accepts (exactly 9 of ``[A-Za-z0-9]``): valid ids pass unchanged,
    others map to a stable hash of themselves, so a call and its result still match."""
    if _MISTRAL_ID.fullmatch(call_id):
        return call_id
    number = int.from_bytes(hashlib.sha256(call_id.encode()).digest()[:8], "big")
    chars = []
    for _ in range(9):
        number, digit = divmod(number, len(_ALPHANUMERIC))
        chars.append(_ALPHANUMERIC[digit])
    return "".join(chars)


def build_chat(provider: Provider, request: ChatRequest) -> WireRequest:
    body: dict[str, Any] = {
        "model": request.model,
        "messages": _wire_messages(provider, request.messages),
    }
    params = request.params
    if params:
        body.update(params)
        if "max_tokens" in params:
            field = provider.options.get("max_tokens_field", "max_tokens")
            if field != "max_tokens":
                body[field] = body.pop("max_tokens")
    if request.stream:
        body["stream"] = True
        if provider.stream_usage:
            body["stream_options"] = {"include_usage": True}
    if request.extra_body:
        body.update(request.extra_body)
    return WireRequest(method="POST", path="chat/completions", json=body)


def parse_usage(data: Any) -> Usage | None:
    if not isinstance(data, dict):
        return None
    prompt = as_int(data.get("prompt_tokens"))
    completion = as_int(data.get("completion_tokens"))
    prompt_details = data.get("prompt_tokens_details")
    completion_details = data.get("completion_tokens_details")
    cached = as_int(prompt_details.get("cached_tokens")) if isinstance(prompt_details, dict) else 0
    if not cached:
        # DeepSeek, then Moonshot (`usage.cached_tokens`).
        cached = as_int(data.get("prompt_cache_hit_tokens")) or as_int(data.get("cached_tokens"))
    reasoning = (
        as_int(completion_details.get("reasoning_tokens"))
        if isinstance(completion_details, dict)
        else 0
    )
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=as_int(data.get("total_tokens")) or prompt + completion,
        cached_tokens=cached,
        reasoning_tokens=reasoning,
    )


def _raise_if_error(
    provider: Provider, data: dict[str, Any], request_id: str | None = None
) -> None:
    """Some services put an error object in an HTTP-200 body or stream event."""
    err = data.get("error")
    if err is None and data.get("object") == "error":  # vLLM
        err = data
    if err is None:
        return
    message, code = error_message({"error": err})
    status = err.get("code") if isinstance(err, dict) else None
    if not isinstance(status, int) or isinstance(status, bool) or not 400 <= status < 600:
        # Any field may name the kind: OpenAI's rate-limit errors have type "tokens" or
        # "requests" and code "rate_limit_exceeded".
        names = [err.get(k) for k in ("type", "code", "status")] if isinstance(err, dict) else []
        status = next(
            (
                _STREAM_ERROR_STATUS[n]
                for n in names
                if isinstance(n, str) and n in _STREAM_ERROR_STATUS
            ),
            500,
        )
    raise make_status_error(
        status, message, provider=provider.name, request_id=request_id, body=data, code=code
    )


def parse_chat(provider: Provider, data: Any, request_id: str | None) -> ChatResponse:
    if not isinstance(data, dict):
        raise bad_response(provider.name, "the body is not a JSON object", data)
    _raise_if_error(provider, data, request_id)
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise bad_response(provider.name, "no 'choices' in the reply", data)
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, dict):
        raise bad_response(provider.name, "choices[0] has no 'message'", data)
    tool_calls: tuple[ToolCall, ...] = ()
    raw_calls = message.get("tool_calls")
    if raw_calls:
        try:
            tool_calls = tuple(
                make_tool_call(c["id"], c["function"]["name"], c["function"].get("arguments") or "")
                for c in raw_calls
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise bad_response(provider.name, f"malformed tool_calls ({exc!r})", data) from None
    content = message.get("content")
    return ChatResponse(
        text=content if isinstance(content, str) else "",
        finish_reason=choice.get("finish_reason"),
        usage=parse_usage(data.get("usage") or _groq_usage(data)),
        tool_calls=tool_calls,
        model=data.get("model"),
        id=data.get("id"),
        request_id=request_id,
        reasoning=message.get("reasoning_content") or message.get("reasoning"),
        refusal=message.get("refusal"),
        provider=provider.name,
        raw=data,
    )


class StreamParser:
    """OpenAI chunks: deltas in `choices[0]`, usage in a last chunk (or in `choices[0]`)."""

    __slots__ = ("_done", "_finish_seen", "_provider")

    def __init__(self, provider: Provider) -> None:
        self._provider = provider
        self._done = False
        self._finish_seen = False

    def finished(self) -> bool:
        return self._done or self._finish_seen

    def parse(self, event: ServerSentEvent) -> StreamChunk | None:
        data = event.data
        if data == "[DONE]":
            self._done = True
            return None
        if not data:
            return None
        try:
            obj = json.loads(data)
        except ValueError:
            raise bad_response(self._provider.name, "a stream event is not JSON", data) from None
        if not isinstance(obj, dict):
            raise bad_response(self._provider.name, "a stream event is not a JSON object", obj)
        if "error" in obj or obj.get("object") == "error":
            _raise_if_error(self._provider, obj)
        choices = obj.get("choices")
        raw_usage = obj.get("usage")
        if raw_usage is None:
            raw_usage = _groq_usage(obj)
        if not choices:
            if raw_usage is None:
                return None  # e.g. Azure's prompt_filter_results chunk
            return StreamChunk(
                usage=parse_usage(raw_usage), id=obj.get("id"), model=obj.get("model"), raw=obj
            )
        try:
            choice = choices[0]
            delta = choice.get("delta") or {}
            finish = choice.get("finish_reason")
            if raw_usage is None:
                raw_usage = choice.get("usage")  # Moonshot puts it here
            calls = delta.get("tool_calls")
            content = delta.get("content")
            chunk = make_stream_chunk(  # the hot path: one per streamed event
                content if isinstance(content, str) else "",
                delta.get("reasoning_content") or delta.get("reasoning"),
                _tool_deltas(calls) if calls else None,
                finish,
                parse_usage(raw_usage) if raw_usage is not None else None,
                delta.get("role"),
                delta.get("refusal"),
                obj.get("id"),
                obj.get("model"),
                None,
                obj,
            )
        except (AttributeError, KeyError, TypeError):  # e.g. a choice or delta that is no object
            raise bad_response(
                self._provider.name, "a stream event has a malformed 'choices' entry", obj
            ) from None
        if finish:
            self._finish_seen = True
        return chunk


def _groq_usage(obj: dict[str, Any]) -> Any:
    """Groq has sent a stream's usage in ``x_groq.usage`` on the last chunk."""
    extra = obj.get("x_groq")
    return extra.get("usage") if isinstance(extra, dict) else None


def _tool_deltas(calls: list[dict[str, Any]]) -> tuple[ToolCallDelta, ...]:
    out = []
    for position, call in enumerate(calls):
        fn = call.get("function") or {}
        out.append(
            ToolCallDelta(
                index=call.get("index", position),
                id=call.get("id"),
                name=fn.get("name"),
                arguments=fn.get("arguments") or "",
            )
        )
    return tuple(out)


def new_stream_parser(provider: Provider, request: ChatRequest) -> StreamParser:
    return StreamParser(provider)


def build_embed(
    provider: Provider, model: str, inputs: list[str], extra_body: Mapping[str, Any] | None
) -> WireRequest:
    body: dict[str, Any] = {"model": model, "input": inputs}
    if extra_body:
        body.update(extra_body)
    return WireRequest(method="POST", path="embeddings", json=body)


def parse_embed(provider: Provider, data: Any, request_id: str | None) -> EmbeddingResponse:
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise bad_response(provider.name, "no 'data' list in the embeddings reply", data)
    try:
        items = sorted(data["data"], key=lambda item: item.get("index", 0))
        vectors = [list(item["embedding"]) for item in items]
    except (KeyError, TypeError, AttributeError) as exc:
        raise bad_response(provider.name, f"malformed embedding ({exc!r})", data) from None
    return EmbeddingResponse(
        vectors=vectors,
        model=data.get("model"),
        usage=parse_usage(data.get("usage")),
        request_id=request_id,
        raw=data,
    )


def build_models(provider: Provider) -> WireRequest:
    return WireRequest(method="GET", path="models")


def parse_models(provider: Provider, data: Any) -> list[ModelInfo]:
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise bad_response(provider.name, "no 'data' list in the models reply", data)
    out = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise bad_response(provider.name, "a model entry has no 'id'", data)
        created = item.get("created")
        out.append(
            ModelInfo(
                id=item["id"],
                owned_by=item.get("owned_by"),
                created=created if isinstance(created, int) else None,
                raw=item,
            )
        )
    return out


def parse_error(provider: Provider, status_code: int, body: Any) -> ErrorInfo:
    message, code = error_message(body)
    return ErrorInfo(message=message, code=code)
