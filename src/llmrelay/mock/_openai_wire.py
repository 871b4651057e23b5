"""The mock's OpenAI face: chat completions (plain and streamed), embeddings, models."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ._asks import openai_ask
from ._common import (
    CREATED,
    DEFAULT_EMBEDDING_DIMS,
    MAX_EMBEDDING_DIMS,
    MOCK_MODELS,
    Answer,
    Call,
    EchoReply,
    JSONObject,
    RequestError,
    StreamPlan,
    body_model,
    conversation,
    echo_reply,
    embedding,
    embedding_base64,
    estimate_tokens,
    find_route,
    model_in_path,
    opt_int,
    require_object,
    sse,
    unknown_model,
)
from ._logprobs import MAX_TOP_LOGPROBS, openai_logprobs
from ._reply import content_of, tool_to_call

_ROUTES = {
    ("POST", "chat/completions"): "chat",
    ("POST", "embeddings"): "embeddings",
    ("GET", "models"): "models",
}
_DEPLOYMENT = re.compile(r"/deployments/([^/]+)/")
_FINGERPRINT = "fp_mock"
MAX_CHOICES = 128  # OpenAI's limit for n
_ERROR_KINDS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", "not_found"),
    409: ("invalid_request_error", "conflict"),
    422: ("invalid_request_error", None),
    429: ("requests", "rate_limit_exceeded"),
}


class OpenAIWire:
    """OpenAI Chat Completions family (also Azure's deployment URLs)."""

    name = "openai"
    request_id_header: str | None = "x-request-id"

    def route(self, method: str, path: str) -> str | None:
        if model_in_path(method, path) is not None:
            return "model"
        return find_route(_ROUTES, method, path)

    def model_of(self, endpoint: str, path: str, payload: JSONObject | None) -> str | None:
        if endpoint == "model":
            return model_in_path("GET", path)
        model = body_model(payload)
        if model is None and (deployment := _DEPLOYMENT.search(path)):
            model = deployment.group(1)  # Azure: the deployment names the model
        return model

    def answer(self, endpoint: str, payload: JSONObject | None, call: Call) -> Answer:
        if endpoint == "models":
            return {"object": "list", "data": [_model_info(model) for model in MOCK_MODELS]}
        if endpoint == "model":
            if call.model not in MOCK_MODELS:
                raise unknown_model(call.model)
            return _model_info(call.model)
        payload = require_object(payload, "request body")
        if call.model is None:
            raise RequestError("you must provide a model parameter")
        if endpoint == "embeddings":
            return _embeddings(payload, call.model)
        return _chat(payload, call)

    def error_body(
        self, status: int, message: str, *, request_id: str, retry_delay: float | None
    ) -> JSONObject:
        kind, code = _ERROR_KINDS.get(status, ("server_error", None))
        if status < 500 and status not in _ERROR_KINDS:
            kind = "invalid_request_error"
        return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _model_info(model: str) -> JSONObject:
    return {"id": model, "object": "model", "created": CREATED, "owned_by": "llmrelay"}


def _chat(payload: JSONObject, call: Call) -> Answer:
    texts, last_user = conversation(payload, "messages", content_key="content")
    ask = openai_ask(payload, last_user)
    tool = tool_to_call(ask)
    max_tokens = opt_int(payload, "max_completion_tokens", "max_tokens")
    reply = echo_reply(
        texts,
        last_user,
        max_tokens,
        call.chunks,
        text=content_of(ask, tool),
        stop=() if tool else ask.stop,
    )
    shape = _Shape(
        model=call.model or "",
        completion_id=f"chatcmpl-mock-{call.response_id}",
        n=opt_int(payload, "n") or 1,
        tool=tool.name if tool else None,
        call_id=f"call_mock_{call.response_id[:20]}",
        # OpenAI finishes a call forced by name with "stop", an unforced or "required" one with
        # "tool_calls".
        finish="length"
        if reply.truncated
        else "tool_calls"
        if tool and ask.tool_name is None
        else "stop",
        top_logprobs=(opt_int(payload, "top_logprobs", minimum=0) or 0)
        if payload.get("logprobs") is True and tool is None
        else None,
    )
    if shape.n > MAX_CHOICES:
        raise RequestError(f"n must be at most {MAX_CHOICES}")
    if payload.get("stream") is True:
        options = payload.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        return _stream(shape, reply, include_usage=include_usage)
    return {
        "id": shape.completion_id,
        "object": "chat.completion",
        "created": CREATED,
        "model": shape.model,
        "system_fingerprint": _FINGERPRINT,
        "choices": [
            {
                "index": index,
                "message": shape.message(reply.text),
                "logprobs": shape.logprobs(reply.pieces),
                "finish_reason": shape.finish,
            }
            for index in range(shape.n)
        ],
        "usage": _usage(reply, shape.n),
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class _Shape:
    """How one chat completion is laid out: its choices, tool call, finish and logprobs."""

    model: str
    completion_id: str
    n: int
    tool: str | None  # the name of the tool called, or None for a text reply
    call_id: str
    finish: str
    top_logprobs: int | None  # None: no logprobs asked for

    def message(self, text: str) -> JSONObject:
        if self.tool is None:
            return {"role": "assistant", "content": text, "refusal": None}
        function = {"name": self.tool, "arguments": text}
        call = {"id": self.call_id, "type": "function", "function": function}
        return {"role": "assistant", "content": None, "refusal": None, "tool_calls": [call]}

    def logprobs(self, tokens: Sequence[str]) -> JSONObject | None:
        if self.top_logprobs is None:
            return None
        return openai_logprobs(tokens, min(self.top_logprobs, MAX_TOP_LOGPROBS))

    def first_delta(self) -> JSONObject:
        if self.tool is None:
            return {"role": "assistant", "content": ""}
        function = {"name": self.tool, "arguments": ""}
        call = {"index": 0, "id": self.call_id, "type": "function", "function": function}
        return {"role": "assistant", "content": None, "tool_calls": [call]}

    def delta(self, piece: str) -> JSONObject:
        if self.tool is None:
            return {"content": piece}
        return {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}


def _stream(shape: _Shape, reply: EchoReply, *, include_usage: bool) -> StreamPlan:
    def chunk(choices: list[Any], **extra: Any) -> bytes:
        body = {
            "id": shape.completion_id,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": shape.model,
            "system_fingerprint": _FINGERPRINT,
            "choices": choices,
        }
        if include_usage:
            body["usage"] = None
        return sse(body | extra)

    def choice(
        index: int,
        delta: JSONObject,
        finish_reason: str | None = None,
        logprobs: JSONObject | None = None,
    ) -> list[Any]:
        return [
            {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish_reason}
        ]

    suffix = [chunk(choice(index, {}, shape.finish)) for index in range(shape.n)]
    if include_usage:
        suffix.append(chunk([], usage=_usage(reply, shape.n)))
    suffix.append(sse(b"[DONE]"))
    error = {
        "message": "The server had an error while processing your request.",
        "type": "server_error",
        "param": None,
        "code": None,
    }
    return StreamPlan(
        prefix=tuple(chunk(choice(index, shape.first_delta())) for index in range(shape.n)),
        content=tuple(
            chunk(choice(index, shape.delta(delta), logprobs=shape.logprobs([delta])))
            for delta in reply.deltas
            for index in range(shape.n)
        ),
        suffix=tuple(suffix),
        error_event=sse({"error": error}),
        malformed_event=sse(b'{"id": "' + shape.completion_id.encode() + b'", "choices": [{'),
    )


def _usage(reply: EchoReply, n: int = 1) -> JSONObject:
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens * n,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens * n,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


def _embeddings(payload: JSONObject, model: str) -> JSONObject:
    raw = payload.get("input")
    if isinstance(raw, str) or (isinstance(raw, list) and raw and _is_tokens(raw[0])):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise RequestError("input must be a string, a list of strings or token arrays")
    texts = []
    for item in raw:
        if isinstance(item, str):
            texts.append(item)
        elif isinstance(item, list) and all(_is_tokens(token) for token in item):
            texts.append(" ".join(map(str, item)))
        else:
            raise RequestError(f"input entries must be strings or token arrays, got {item!r}")
    dims = opt_int(payload, "dimensions") or DEFAULT_EMBEDDING_DIMS
    if dims > MAX_EMBEDDING_DIMS:
        raise RequestError(f"dimensions must be at most {MAX_EMBEDDING_DIMS}")
    as_base64 = payload.get("encoding_format") == "base64"
    data = []
    for index, text in enumerate(texts):
        vector = embedding(text, dims)
        value: Any = embedding_base64(vector) if as_base64 else vector
        data.append({"object": "embedding", "index": index, "embedding": value})
    tokens = sum(estimate_tokens([text]) for text in texts)
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _is_tokens(value: Any) -> bool:
    """A token id: an int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)
