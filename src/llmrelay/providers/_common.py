"""Small helpers shared by the adapters: defensive field access and tool-call assembly."""

from __future__ import annotations

import json
from typing import Any

from .._exceptions import ResponseError
from .._types import ToolCall


def bad_response(provider: str, what: str, data: Any = None) -> ResponseError:
    """The error for a 2xx body that does not have the shape the provider documents."""
    return ResponseError(
        f"{provider} returned an unexpected response: {what}", provider=provider, body=data
    )


def as_int(value: Any) -> int:
    """Token counts: ints pass, anything else (None, strings) counts as 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


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
