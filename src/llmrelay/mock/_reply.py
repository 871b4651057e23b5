"""What the echo model says besides echoing: tool calls, JSON for a schema, stop sequences.

Each wire family reads its own request fields into a family-neutral `Ask`; `content_of` then
picks the reply text (the echo, a JSON document, or a tool call's arguments) and the wire family
lays it out in its own shapes. Rules (documented in the `llmrelay.mock` docstring):

- Tools: a tool is called when the request forces one (OpenAI ``tool_choice`` ``"required"`` or
  a named function, Anthropic ``{"type": "any"}`` / ``{"type": "tool"}``, Gemini mode ``ANY``);
  with ``auto`` (or no choice) only when the last user message names a tool and the conversation
  does not end with a tool result. Forced without a name, the first tool the last user message
  names is called, else the first tool. Its arguments are an instance of its parameter schema.
- Structured output: the reply is an instance of the schema (`instance_of`), as indented-free
  JSON with spaces after separators so a stream splits it into word pieces; JSON mode without a
  schema answers ``{"echo": "<last user text>"}``.
- Stop sequences cut the reply before the first one found (never a tool call's arguments).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from ._common import ECHO_PREFIX, JSONObject, RequestError
from ._schema_instance import instance_of

ToolMode: TypeAlias = Literal["none", "auto", "required"]
MAX_STOP_SEQUENCES = 16  # more than any service accepts; beyond it the request is wrong


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool the request offers: its name and the JSON Schema of its arguments."""

    name: str
    schema: Any


@dataclass(frozen=True, slots=True, kw_only=True)
class Ask:
    """The family-neutral part of a generation request."""

    user_text: str
    tools: tuple[ToolSpec, ...] = ()
    tool_mode: ToolMode = "auto"
    tool_name: str | None = None  # a forced tool
    answered: bool = False  # the conversation ends with a tool result
    schema: Any = None  # the JSON Schema the reply must follow
    json_mode: bool = False
    stop: tuple[str, ...] = ()


def tool_to_call(ask: Ask) -> ToolSpec | None:
    """The tool the echo model calls for this request, or `None` for a text reply."""
    if not ask.tools or ask.tool_mode == "none":
        return None
    if ask.tool_name is not None:
        for tool in ask.tools:
            if tool.name == ask.tool_name:
                return tool
        raise RequestError(f"tool_choice names {ask.tool_name!r}, which is not in tools")
    lowered = ask.user_text.lower()
    named = next((tool for tool in ask.tools if tool.name.lower() in lowered), None)
    if ask.tool_mode == "required":
        return named or ask.tools[0]
    return None if ask.answered else named


def content_of(ask: Ask, tool: ToolSpec | None) -> str:
    """The reply text: a tool call's arguments, a schema instance, JSON mode's object, or the echo."""
    if tool is not None:
        return _json(instance_of(_object_schema(tool.schema), ask.user_text))
    if ask.schema is not None:
        return _json(instance_of(ask.schema, ECHO_PREFIX + ask.user_text))
    if ask.json_mode:
        return _json({"echo": ask.user_text})
    return ECHO_PREFIX + ask.user_text


def stop_list(value: Any, name: str) -> tuple[str, ...]:
    """A stop field (one string or a list of strings) as a tuple; 400 when malformed."""
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) and item for item in items):
        raise RequestError(f"{name} must be a non-empty string or a list of them")
    if len(items) > MAX_STOP_SEQUENCES:
        raise RequestError(f"{name} takes at most {MAX_STOP_SEQUENCES} sequences")
    return tuple(items)


def schema_of(value: Any, what: str) -> JSONObject:
    """A JSON Schema object; 400 when it is not one."""
    if not isinstance(value, dict):
        raise RequestError(f"{what} must be a JSON Schema object")
    return value


def _object_schema(schema: Any) -> Any:
    """A tool's parameter schema, read as an object schema: arguments are always an object."""
    if not isinstance(schema, dict):
        return {"type": "object"}
    if not any(key in schema for key in ("type", "$ref", "anyOf", "oneOf", "allOf")):
        return {**schema, "type": "object"}
    return schema


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
