"""The mock's OpenAI face: chat completions (plain and streamed), embeddings, models."""

from __future__ import annotations

import re
from typing import Any

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
    opt_int,
    require_object,
    sse,
)

_ROUTES = {
    ("POST", "chat/completions"): "chat",
    ("POST", "embeddings"): "embeddings",
    ("GET", "models"): "models",
}
_DEPLOYMENT = re.compile(r"/deployments/([^/]+)/")
_FINGERPRINT = "fp_mock"
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
        return find_route(_ROUTES, method, path)

    def model_of(self, endpoint: str, path: str, payload: JSONObject | None) -> str | None:
        model = body_model(payload)
        if model is None and (deployment := _DEPLOYMENT.search(path)):
            model = deployment.group(1)  # Azure: the deployment names the model
        return model

    def answer(self, endpoint: str, payload: JSONObject | None, call: Call) -> Answer:
        if endpoint == "models":
            return {
                "object": "list",
                "data": [
                    {"id": model, "object": "model", "created": CREATED, "owned_by": "llmrelay"}
                    for model in MOCK_MODELS
                ],
            }
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


def _chat(payload: JSONObject, call: Call) -> Answer:
    texts, last_user = conversation(payload, "messages", content_key="content")
    max_tokens = opt_int(payload, "max_completion_tokens", "max_tokens")
    reply = echo_reply(texts, last_user, max_tokens, call.chunks)
    model = call.model or ""
    completion_id = f"chatcmpl-mock-{call.response_id}"
    finish = "length" if reply.truncated else "stop"
    if payload.get("stream") is True:
        options = payload.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        return _stream(completion_id, model, reply, finish, include_usage=include_usage)
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "system_fingerprint": _FINGERPRINT,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply.text, "refusal": None},
                "logprobs": None,
                "finish_reason": finish,
            }
        ],
        "usage": _usage(reply),
    }


def _stream(
    completion_id: str, model: str, reply: EchoReply, finish: str, *, include_usage: bool
) -> StreamPlan:
    def chunk(choices: list[Any], **extra: Any) -> bytes:
        body = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": model,
            "system_fingerprint": _FINGERPRINT,
            "choices": choices,
        }
        if include_usage:
            body["usage"] = None
        return sse(body | extra)

    def choice(delta: JSONObject, finish_reason: str | None = None) -> list[Any]:
        return [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]

    suffix = [chunk(choice({}, finish))]
    if include_usage:
        suffix.append(chunk([], usage=_usage(reply)))
    suffix.append(sse(b"[DONE]"))
    error = {
        "message": "The server had an error while processing your request.",
        "type": "server_error",
        "param": None,
        "code": None,
    }
    return StreamPlan(
        prefix=(chunk(choice({"role": "assistant", "content": ""})),),
        content=tuple(chunk(choice({"content": delta})) for delta in reply.deltas),
        suffix=tuple(suffix),
        error_event=sse({"error": error}),
        malformed_event=sse(b'{"id": "' + completion_id.encode() + b'", "choices": [{'),
    )


def _usage(reply: EchoReply) -> JSONObject:
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
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
