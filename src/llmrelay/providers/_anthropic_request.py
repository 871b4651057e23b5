"""Anthropic Messages, the request side: OpenAI-shaped messages and named params → a body.

The rules, in the order `build_body` applies them:

1. ``system``/``developer`` messages (wherever they are) are lifted to the top-level
   ``system`` field: a string when it is one plain text, else text blocks.
2. Consecutive turns of the same role are merged (Anthropic wants user/assistant to
   alternate); ``tool`` messages become ``tool_result`` blocks in a user turn.
3. An assistant turn's ``tool_calls`` become ``tool_use`` blocks. Its reasoning leads the turn:
   the ``reasoning_blocks`` of a replayed reply (`Message.reasoning_blocks`) become its
   ``thinking`` and ``redacted_thinking`` blocks, in order, each with its own signature; a turn
   without them sends ``reasoning_content`` with ``reasoning_signature`` as one ``thinking``
   block. Anthropic verifies the signature of replayed thinking, so unsigned reasoning is
   left out.
4. ``image_url`` parts become ``image`` blocks (``data:`` URLs as base64, http(s) URLs by URL);
   blocks already in Anthropic's shape (``image``, ``document``, …) pass through unchanged.
5. ``max_tokens`` is required: the preset's ``default_max_tokens`` when the call gives none.
   ``stop`` becomes ``stop_sequences`` (a str in a list of one); tools and ``tool_choice`` are translated;
   ``temperature``/``top_p`` are refused from API version 2026-10-21 on, which rejects them;
   ``n`` above 1 is refused (a request gets one reply; ``n=1`` is left out);
   `extra_body` is merged last.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .._exceptions import ConfigError
from .._request import ChatRequest
from .._types import REASONING_BLOCKS_KEY, ReasoningBlock
from ._common import bad_tool_choice, data_url, forced_function, function_spec

# Anthropic requires `max_tokens`; this is sent when the call gives none.
ANTHROPIC_DEFAULT_MAX_TOKENS = 4096
ANTHROPIC_VERSION = "2023-06-01"
# The first `anthropic-version` that answers 400 to temperature/top_p/top_k, even at defaults.
_NO_SAMPLING_SINCE = "2026-10-21"
_SAMPLING = ("temperature", "top_p")
_TOOL_CHOICES = {"auto": "auto", "required": "any", "any": "any", "none": "none"}
_NATIVE_TOOL_CHOICES = frozenset({"auto", "any", "tool", "none"})


def build_body(name: str, options: Mapping[str, Any], request: ChatRequest) -> dict[str, Any]:
    """The ``POST /v1/messages`` body for `request`; `options` are the preset's."""
    params = request.params
    _check_params(name, options, params)
    system, messages = translate_messages(request.messages)
    if not messages:
        raise ConfigError(f"{name} needs at least one user or assistant message besides system")
    max_tokens = params.get("max_tokens") or options.get(
        "default_max_tokens", ANTHROPIC_DEFAULT_MAX_TOKENS
    )
    body: dict[str, Any] = {"model": request.model, "max_tokens": max_tokens}
    if system:
        only = system[0]
        body["system"] = only["text"] if len(system) == 1 and _plain_text(only) else system
    body["messages"] = messages
    for key in _SAMPLING:
        if key in params:
            body[key] = params[key]
    if "stop" in params:
        stop = params["stop"]
        body["stop_sequences"] = [stop] if isinstance(stop, str) else stop
    if "tools" in params:
        body["tools"] = [_tool(tool) for tool in params["tools"]]
    if "tool_choice" in params:
        body["tool_choice"] = _tool_choice(params["tool_choice"])
    output = _output_config(name, request)
    if output is not None:
        body["output_config"] = output
    if request.stream:
        body["stream"] = True
    if request.extra_body:
        body.update(request.extra_body)
    return body


def _output_config(name: str, request: ChatRequest) -> dict[str, Any] | None:
    """Structured output: ``output_config.format`` with the JSON Schema, in the strict form
    (closed objects, every property required) and the subset of keywords Anthropic takes
    (`_schema.anthropic_schema`)."""
    fmt = request.params.get("response_format")
    if fmt is None or (isinstance(fmt, Mapping) and fmt.get("type") == "text"):
        return None
    spec = request.output
    schema = spec.sent_schema() if spec is not None else None
    if schema is None and isinstance(fmt, Mapping) and fmt.get("type") == "json_schema":
        inner = fmt.get("json_schema")
        schema = inner.get("schema") if isinstance(inner, Mapping) else None
    if not isinstance(schema, Mapping):
        raise ConfigError(
            f"{name} has no JSON mode without a schema: pass response_format= a pydantic "
            "model, a dataclass, a TypedDict or a JSON Schema dict"
        )
    from .._schema import anthropic_schema

    return {"format": {"type": "json_schema", "schema": anthropic_schema(schema)}}


def _check_params(name: str, options: Mapping[str, Any], params: Mapping[str, Any]) -> None:
    if "seed" in params:
        raise ConfigError(f"{name} has no seed parameter; leave seed out")
    if "logprobs" in params:
        raise ConfigError(f"{name} sends no token log probabilities; leave logprobs out")
    if params.get("n", 1) != 1:
        raise ConfigError(
            f"{name} gives one choice per request (no n); send {params['n']} requests instead, "
            "e.g. with client.batch([prompt] * n)"
        )
    version = str(options.get("version") or ANTHROPIC_VERSION)
    given = [key for key in _SAMPLING if key in params]
    if given and version >= _NO_SAMPLING_SINCE:
        raise ConfigError(
            f"{name} API version {version} rejects {' and '.join(given)}; leave them out, or "
            f"use anthropic.preset(version={ANTHROPIC_VERSION!r})"
        )


def translate_messages(
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
        media_type, data = data_url(url, position)
        if not media_type:
            raise ConfigError(
                f"messages[{position}]: an image data: URL must name its media type, as in "
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
    replayed = msg.get(REASONING_BLOCKS_KEY)
    if replayed:
        blocks.extend(_thinking_blocks(replayed, position))
    else:
        thinking = msg.get("reasoning_content")
        signature = msg.get("reasoning_signature")
        if isinstance(thinking, str) and thinking and isinstance(signature, str) and signature:
            blocks.append({"type": "thinking", "thinking": thinking, "signature": signature})
    blocks.extend(_blocks(msg.get("content"), position))
    for call in msg.get("tool_calls") or ():
        blocks.append(_tool_use(call, position))
    return blocks


def _thinking_blocks(replayed: Any, position: int) -> list[dict[str, Any]]:
    """``reasoning_blocks`` (`ReasoningBlock`s or their dicts) → ``thinking`` and
    ``redacted_thinking`` blocks, in order; unsigned thinking is left out."""
    if not isinstance(replayed, list | tuple):
        raise ConfigError(f"messages[{position}].{REASONING_BLOCKS_KEY} must be a list")
    out: list[dict[str, Any]] = []
    for item in replayed:
        if isinstance(item, ReasoningBlock):
            text, signature, redacted = item.text, item.signature, item.redacted
        elif isinstance(item, Mapping):
            text = item.get("text", "")
            signature, redacted = item.get("signature"), item.get("redacted")
        else:
            raise ConfigError(
                f"messages[{position}].{REASONING_BLOCKS_KEY} holds a {type(item).__name__}; "
                "expected ReasoningBlock or dict items"
            )
        if not all(isinstance(v, str | None) for v in (text, signature, redacted)):
            raise ConfigError(
                f"messages[{position}].{REASONING_BLOCKS_KEY}: text, signature and redacted "
                "must be strings"
            )
        if redacted:
            out.append({"type": "redacted_thinking", "data": redacted})
        elif signature:
            out.append({"type": "thinking", "thinking": text or "", "signature": signature})
    return out


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
    out = function_spec(tool)
    out["input_schema"] = tool["function"].get("parameters") or {
        "type": "object",
        "properties": {},
    }
    if "cache_control" in tool:
        out["cache_control"] = tool["cache_control"]
    return out


def _tool_choice(choice: Any) -> dict[str, Any]:
    if isinstance(choice, str) and choice in _TOOL_CHOICES:
        return {"type": _TOOL_CHOICES[choice]}
    name = forced_function(choice)
    if name is not None:
        return {"type": "tool", "name": name}
    if isinstance(choice, Mapping) and choice.get("type") in _NATIVE_TOOL_CHOICES:
        return dict(choice)  # already Anthropic's shape
    raise bad_tool_choice(choice)
