"""Anthropic Messages wire format (``POST /v1/messages``), translated from llmrelay's
OpenAI-shaped messages.

What the translation does:

- ``system``/``developer`` messages are lifted to the top-level ``system`` field;
- consecutive turns of the same role are merged (Anthropic wants user/assistant to alternate);
  ``tool`` messages become ``tool_result`` blocks in a user turn;
- an assistant turn's ``tool_calls`` become ``tool_use`` blocks, and its ``reasoning_content``
  with ``reasoning_signature`` a leading ``thinking`` block (replay needs the signature);
- ``image_url`` parts become ``image`` blocks (``data:`` URLs as base64, http(s) URLs by URL);
  blocks already in Anthropic's shape (``image``, ``document``, …) pass through unchanged;
- ``max_tokens`` is required by Anthropic: `ANTHROPIC_DEFAULT_MAX_TOKENS` when none is given.

Authentication: ``x-api-key`` by default; ``Authorization: Bearer`` when the preset says
``auth="bearer"``. `preset()` picks bearer on its own when ``ANTHROPIC_API_KEY`` is unset and
``ANTHROPIC_AUTH_TOKEN`` is set (read when the client is built, never at import)::

    client = llmrelay.AsyncClient(provider=anthropic.preset(auth="bearer"), api_key=token)

Preset options read here: ``auth`` (``"x-api-key"`` | ``"bearer"``), ``version`` (the
``anthropic-version`` header, default `ANTHROPIC_VERSION`), ``beta`` (``anthropic-beta``
values), ``default_max_tokens``. A client's ``headers={"anthropic-version": ...}`` also wins.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from .._exceptions import ConfigError
from .._request import ChatRequest, WireRequest
from .._types import ChatResponse, EmbeddingResponse, ModelInfo, ToolCall
from ._anthropic_stream import (
    StreamParser,
    error_details,
    finish_reason,
    parse_usage,
    raise_error_object,
)
from ._base import ErrorInfo, Provider
from ._common import bad_response, make_tool_call

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
ANTHROPIC_VERSION = "2023-06-01"
# Anthropic requires `max_tokens`; this is sent when the call gives none.
ANTHROPIC_DEFAULT_MAX_TOKENS = 4096
# `GET /v1/models` pages 20 entries by default; 1000 is its maximum page.
_MODELS_PAGE_SIZE = "1000"

request_id_header = "request-id"

_AUTH_MODES = ("x-api-key", "bearer")
_TOOL_CHOICES = {"auto": "auto", "required": "any", "any": "any", "none": "none"}
_NATIVE_TOOL_CHOICES = frozenset({"auto", "any", "tool", "none"})


def preset(
    *,
    base_url: str | None = None,
    auth: str | None = None,
    version: str = ANTHROPIC_VERSION,
    beta: Sequence[str] = (),
    default_max_tokens: int = ANTHROPIC_DEFAULT_MAX_TOKENS,
    name: str = "anthropic",
) -> Provider:
    """The ``anthropic`` preset. Env vars are read here, when a client is built.

    `auth=None` picks ``x-api-key`` with ``ANTHROPIC_API_KEY``, or, when only
    ``ANTHROPIC_AUTH_TOKEN`` is set, ``Authorization: Bearer`` with it. A `base_url` given here
    wins over ``ANTHROPIC_BASE_URL``.
    """
    if auth is None:
        if not os.environ.get("ANTHROPIC_API_KEY") and os.environ.get("ANTHROPIC_AUTH_TOKEN"):
            auth = "bearer"
        else:
            auth = "x-api-key"
    if auth not in _AUTH_MODES:
        raise ConfigError(f"auth must be one of {_AUTH_MODES}, got {auth!r}")
    if isinstance(beta, str):
        beta = (beta,)
    from . import anthropic

    return Provider(
        name=name,
        adapter=anthropic,
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


# -- requests ------------------------------------------------------------------------------------


def build_chat(provider: Provider, request: ChatRequest) -> WireRequest:
    params = request.params
    name = provider.name
    if "response_format" in params:
        raise ConfigError(
            f"{name} has no response_format: describe the JSON you want in the prompt, or pass "
            "a tool whose parameters are your schema and force it with "
            "tool_choice={'type': 'function', 'function': {'name': ...}}"
        )
    if "seed" in params:
        raise ConfigError(f"{name} has no seed parameter; leave seed out")
    system, messages = _translate_messages(request.messages)
    if not messages:
        raise ConfigError(f"{name} needs at least one user or assistant message besides system")
    max_tokens = params.get("max_tokens") or provider.options.get(
        "default_max_tokens", ANTHROPIC_DEFAULT_MAX_TOKENS
    )
    body: dict[str, Any] = {"model": request.model, "max_tokens": max_tokens}
    if system:
        only = system[0]
        body["system"] = only["text"] if len(system) == 1 and _plain_text(only) else system
    body["messages"] = messages
    for key in ("temperature", "top_p"):
        if key in params:
            body[key] = params[key]
    if "stop" in params:
        body["stop_sequences"] = params["stop"]
    if "tools" in params:
        body["tools"] = [_tool(tool) for tool in params["tools"]]
    if "tool_choice" in params:
        body["tool_choice"] = _tool_choice(params["tool_choice"])
    if request.stream:
        body["stream"] = True
    if request.extra_body:
        body.update(request.extra_body)
    return WireRequest(method="POST", path="messages", json=body)


def _translate_messages(
    messages: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system blocks, alternating turns). Input dicts are never modified."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for position, msg in enumerate(messages):
        role = msg.get("role")
        if role in ("system", "developer"):
            for block in _blocks(msg.get("content"), position):
                if block.get("type") != "text":
                    raise ConfigError(f"messages[{position}] ({role}) may hold only text")
                system.append(block)
            continue
        if role == "assistant":
            wire_role, blocks = "assistant", _assistant_blocks(msg, position)
        elif role == "tool":
            wire_role, blocks = "user", [_tool_result(msg, position)]
        else:
            wire_role, blocks = "user", _blocks(msg.get("content"), position)
        if not blocks:
            continue  # e.g. an empty assistant turn: Anthropic rejects empty content
        if turns and turns[-1]["role"] == wire_role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": wire_role, "content": blocks})
    for turn in turns:
        content = turn["content"]
        if len(content) == 1 and _plain_text(content[0]):
            turn["content"] = content[0]["text"]
    return system, turns


def _plain_text(block: dict[str, Any]) -> bool:
    return block.get("type") == "text" and len(block) == 2


def _blocks(content: Any, position: int) -> list[dict[str, Any]]:
    """A message's content (text or OpenAI-style parts) as Anthropic content blocks."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    out = []
    for part in content:
        if not isinstance(part, Mapping):
            raise ConfigError(f"messages[{position}] has a content part that is not a dict")
        kind = part.get("type")
        if kind == "text":
            if part.get("text"):
                out.append(dict(part))
        elif kind == "image_url":
            out.append(_image(part, position))
        elif kind == "input_audio":
            raise ConfigError(f"messages[{position}]: Anthropic does not take audio input")
        else:
            out.append(dict(part))  # already an Anthropic block (image, document, …)
    return out


def _image(part: Mapping[str, Any], position: int) -> dict[str, Any]:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, Mapping) else image
    if not isinstance(url, str):
        raise ConfigError(f"messages[{position}] has an image_url part without a url")
    source: dict[str, Any]
    if url.startswith("data:"):
        header, comma, data = url[5:].partition(",")
        media_type, *rest = header.split(";")
        if not comma or not media_type or "base64" not in rest:
            raise ConfigError(
                f"messages[{position}]: an image data: URL must look like "
                "'data:image/png;base64,<data>'"
            )
        source = {"type": "base64", "media_type": media_type, "data": data}
    elif url.startswith(("http://", "https://")):
        source = {"type": "url", "url": url}
    else:
        raise ConfigError(
            f"messages[{position}]: an image URL must be http(s):// or a base64 data: URL"
        )
    block: dict[str, Any] = {"type": "image", "source": source}
    if "cache_control" in part:
        block["cache_control"] = part["cache_control"]
    return block


def _assistant_blocks(msg: Mapping[str, Any], position: int) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    thinking = msg.get("reasoning_content")
    signature = msg.get("reasoning_signature")
    # Anthropic verifies the signature of replayed thinking: without one, leave it out.
    if isinstance(thinking, str) and thinking and isinstance(signature, str) and signature:
        blocks.append({"type": "thinking", "thinking": thinking, "signature": signature})
    blocks.extend(_blocks(msg.get("content"), position))
    for call in msg.get("tool_calls") or ():
        blocks.append(_tool_use(call, position))
    return blocks


def _tool_use(call: Any, position: int) -> dict[str, Any]:
    fn = call.get("function") if isinstance(call, Mapping) else None
    if not isinstance(fn, Mapping) or not call.get("id") or not fn.get("name"):
        raise ConfigError(
            f"messages[{position}].tool_calls entries need 'id' and 'function': {{'name', "
            "'arguments'}}"
        )
    arguments = fn.get("arguments") or "{}"
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except ValueError:
            raise ConfigError(
                f"messages[{position}]: the arguments of tool call {call['id']!r} are not JSON"
            ) from None
    if not isinstance(arguments, dict):
        raise ConfigError(
            f"messages[{position}]: the arguments of tool call {call['id']!r} must be an object"
        )
    return {"type": "tool_use", "id": call["id"], "name": fn["name"], "input": arguments}


def _tool_result(msg: Mapping[str, Any], position: int) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": msg["tool_call_id"]}
    content = msg.get("content")
    if isinstance(content, list):
        content = _blocks(content, position)
    if content:
        block["content"] = content
    if msg.get("is_error"):
        block["is_error"] = True
    return block


def _tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    fn = tool["function"]
    out: dict[str, Any] = {"name": fn["name"]}
    if fn.get("description"):
        out["description"] = fn["description"]
    out["input_schema"] = fn.get("parameters") or {"type": "object", "properties": {}}
    if "cache_control" in tool:
        out["cache_control"] = tool["cache_control"]
    return out


def _tool_choice(choice: Any) -> dict[str, Any]:
    if isinstance(choice, str) and choice in _TOOL_CHOICES:
        return {"type": _TOOL_CHOICES[choice]}
    if isinstance(choice, Mapping):
        kind = choice.get("type")
        fn = choice.get("function")
        if kind == "function" and isinstance(fn, Mapping) and isinstance(fn.get("name"), str):
            return {"type": "tool", "name": fn["name"]}
        if kind in _NATIVE_TOOL_CHOICES:
            return dict(choice)  # already Anthropic's shape
    raise ConfigError(
        "tool_choice must be 'auto', 'required', 'none' or "
        f"{{'type': 'function', 'function': {{'name': ...}}}}, got {choice!r}"
    )


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
            if isinstance(block.get("thinking"), str):
                thinking.append(block["thinking"])
            if isinstance(block.get("signature"), str) and block["signature"]:
                signature = block["signature"]
        elif kind == "tool_use":
            call_id, tool, arguments = block.get("id"), block.get("name"), block.get("input")
            if not isinstance(call_id, str) or not isinstance(tool, str):
                raise bad_response(name, "a tool_use block has no 'id' or 'name'", data)
            text = json.dumps(arguments, ensure_ascii=False) if arguments else ""
            calls.append(make_tool_call(call_id, tool, text))
        # redacted_thinking and server-tool blocks stay in `raw`.
    model, reply_id = data.get("model"), data.get("id")
    return ChatResponse(
        text="".join(texts),
        finish_reason=finish_reason(data.get("stop_reason")),
        usage=parse_usage(data.get("usage")),
        tool_calls=tuple(calls),
        model=model if isinstance(model, str) else None,
        id=reply_id if isinstance(reply_id, str) else None,
        request_id=request_id,
        reasoning="".join(thinking) or None,
        reasoning_signature=signature,
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
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise bad_response(provider.name, "no 'data' list in the models reply", data)
    out = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise bad_response(provider.name, "a model entry has no 'id'", data)
        out.append(ModelInfo(id=item["id"], created=_epoch(item.get("created_at")), raw=item))
    return out


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
