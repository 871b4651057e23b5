"""Google Gemini API (Generative Language API, ``v1beta``): the native wire format.

- Auth is the ``x-goog-api-key`` header, never ``?key=`` (query strings end up in logs).
- Chat is ``models/{model}:generateContent``; a stream is ``:streamGenerateContent?alt=sse``.
  The model may be named ``gemini-2.5-flash`` or ``models/gemini-2.5-flash``.
- Embeddings: one text goes to ``:embedContent``, several to ``:batchEmbedContents``;
  `extra_body` (``taskType``, ``outputDimensionality``, ``title``) applies to every text.
- Messages and params are translated in `_gemini_request`, replies and stream events in
  `_gemini_response` (see their docstrings for the rules). Anything without a named parameter
  (``thinkingConfig``, ``safetySettings``, ``topK``, other tools) goes through `extra_body`::

      await client.chat("Hi", model="gemini-2.5-flash", extra_body={
          "generationConfig": {"thinkingConfig": {"includeThoughts": True}},
      })

- ``n`` is sent as ``generationConfig.candidateCount``; every candidate becomes a `Choice`
  (by its ``index``, which JSON leaves out for 0), in whole replies and streams alike.
- A blocked prompt (no candidates, ``promptFeedback.blockReason``) raises `BadRequestError`
  with ``code="prompt_blocked"`` (inside a stream: `StreamError` caused by it).
- Error bodies are ``{error: {code, message, status, details}}``; a ``google.rpc.RetryInfo``
  ``retryDelay`` is a server-requested wait, honoured (and capped) like ``Retry-After``.

Key lookup order: ``GEMINI_API_KEY``, then ``GOOGLE_API_KEY``. google-genai lets
``GOOGLE_API_KEY`` win; we do not, because that name is shared with other Google APIs (Maps,
Custom Search...) and the preset is named after the Gemini key.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from .._request import ChatRequest, WireRequest
from .._types import ChatResponse, EmbeddingResponse, ModelInfo
from ._base import ErrorInfo, Provider
from ._common import bad_response, model_entries, reply_of_choices, str_or_none, vector
from ._gemini_request import build_body, model_path
from ._gemini_response import (
    StreamParser,
    check_reply,
    error_fields,
    parse_usage,
    read_choice,
)

if TYPE_CHECKING:
    from ._base import Adapter

__all__ = [
    "StreamParser",
    "auth_headers",
    "build_chat",
    "build_embed",
    "build_models",
    "new_stream_parser",
    "parse_chat",
    "parse_embed",
    "parse_error",
    "parse_models",
    "preset",
    "request_id_header",
]

BASE_URL = "https://generativelanguage.googleapis.com/v1beta"
# Gemini documents no request-id response header; proxies and gateways commonly add this one.
request_id_header = "x-request-id"
# The model list is paged (50 by default); ask for the largest page so one request gets all.
_MODELS_PAGE_SIZE = "1000"


def preset() -> Provider:
    """The ``gemini`` preset. The client reads the key and URL env vars when it is built."""
    return Provider(
        name="gemini",
        # This module is the adapter (mypy checks it against `Adapter` in presets.py).
        adapter=cast("Adapter", sys.modules[__name__]),
        base_url=BASE_URL,
        api_key_env=("GEMINI_API_KEY", "GOOGLE_API_KEY"),
        base_url_env=("GEMINI_BASE_URL",),
    )


def auth_headers(provider: Provider, api_key: str | None) -> dict[str, str]:
    return {"x-goog-api-key": api_key} if api_key else {}


def build_chat(provider: Provider, request: ChatRequest) -> WireRequest:
    params = request.params
    output = request.output
    if output is not None and output.schema is not None and "response_format" in params:
        # Gemini takes JSON Schema as written (responseJsonSchema): the schema before it was
        # made strict for OpenAI, optional properties left optional.
        fmt = {"type": "json_schema", "json_schema": {"name": output.name, "schema": output.schema}}
        params = {**params, "response_format": fmt}
    body = build_body(request.messages, params, request.extra_body)
    path = model_path(request.model)
    if request.stream:
        return WireRequest(
            method="POST",
            path=f"{path}:streamGenerateContent",
            params={"alt": "sse"},
            json=body,
        )
    return WireRequest(method="POST", path=f"{path}:generateContent", json=body)


def parse_chat(provider: Provider, data: Any, request_id: str | None) -> ChatResponse:
    candidates = check_reply(provider, data, request_id)
    if not candidates:
        raise bad_response(provider.name, "no 'candidates' in the reply", data)
    choices = [
        read_choice(provider, candidate, position, data)
        for position, candidate in enumerate(candidates)
    ]
    return reply_of_choices(
        choices,
        usage=parse_usage(data.get("usageMetadata")),
        model=str_or_none(data.get("modelVersion")),
        id=str_or_none(data.get("responseId")),
        request_id=request_id,
        provider=provider.name,
        raw=data,
    )


def new_stream_parser(provider: Provider, request: ChatRequest) -> StreamParser:
    return StreamParser(provider)


def build_embed(
    provider: Provider, model: str, inputs: list[str], extra_body: Mapping[str, Any] | None
) -> WireRequest:
    path = model_path(model)
    extra = dict(extra_body or {})
    if len(inputs) == 1:
        body = {"content": {"parts": [{"text": inputs[0]}]}, **extra}
        return WireRequest(method="POST", path=f"{path}:embedContent", json=body)
    requests = [{"model": path, "content": {"parts": [{"text": t}]}, **extra} for t in inputs]
    return WireRequest(
        method="POST", path=f"{path}:batchEmbedContents", json={"requests": requests}
    )


def parse_embed(provider: Provider, data: Any, request_id: str | None) -> EmbeddingResponse:
    if not isinstance(data, dict):
        raise bad_response(provider.name, "the embeddings reply is not a JSON object", data)
    if "embeddings" in data:
        items = data["embeddings"]
    elif "embedding" in data:
        items = [data["embedding"]]
    else:
        raise bad_response(provider.name, "no 'embedding' or 'embeddings' in the reply", data)
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise bad_response(provider.name, "an embedding is not an object with 'values'", data)
    return EmbeddingResponse(
        vectors=[vector(provider.name, item.get("values"), data) for item in items],
        usage=parse_usage(data.get("usageMetadata")),
        request_id=request_id,
        raw=data,
    )


def build_models(provider: Provider) -> WireRequest:
    return WireRequest(method="GET", path="models", params={"pageSize": _MODELS_PAGE_SIZE})


def parse_models(provider: Provider, data: Any) -> list[ModelInfo]:
    if isinstance(data, dict) and "models" not in data:
        return []  # a project with no models gets an empty object
    return [
        ModelInfo(id=name.removeprefix("models/"), raw=item)
        for name, item in model_entries(provider.name, data, "models", "name")
    ]


def parse_error(provider: Provider, status_code: int, body: Any) -> ErrorInfo:
    message, status, delay, _ = error_fields(body)
    details = _details(body)
    # Gemini answers a bad key with 400 INVALID_ARGUMENT; the user should see an auth error.
    bad_key = any(d.get("reason") == "API_KEY_INVALID" for d in details)
    # A per-day quota stays exhausted until the day resets: retrying in seconds cannot help.
    daily = any(
        "PerDay" in str(v.get("quotaId", ""))
        for d in details
        if isinstance(d.get("violations"), list)
        for v in d["violations"]
        if isinstance(v, dict)
    )
    return ErrorInfo(
        message=message,
        code=status,
        retry_after=delay,
        retryable=False if daily else None,
        status_code=401 if bad_key else None,
    )


def _details(body: Any) -> list[dict[str, Any]]:
    if isinstance(body, list) and body:
        body = body[0]
    err = body.get("error") if isinstance(body, dict) else None
    details = err.get("details") if isinstance(err, dict) else None
    return [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []
