"""Each wire family's tool, structured-output and stop fields, read into a neutral `Ask`."""

from __future__ import annotations

import re
from typing import Any

from ._common import JSONObject, RequestError
from ._reply import Ask, ToolMode, ToolSpec, schema_of, stop_list

_SNAKE = re.compile(r"([A-Z])")
_GEMINI_MODES: dict[str, ToolMode] = {
    "AUTO": "auto",
    "ANY": "required",
    "VALIDATED": "auto",
    "NONE": "none",
    "MODE_UNSPECIFIED": "auto",
}
_ANTHROPIC_MODES: dict[str, ToolMode] = {"any": "required", "tool": "required", "none": "none"}


def openai_ask(payload: JSONObject, user_text: str) -> Ask:
    """Chat Completions: ``tools``/``tool_choice``, ``response_format``, ``stop``."""
    tools = tuple(
        ToolSpec(str(spec["function"].get("name", "")), spec["function"].get("parameters"))
        for spec in _list(payload.get("tools"), "tools")
        if isinstance(spec, dict) and isinstance(spec.get("function"), dict)
    )
    mode: ToolMode = "auto"
    name = None
    choice = payload.get("tool_choice")
    if choice in ("none", "auto", "required"):
        mode = choice
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        name = choice["function"].get("name")
        mode = "required"
    elif choice is not None:
        raise RequestError("tool_choice must be 'none', 'auto', 'required' or a named function")
    messages = payload.get("messages") or []
    answered = (
        bool(messages) and isinstance(messages[-1], dict) and messages[-1].get("role") == "tool"
    )
    schema, json_mode = None, False
    fmt = payload.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema")
        schema = schema_of(
            spec.get("schema", {}) if isinstance(spec, dict) else None, "json_schema"
        )
    elif isinstance(fmt, dict) and fmt.get("type") == "json_object":
        json_mode = True
    return Ask(
        user_text=user_text,
        tools=tools,
        tool_mode=mode,
        tool_name=name,
        answered=answered,
        schema=schema,
        json_mode=json_mode,
        stop=stop_list(payload.get("stop"), "stop"),
    )


def anthropic_ask(payload: JSONObject, user_text: str) -> Ask:
    """Messages: ``tools``/``tool_choice``, ``output_config.format`` (or the older
    ``output_format``), ``stop_sequences``."""
    tools = tuple(
        ToolSpec(str(spec.get("name", "")), spec["input_schema"])
        for spec in _list(payload.get("tools"), "tools")
        if isinstance(spec, dict) and isinstance(spec.get("input_schema"), dict)
    )
    mode: ToolMode = "auto"
    name = None
    choice = payload.get("tool_choice")
    if isinstance(choice, dict):
        kind = choice.get("type")
        mode = _ANTHROPIC_MODES.get(str(kind), "auto")
        name = choice.get("name") if kind == "tool" else None
    messages = payload.get("messages") or []
    last = messages[-1] if messages and isinstance(messages[-1], dict) else {}
    content = last.get("content")
    answered = isinstance(content, list) and any(
        isinstance(block, dict) and block.get("type") == "tool_result" for block in content
    )
    config = payload.get("output_config")
    fmt = config.get("format") if isinstance(config, dict) else payload.get("output_format")
    schema = None
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        schema = schema_of(fmt.get("schema"), "output_config.format.schema")
    return Ask(
        user_text=user_text,
        tools=tools,
        tool_mode=mode,
        tool_name=name,
        answered=answered,
        schema=schema,
        stop=stop_list(payload.get("stop_sequences"), "stop_sequences"),
    )


def gemini_ask(payload: JSONObject, user_text: str, config: JSONObject) -> Ask:
    """generateContent: ``tools[].functionDeclarations``, ``toolConfig``, and the
    ``generationConfig`` fields ``responseMimeType``/``responseJsonSchema``/``responseSchema``
    and ``stopSequences``. Like the service (proto JSON), snake_case names are read too."""
    tools = tuple(
        ToolSpec(
            str(decl.get("name", "")),
            _schema(gemini_field(decl, "parametersJsonSchema", "parameters")),
        )
        for group in _list(payload.get("tools"), "tools")
        if isinstance(group, dict)
        for decl in _list(gemini_field(group, "functionDeclarations"), "functionDeclarations")
        if isinstance(decl, dict)
    )
    calling = gemini_field(gemini_field(payload, "toolConfig") or {}, "functionCallingConfig") or {}
    mode = _GEMINI_MODES.get(str(calling.get("mode", "AUTO")).upper(), "auto")
    allowed = gemini_field(calling, "allowedFunctionNames")
    if isinstance(allowed, list) and allowed:
        tools = tuple(tool for tool in tools if tool.name in allowed)
    contents = payload.get("contents") or []
    last = contents[-1] if contents and isinstance(contents[-1], dict) else {}
    parts = last.get("parts")
    answered = isinstance(parts, list) and any(
        isinstance(part, dict) and gemini_field(part, "functionResponse") is not None
        for part in parts
    )
    schema = gemini_field(config, "responseJsonSchema", "responseSchema")
    return Ask(
        user_text=user_text,
        tools=tools,
        tool_mode=mode,
        answered=answered,
        schema=schema_of(schema, "responseJsonSchema") if schema is not None else None,
        json_mode=gemini_field(config, "responseMimeType") == "application/json",
        stop=stop_list(gemini_field(config, "stopSequences"), "stopSequences"),
    )


def gemini_field(obj: Any, *names: str) -> Any:
    """The first of the lowerCamel `names` present in `obj`, also under its snake_case name."""
    if not isinstance(obj, dict):
        return None
    for name in names:
        for key in (name, _SNAKE.sub(r"_\1", name).lower()):
            if obj.get(key) is not None:
                return obj[key]
    return None


def _schema(value: Any) -> Any:
    """A function's parameter schema; a function without one takes no arguments (``{}``)."""
    return value if value is not None else {"type": "object"}


def _list(value: Any, name: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise RequestError(f"{name} must be a list")
    return value
