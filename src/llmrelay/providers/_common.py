"""Helpers the adapters share: defensive field access, stream-event decoding, tool calls and
tool choices, data: URLs, model lists and the error-type → status table."""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_to_bytes

from .._exceptions import ConfigError, ResponseError
from .._json import loads
from .._types import ChatResponse, Choice, ToolCall, Usage, reply_of_head

# Error `type`/`code` names that arrive without an HTTP status of their own (an error event in a
# 200 stream, an error object as a 200 body), and the status each is documented with. OpenAI's
# and Anthropic's names, which OpenAI-compatible services reuse.
ERROR_TYPE_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "conflict_error": 409,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "rate_limit_exceeded": 429,
    "insufficient_quota": 429,
    "api_error": 500,
    "server_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
    "overloaded": 529,
}


def bad_response(provider: str, what: str, data: Any = None) -> ResponseError:
    """The error for a 2xx body that does not have the shape the provider documents."""
    return ResponseError(
        f"{provider} returned an unexpected response: {what}", provider=provider, body=data
    )


def load_event(provider: str, data: str) -> dict[str, Any]:
    """One stream event's JSON object; a `ResponseError` when it is not one."""
    try:
        obj = loads(data)
    except ValueError:
        raise bad_response(provider, "a stream event is not JSON", data) from None
    if type(obj) is not dict:
        raise bad_response(provider, "a stream event is not a JSON object", obj)
    return obj


def as_int(value: Any) -> int:
    """Token counts: ints pass, anything else (None, strings) counts as 0."""
    if type(value) is int:  # what JSON gives: one check instead of two
        return value
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def str_or_none(value: Any) -> str | None:
    """A field the unified types hold as text: strings pass, anything else is `None`."""
    return value if isinstance(value, str) else None


def arguments_text(value: Any) -> str | None:
    """A tool call's arguments as JSON text: a string passes, an object (some servers send
    one) is encoded, a missing value is ``""``; anything else is `None` (malformed)."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, Mapping):
        return json.dumps(value, ensure_ascii=False)
    return None


def parse_arguments(arguments: str) -> Any:
    """Decode a tool call's JSON arguments once; invalid JSON gives `None` (the text is kept)."""
    if not arguments:
        return {}
    try:
        return json.loads(arguments)
    except ValueError:
        return None


def make_tool_call(call_id: str, name: str, arguments: str) -> ToolCall:
    return ToolCall(
        id=call_id,
        name=name,
        arguments=arguments or "{}",
        parsed_arguments=parse_arguments(arguments),
    )


def error_message(body: Any) -> tuple[str, str | None]:
    """(message, code) from the common `{"error": {"message", "type"|"code"|"status"}}` shapes."""
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            message = err.get("message")
            code = err.get("type") or err.get("code") or err.get("status")
            return (
                str(message) if message is not None else json.dumps(err)[:500],
                str(code) if code is not None else None,
            )
        if isinstance(err, str):
            return err, None
    if isinstance(body, str | bytes):
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        return text[:500], None
    return "no error message", None


def model_entries(
    provider: str, data: Any, list_key: str, id_key: str
) -> list[tuple[str, dict[str, Any]]]:
    """(id, entry) for each entry of a model-list reply ``{list_key: [{id_key: ...}, ...]}``."""
    items = data.get(list_key) if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise bad_response(provider, f"no {list_key!r} list in the models reply", data)
    out = []
    for item in items:
        model_id = item.get(id_key) if isinstance(item, dict) else None
        if not isinstance(model_id, str):
            raise bad_response(provider, f"a model entry has no {id_key!r}", data)
        out.append((model_id, item))
    return out


def vector(provider: str, value: Any, data: Any) -> list[float]:
    """One embedding: a list of numbers, or (OpenAI's ``encoding_format: "base64"``) the
    base64 of little-endian float32s."""
    if isinstance(value, list):
        return list(value)
    if isinstance(value, str):
        try:
            raw = base64.b64decode(value, validate=True)
            return list(struct.unpack(f"<{len(raw) // 4}f", raw))
        except (ValueError, struct.error):
            pass
    raise bad_response(provider, "an embedding is not a list of numbers", data)


# -- request side -------------------------------------------------------------------------------


def function_spec(tool: Mapping[str, Any]) -> dict[str, Any]:
    """``name`` and (when given) ``description`` of an OpenAI-style tool; `build_params`
    checked that it has a function with a name."""
    fn = tool["function"]
    out: dict[str, Any] = {"name": fn["name"]}
    if fn.get("description"):
        out["description"] = fn["description"]
    return out


def forced_function(choice: Any) -> str | None:
    """The function name of ``{"type": "function", "function": {"name": ...}}``, else `None`."""
    if not isinstance(choice, Mapping) or choice.get("type", "function") != "function":
        return None
    fn = choice.get("function")
    name = fn.get("name") if isinstance(fn, Mapping) else None
    return name if isinstance(name, str) else None


def bad_tool_choice(choice: Any) -> ConfigError:
    return ConfigError(
        "tool_choice must be 'auto', 'required', 'none' or "
        f"{{'type': 'function', 'function': {{'name': ...}}}}, got {choice!r}"
    )


def data_url(url: str, position: int) -> tuple[str, str]:
    """(media type, base64 data) of a ``data:`` URL; percent-encoded data is base64-encoded
    (RFC 2397). The media type is ``""`` when the URL names none."""
    header, comma, payload = url.removeprefix("data:").partition(",")
    if not comma:
        raise ConfigError(
            f"messages[{position}] has a malformed data: URL (expected "
            "'data:image/png;base64,<data>')"
        )
    media_type, _, encoding = header.partition(";")
    if not encoding.endswith("base64"):
        payload = base64.b64encode(unquote_to_bytes(payload)).decode("ascii")
    return media_type, payload


def _choice_index(choice: Choice) -> int:
    return choice.index


def reply_of_choices(
    choices: list[Choice],
    *,
    usage: Usage | None = None,
    model: str | None = None,
    id: str | None = None,
    request_id: str | None = None,
    provider: str | None = None,
    raw: Any = None,
) -> ChatResponse:
    """The reply whose choices these are (sorted by index here): its own text, finish reason,
    tool calls and reasoning are choice 0's; the rest is the whole reply's."""
    ordered = tuple(choices) if len(choices) == 1 else tuple(sorted(choices, key=_choice_index))
    return reply_of_head(ordered, usage, model, id, request_id, provider, raw)
