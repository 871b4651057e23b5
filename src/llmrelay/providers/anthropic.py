"""Anthropic Messages wire format (``POST /v1/messages``): preset, login, replies, models.

Requests are translated from llmrelay's OpenAI-shaped messages in `_anthropic_request` (system
lifted to the top level, alternating turns, tool calls as ``tool_use`` blocks, signed thinking
replayed, images as ``image`` blocks, a default ``max_tokens``); stream events are read in
`_anthropic_stream`.

Authentication: ``x-api-key`` by default; ``Authorization: Bearer`` when the preset says
``auth="bearer"``. `preset()` picks bearer on its own when ``ANTHROPIC_API_KEY`` is unset and
``ANTHROPIC_AUTH_TOKEN`` is set (read when the client is built, never at import)::

    client = llmrelay.AsyncClient(provider=anthropic.preset(auth="bearer"), api_key=token)

Preset options read here: ``auth`` (``"x-api-key"`` | ``"bearer"``), ``version`` (the
``anthropic-version`` header, default `ANTHROPIC_VERSION`; version 2026-10-21 and later refuse
``temperature``/``top_p``), ``beta`` (``anthropic-beta`` values), ``default_max_tokens``. A
client's ``headers={"anthropic-version": ...}`` also wins.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from .._exceptions import ConfigError
from .._reasoning import ReasoningAssembler
from .._request import ChatRequest, WireRequest
from .._types import ChatResponse, EmbeddingResponse, ModelInfo, ToolCall
from ._anthropic_request import ANTHROPIC_DEFAULT_MAX_TOKENS, ANTHROPIC_VERSION, build_body
from ._anthropic_stream import (
    StreamParser,
    error_details,
    finish_reason,
    parse_usage,
    raise_error_object,
)
from ._base import ErrorInfo, Provider
from ._common import bad_response, make_tool_call, model_entries, str_or_none

if TYPE_CHECKING:
    from ._base import Adapter

__all__ = [
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_DEFAULT_MAX_TOKENS",
    "ANTHROPIC_VERSION",
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

ANTHROPIC_BASE_URL = "https://api.anthropic.com/v1"
# `GET /v1/models` pages 20 entries by default; 1000 is its maximum page.
_MODELS_PAGE_SIZE = "1000"

request_id_header = "request-id"

_AUTH_MODES = ("x-api-key", "bearer")


def preset(
    *,
    base_url: str | None = None,
    auth: str | None = None,
    version: str = ANTHROPIC_VERSION,
    beta: Sequence[str] = (),
    default_max_tokens: int = ANTHROPIC_DEFAULT_MAX_TOKENS,
    name: str = "anthropic",
    environ: Mapping[str, str] | None = None,
) -> Provider:
    """The ``anthropic`` preset. A client built with ``provider="anthropic"`` calls it with
    the environment mapping its settings are resolved from; called directly, `environ`
    defaults to the process environment, read now.

    `auth=None` picks ``x-api-key`` with ``ANTHROPIC_API_KEY``, or, when only
    ``ANTHROPIC_AUTH_TOKEN`` is set, ``Authorization: Bearer`` with it. A `base_url` given here
    wins over ``ANTHROPIC_BASE_URL``.
    """
    if auth is None:
        env = os.environ if environ is None else environ
        if not env.get("ANTHROPIC_API_KEY") and env.get("ANTHROPIC_AUTH_TOKEN"):
            auth = "bearer"
        else:
            auth = "x-api-key"
    if auth not in _AUTH_MODES:
        raise ConfigError(f"auth must be one of {_AUTH_MODES}, got {auth!r}")
    if isinstance(beta, str):
        beta = (beta,)
    return Provider(
        name=name,
        # This module is the adapter (mypy checks it against `Adapter` in presets.py).
        adapter=cast("Adapter", sys.modules[__name__]),
        base_url=base_url or ANTHROPIC_BASE_URL,
        api_key_env=("ANTHROPIC_AUTH_TOKEN",) if auth == "bearer" else ("ANTHROPIC_API_KEY",),
        base_url_env=() if base_url else ("ANTHROPIC_BASE_URL",),
        options={
            "auth": auth,
            "version": version,
            "beta": tuple(beta),
            "default_max_tokens": default_max_tokens,
        },
    )


def auth_headers(provider: Provider, api_key: str | None) -> dict[str, str]:
    """The key header plus ``anthropic-version`` (and ``anthropic-beta``), sent on every call;
    a client's own `headers=` are applied after these and so can replace them."""
    options = provider.options
    headers = {"anthropic-version": str(options.get("version") or ANTHROPIC_VERSION)}
    beta = options.get("beta")
    if beta:
        headers["anthropic-beta"] = beta if isinstance(beta, str) else ",".join(beta)
    if api_key:
        if options.get("auth") == "bearer":
            headers["authorization"] = f"Bearer {api_key}"
        else:
            headers["x-api-key"] = api_key
    return headers


def build_chat(provider: Provider, request: ChatRequest) -> WireRequest:
    """See `_anthropic_request` for the translation rules."""
    body = build_body(provider.name, provider.options, request)
    return WireRequest(method="POST", path="messages", json=body)


# -- replies -------------------------------------------------------------------------------------


def parse_chat(provider: Provider, data: Any, request_id: str | None) -> ChatResponse:
    name = provider.name
    if not isinstance(data, dict):
        raise bad_response(name, "the body is not a JSON object", data)
    if data.get("type") == "error":
        raise_error_object(provider, data, request_id)
    content = data.get("content")
    if not isinstance(content, list):
        raise bad_response(name, "no 'content' list in the reply", data)
    texts: list[str] = []
    thinking: list[str] = []
    signature: str | None = None
    # The same rules as a stream's chunks, so `chat()` and `stream().final()` agree.
    blocks = ReasoningAssembler()
    calls: list[ToolCall] = []
    for block in content:
        if not isinstance(block, dict):
            raise bad_response(name, "a content block is not an object", data)
        kind = block.get("type")
        if kind == "text":
            text = block.get("text")
            if not isinstance(text, str):
                raise bad_response(name, "a text block has no 'text'", data)
            texts.append(text)
        elif kind == "thinking":
            thought = str_or_none(block.get("thinking"))
            signed = str_or_none(block.get("signature")) or None
            if thought:
                thinking.append(thought)
            if signed:
                signature = signed
            blocks.add(thought, signed, None)
        elif kind == "redacted_thinking":
            redacted = block.get("data")
            if not isinstance(redacted, str) or not redacted:
                raise bad_response(name, "a redacted_thinking block has no 'data'", data)
            blocks.add(None, None, redacted)
        elif kind == "tool_use":
            call_id, tool, arguments = block.get("id"), block.get("name"), block.get("input")
            if not isinstance(call_id, str) or not isinstance(tool, str):
                raise bad_response(name, "a tool_use block has no 'id' or 'name'", data)
            text = json.dumps(arguments, ensure_ascii=False) if arguments else ""
            calls.append(make_tool_call(call_id, tool, text))
        # Server-tool blocks stay in `raw`.
    return ChatResponse(
        text="".join(texts),
        finish_reason=finish_reason(data.get("stop_reason")),
        usage=parse_usage(data.get("usage")),
        tool_calls=tuple(calls),
        model=str_or_none(data.get("model")),
        id=str_or_none(data.get("id")),
        request_id=request_id,
        reasoning="".join(thinking) or None,
        reasoning_signature=signature,
        reasoning_blocks=blocks.blocks(),
        provider=name,
        raw=data,
    )


def new_stream_parser(provider: Provider, request: ChatRequest) -> StreamParser:
    return StreamParser(provider)


# -- embeddings, models, errors ------------------------------------------------------------------


def build_embed(
    provider: Provider, model: str, inputs: list[str], extra_body: Mapping[str, Any] | None
) -> WireRequest:
    raise ConfigError(
        f"{provider.name} has no embeddings endpoint; use a provider that has one "
        "(Anthropic's docs point to Voyage AI)"
    )


def parse_embed(provider: Provider, data: Any, request_id: str | None) -> EmbeddingResponse:
    raise ConfigError(f"{provider.name} has no embeddings endpoint")


def build_models(provider: Provider) -> WireRequest:
    return WireRequest(method="GET", path="models", params={"limit": _MODELS_PAGE_SIZE})


def parse_models(provider: Provider, data: Any) -> list[ModelInfo]:
    return [
        ModelInfo(id=model_id, created=_epoch(item.get("created_at")), raw=item)
        for model_id, item in model_entries(provider.name, data, "data", "id")
    ]


def _epoch(value: Any) -> int | None:
    """RFC 3339 (``2025-02-19T00:00:00Z``) → Unix seconds; anything else → None."""
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp())


def parse_error(provider: Provider, status_code: int, body: Any) -> ErrorInfo:
    """``{type: "error", error: {type, message}}``: the type is the code, so a 529 (or any
    status) with ``overloaded_error`` becomes an `OverloadedError`."""
    message, code = error_details(body)
    err = body.get("error") if isinstance(body, dict) else None
    details = err.get("details") if isinstance(err, dict) else None
    # A spend limit the organisation set does not lift by waiting: retrying cannot help.
    final = (
        isinstance(details, dict) and details.get("error_code") == "enforced_spend_limit_reached"
    )
    request_id = body.get("request_id") if isinstance(body, dict) else None
    return ErrorInfo(
        message=message,
        code=code,
        retryable=False if final else None,
        request_id=request_id if isinstance(request_id, str) else None,
    )
