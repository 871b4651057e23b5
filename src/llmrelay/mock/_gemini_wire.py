"""The mock's Gemini face: generateContent, streamGenerateContent, embeddings, models."""

from __future__ import annotations

import re
from typing import Any

from ._common import (
    DEFAULT_EMBEDDING_DIMS,
    MAX_EMBEDDING_DIMS,
    MOCK_MODELS,
    Answer,
    Call,
    EchoReply,
    JSONObject,
    RequestError,
    StreamPlan,
    conversation,
    echo_reply,
    embedding,
    ends_with,
    estimate_tokens,
    opt_int,
    require_list,
    require_object,
    sse,
    text_of,
)

_METHODS = {
    "generateContent": "generate",
    "streamGenerateContent": "stream",
    "embedContent": "embed",
    "batchEmbedContents": "batch_embed",
    "countTokens": "count_tokens",
}
_MODEL_METHOD = re.compile(r"(?:^|/)models/([^/:]+):([A-Za-z]+)/?$")
_STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_GENERATE_METHODS = ["generateContent", "streamGenerateContent", "countTokens"]
_EMBED_METHODS = ["embedContent", "batchEmbedContents"]


class GeminiWire:
    """Google Gemini (Generative Language API) family."""

    name = "gemini"
    request_id_header: str | None = None

    def route(self, method: str, path: str) -> str | None:
        match = _MODEL_METHOD.search(path)
        if method == "POST" and match and match.group(2) in _METHODS:
            return _METHODS[match.group(2)]
        if method == "GET" and ends_with(path, "models"):
            return "models"
        return None

    def model_of(self, endpoint: str, path: str, payload: JSONObject | None) -> str | None:
        match = _MODEL_METHOD.search(path)
        return match.group(1) if match else None

    def answer(self, endpoint: str, payload: JSONObject | None, call: Call) -> Answer:
        if endpoint == "models":
            return {"models": [_model_info(model) for model in MOCK_MODELS]}
        payload = require_object(payload, "request body")
        model = call.model or ""
        if endpoint == "embed":
            return {"embedding": _embed(payload)}
        if endpoint == "batch_embed":
            requests = require_list(payload, "requests")
            return {"embeddings": [_embed(require_object(r, "request")) for r in requests]}
        texts, last_user = conversation(
            payload,
            "contents",
            content_key=None,
            system=payload.get("systemInstruction"),
            default_role="user",
        )
        if endpoint == "count_tokens":
            return {"totalTokens": estimate_tokens(texts)}
        config = payload.get("generationConfig") or {}
        max_tokens = opt_int(require_object(config, "generationConfig"), "maxOutputTokens")
        reply = echo_reply(texts, last_user, max_tokens, call.chunks)
        response_id = f"mock-{call.response_id}"
        finish = "MAX_TOKENS" if reply.truncated else "STOP"
        if endpoint == "generate":
            return _response(response_id, model, reply.text, finish, reply)
        last = len(reply.deltas) - 1
        chunks = [
            _response(response_id, model, delta, *((finish, reply) if i == last else (None, None)))
            for i, delta in enumerate(reply.deltas)
        ]
        if call.query.get("alt") != "sse":
            return chunks  # without alt=sse Gemini answers one JSON array of the chunks
        error = {
            "code": 503,
            "message": "The model is overloaded. Please try again later.",
            "status": "UNAVAILABLE",
        }
        return StreamPlan(
            prefix=(),
            content=tuple(sse(chunk) for chunk in chunks),
            suffix=(),
            error_event=sse({"error": error}),
            malformed_event=sse(b'{"candidates": [{"content": {"parts": [{"text": '),
        )

    def error_body(
        self, status: int, message: str, *, request_id: str, retry_delay: float | None
    ) -> JSONObject:
        fallback = "INTERNAL" if status >= 500 else "FAILED_PRECONDITION"
        error: JSONObject = {
            "code": status,
            "message": message,
            "status": _STATUSES.get(status, fallback),
        }
        if retry_delay is not None:
            error["details"] = [
                {
                    "@type": "type.googleapis.com/google.rpc.RetryInfo",
                    "retryDelay": f"{retry_delay:g}s",
                }
            ]
        return {"error": error}


def _response(
    response_id: str, model: str, text: str, finish: str | None, reply: EchoReply | None
) -> JSONObject:
    candidate: JSONObject = {"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}
    if finish is not None:
        candidate["finishReason"] = finish
    body: JSONObject = {"candidates": [candidate]}
    if reply is not None:
        body["usageMetadata"] = {
            "promptTokenCount": reply.prompt_tokens,
            "candidatesTokenCount": reply.completion_tokens,
            "totalTokenCount": reply.prompt_tokens + reply.completion_tokens,
        }
    body["modelVersion"] = model
    body["responseId"] = response_id
    return body


def _embed(request: JSONObject) -> JSONObject:
    content = require_object(request.get("content"), "content")
    dims = opt_int(request, "outputDimensionality") or DEFAULT_EMBEDDING_DIMS
    if dims > MAX_EMBEDDING_DIMS:
        raise RequestError(f"outputDimensionality must be at most {MAX_EMBEDDING_DIMS}")
    return {"values": embedding(text_of(content), dims)}


def _model_info(model: str) -> JSONObject:
    embeds = "embed" in model
    info: dict[str, Any] = {
        "name": f"models/{model}",
        "version": "001",
        "displayName": model,
        "description": "llmrelay mock model: replies 'echo: ' + the last user message",
        "inputTokenLimit": 1_048_576,
        "outputTokenLimit": 2048 if embeds else 8192,
        "supportedGenerationMethods": _EMBED_METHODS if embeds else _GENERATE_METHODS,
    }
    return info
