"""The mock's Gemini face: generateContent, streamGenerateContent, embeddings, models."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ._asks import gemini_ask
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
    model_in_path,
    opt_int,
    require_list,
    require_object,
    split_pieces,
    sse,
    text_of,
    unknown_model,
)
from ._logprobs import MAX_TOP_LOGPROBS, gemini_logprobs
from ._reply import content_of, tool_to_call

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
        if model_in_path(method, path) is not None:
            return "model"
        return None

    def model_of(self, endpoint: str, path: str, payload: JSONObject | None) -> str | None:
        if endpoint == "model":
            return model_in_path("GET", path)
        match = _MODEL_METHOD.search(path)
        return match.group(1) if match else None

    def answer(self, endpoint: str, payload: JSONObject | None, call: Call) -> Answer:
        if endpoint == "models":
            return {"models": [_model_info(model) for model in MOCK_MODELS]}
        if endpoint == "model":
            if call.model not in MOCK_MODELS:
                raise unknown_model(call.model)
            return _model_info(call.model)
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
        config = require_object(payload.get("generationConfig") or {}, "generationConfig")
        max_tokens = opt_int(config, "maxOutputTokens")
        ask = gemini_ask(payload, last_user, config)
        tool = tool_to_call(ask)
        text = content_of(ask, tool)
        stop = () if tool else ask.stop
        reply = echo_reply(texts, last_user, max_tokens, call.chunks, text=text, stop=stop)
        top = opt_int(config, "logprobs", minimum=0) or 0
        shape = _Shape(
            response_id=f"mock-{call.response_id}",
            model=model,
            n=opt_int(config, "candidateCount") or 1,
            tool=tool.name if tool else None,
            finish="MAX_TOKENS" if reply.truncated else "STOP",
            top_logprobs=top if config.get("responseLogprobs") is True and not tool else None,
            reply=reply,
        )
        if endpoint == "generate":
            return shape.response(reply.text, reply.pieces, reply.completion_tokens, last=True)
        # A function call arrives whole, in one chunk; text in one chunk per delta. Every chunk
        # carries the usage so far, as the service sends it.
        deltas = (reply.text,) if tool else reply.deltas or ("",)
        chunks = [
            shape.response(
                delta,
                (delta,),
                len(split_pieces("".join(deltas[: i + 1]))),
                last=i == len(deltas) - 1,
            )
            for i, delta in enumerate(deltas)
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


@dataclass(frozen=True, slots=True, kw_only=True)
class _Shape:
    """How one generateContent answer (or stream chunk) is laid out."""

    response_id: str
    model: str
    n: int
    tool: str | None  # the name of the function called, or None for a text reply
    finish: str
    top_logprobs: int | None  # None: no logprobs asked for
    reply: EchoReply

    def response(
        self, text: str, tokens: Sequence[str], tokens_so_far: int, *, last: bool
    ) -> JSONObject:
        body: JSONObject = {
            "candidates": [self._candidate(text, tokens, index, last) for index in range(self.n)],
            "usageMetadata": _usage(self.reply.prompt_tokens, tokens_so_far * self.n),
            "modelVersion": self.model,
            "responseId": self.response_id,
        }
        return body

    def _candidate(self, text: str, tokens: Sequence[str], index: int, last: bool) -> JSONObject:
        part: JSONObject = {"text": text}
        if self.tool is not None:
            try:
                args = json.loads(text)
            except ValueError:  # cut short by maxOutputTokens
                args = {}
            part = {"functionCall": {"name": self.tool, "args": args}}
        candidate: JSONObject = {"content": {"role": "model", "parts": [part]}, "index": index}
        if last:
            candidate["finishReason"] = self.finish
        if self.top_logprobs is not None:
            candidate |= gemini_logprobs(tokens, min(self.top_logprobs, MAX_TOP_LOGPROBS))
        return candidate


def _usage(prompt_tokens: int, candidates_tokens: int) -> JSONObject:
    return {
        "promptTokenCount": prompt_tokens,
        "candidatesTokenCount": candidates_tokens,
        "totalTokenCount": prompt_tokens + candidates_tokens,
    }


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
