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
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .._exceptions import make_status_error
from .._request import ChatRequest, WireRequest
from .._types import (
    REASONING_BLOCKS_KEY,
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
from ._common import (
    ERROR_TYPE_STATUS,
    arguments_text,
    as_int,
    bad_response,
    error_message,
    load_event,
    make_tool_call,
    model_entries,
    str_or_none,
    vector,
)

if TYPE_CHECKING:
    from .._sse import ServerSentEvent

request_id_header = "x-request-id"

# Message keys llmrelay uses to replay reasoning to other families; never sent here.
_REPLAY_ONLY = frozenset({"reasoning_signature", REASONING_BLOCKS_KEY})


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
        if "reasoning_content" in msg or not _REPLAY_ONLY.isdisjoint(msg):
            if out is messages:
                out = list(messages)
            out[i] = _clean_reasoning(msg, replay)
    return out


def _clean_reasoning(msg: dict[str, Any], replay: bool) -> dict[str, Any]:
    clean = {k: v for k, v in msg.items() if k not in _REPLAY_ONLY}
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
            (ERROR_TYPE_STATUS[n] for n in names if isinstance(n, str) and n in ERROR_TYPE_STATUS),
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
    raw_calls = message.get("tool_calls")
    content = message.get("content")
    return ChatResponse(
        text=content if isinstance(content, str) else "",
        finish_reason=str_or_none(choice.get("finish_reason")),
        usage=parse_usage(data.get("usage") or _groq_usage(data)),
        tool_calls=_tool_calls(provider, raw_calls, data) if raw_calls else (),
        model=str_or_none(data.get("model")),
        id=str_or_none(data.get("id")),
        request_id=request_id,
        reasoning=_reasoning(message),
        refusal=str_or_none(message.get("refusal")),
        provider=provider.name,
        raw=data,
    )


def _reasoning(fields: dict[str, Any]) -> str | None:
    """``reasoning_content`` (DeepSeek, Moonshot, Qwen...) or ``reasoning`` (vLLM, OpenRouter)."""
    text = fields.get("reasoning_content") or fields.get("reasoning")
    return text if isinstance(text, str) else None


def _tool_calls(provider: Provider, calls: Any, data: Any) -> tuple[ToolCall, ...]:
    """A message's complete tool calls. An id-less call is named ``call_<n>``, as a stream's
    `final()` names it, so both give the same reply."""
    if not isinstance(calls, list):
        raise bad_response(provider.name, "'tool_calls' is not a list", data)
    out = []
    for position, call in enumerate(calls):
        fn = call.get("function") if isinstance(call, dict) else None
        name = fn.get("name") if isinstance(fn, dict) else None
        arguments = arguments_text(fn.get("arguments")) if isinstance(fn, dict) else None
        if not isinstance(name, str) or arguments is None:
            raise bad_response(provider.name, "a tool call has no function name or arguments", data)
        call_id = call.get("id")
        if not isinstance(call_id, str) or not call_id:
            call_id = f"call_{position}"
        out.append(make_tool_call(call_id, name, arguments))
    return tuple(out)


class StreamParser:
    """OpenAI chunks: deltas in `choices[0]`, usage in a last chunk (or in `choices[0]`).
    `done` turns true at ``data: [DONE]``, the terminator (the stream reads no further)."""

    __slots__ = ("_finish_seen", "_provider", "done")

    def __init__(self, provider: Provider) -> None:
        self._provider = provider
        self.done = False
        self._finish_seen = False

    def finished(self) -> bool:
        return self.done or self._finish_seen

    def parse(self, event: ServerSentEvent) -> StreamChunk | None:
        data = event.data
        if data == "[DONE]":
            self.done = True
            return None
        if not data:
            return None
        obj = load_event(self._provider.name, data)
        if "error" in obj or obj.get("object") == "error":
            _raise_if_error(self._provider, obj)
        choices = obj.get("choices")
        raw_usage = obj.get("usage")
        if raw_usage is None and "x_groq" in obj:
            raw_usage = _groq_usage(obj)
        chunk_id = obj.get("id")
        model = obj.get("model")
        if not choices:
            if raw_usage is None:
                return None  # e.g. Azure's prompt_filter_results chunk
            return make_stream_chunk(
                "",
                None,
                None,
                None,
                parse_usage(raw_usage),
                None,
                None,
                chunk_id if isinstance(chunk_id, str) else None,
                model if isinstance(model, str) else None,
                None,
                obj,
            )
        try:
            choice = choices[0]
            delta = choice.get("delta") or {}
            finish = choice.get("finish_reason")
            if raw_usage is None:
                raw_usage = choice.get("usage")  # Moonshot puts it here
            calls = delta.get("tool_calls")
            content = delta.get("content")
            role = delta.get("role")
            refusal = delta.get("refusal")
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        except (AttributeError, KeyError, TypeError):  # e.g. a choice or delta that is no object
            raise bad_response(
                self._provider.name, "a stream event has a malformed 'choices' entry", obj
            ) from None
        if not isinstance(finish, str):
            finish = None
        elif finish:
            self._finish_seen = True
        # The hot path: one chunk per streamed event, every field given positionally.
        return make_stream_chunk(
            content if isinstance(content, str) else "",
            reasoning if isinstance(reasoning, str) else None,
            self._tool_deltas(calls, obj) if calls else None,
            finish,
            parse_usage(raw_usage) if raw_usage is not None else None,
            role if isinstance(role, str) else None,
            refusal if isinstance(refusal, str) else None,
            chunk_id if isinstance(chunk_id, str) else None,
            model if isinstance(model, str) else None,
            None,
            obj,
        )

    def _tool_deltas(self, calls: Any, obj: Any) -> tuple[ToolCallDelta, ...]:
        """Fragments are told apart by ``index``; a service that leaves it out sends each call
        whole, so its position in the list stands in."""
        if not isinstance(calls, list):
            raise bad_response(self._provider.name, "'tool_calls' in a delta is not a list", obj)
        out = []
        for position, call in enumerate(calls):
            fn = (call.get("function") or {}) if isinstance(call, dict) else None
            arguments = arguments_text(fn.get("arguments")) if isinstance(fn, dict) else None
            if fn is None or arguments is None:
                raise bad_response(self._provider.name, "a tool-call delta is malformed", obj)
            index = call.get("index")
            out.append(
                ToolCallDelta(
                    index=index if type(index) is int else position,
                    id=str_or_none(call.get("id")),
                    name=str_or_none(fn.get("name")),
                    arguments=arguments,
                )
            )
        return tuple(out)


def _groq_usage(obj: dict[str, Any]) -> Any:
    """Groq has sent a stream's usage in ``x_groq.usage`` on the last chunk."""
    extra = obj.get("x_groq")
    return extra.get("usage") if isinstance(extra, dict) else None


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
    """Vectors in input order; ``encoding_format: "base64"`` (via `extra_body`) is decoded."""
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise bad_response(provider.name, "no 'data' list of objects in the embeddings reply", data)
    ordered = sorted(items, key=lambda item: as_int(item.get("index")))
    return EmbeddingResponse(
        vectors=[vector(provider.name, item.get("embedding"), data) for item in ordered],
        model=str_or_none(data.get("model")),
        usage=parse_usage(data.get("usage")),
        request_id=request_id,
        raw=data,
    )


def build_models(provider: Provider) -> WireRequest:
    return WireRequest(method="GET", path="models")


def parse_models(provider: Provider, data: Any) -> list[ModelInfo]:
    out = []
    for model_id, item in model_entries(provider.name, data, "data", "id"):
        created = item.get("created")
        out.append(
            ModelInfo(
                id=model_id,
                owned_by=str_or_none(item.get("owned_by")),
                created=created if type(created) is int else None,
                raw=item,
            )
        )
    return out


def parse_error(provider: Provider, status_code: int, body: Any) -> ErrorInfo:
    message, code = error_message(body)
    return ErrorInfo(message=message, code=code)
