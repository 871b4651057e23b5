"""Tools written as plain Python functions, and running the calls a model makes to them.

`tools=[get_weather]` sends the function's schema: its name, the first paragraph of its
docstring, and one property per parameter (type from the hint, description from the
docstring's ``Args:`` section or ``:param name:`` lines; a parameter with a default is
optional). `run_tool_calls()` runs a reply's calls against the functions (sync or async) and
gives the tool messages to append. Nothing more: no loop, no agent.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, get_type_hints

from ._exceptions import ConfigError, OutputValidationError
from ._schema import JSONSchema, _Invalid, build, is_pydantic_model, schema_of, validate
from ._types import ChatResponse, Message, ToolCall

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["function_tool", "run_tool_calls", "run_tool_calls_sync"]

_SECTION = re.compile(
    r"^\s*(Args|Arguments|Parameters|Returns?|Raises|Yields|Examples?|Notes?)\s*:\s*$"
)
_GOOGLE_ARG = re.compile(r"^\s*(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_SPHINX_ARG = re.compile(r"^\s*:param\s+(?:[^:]*\s)?(\w+)\s*:\s*(.*)$")


def function_tool(fn: Callable[..., Any]) -> dict[str, Any]:
    """The OpenAI-shaped tool of a function: ``{"type": "function", "function": {...}}``."""
    name = getattr(fn, "__name__", None)
    if not isinstance(name, str) or not name.isidentifier():
        raise ConfigError(f"a tool function needs a name, got {fn!r}")
    description, arg_docs = _docstring(inspect.getdoc(fn) or "")
    spec: dict[str, Any] = {"name": name, "parameters": parameters_schema(fn, arg_docs)}
    if description:
        spec["description"] = description
    return {"type": "function", "function": spec}


def parameters_schema(
    fn: Callable[..., Any], arg_docs: Mapping[str, str] | None = None
) -> JSONSchema:
    """The JSON Schema of a function's keyword arguments."""
    if arg_docs is None:
        arg_docs = _docstring(inspect.getdoc(fn) or "")[1]
    hints = _hints(fn)
    properties: dict[str, JSONSchema] = {}
    required: list[str] = []
    for param in _parameters(fn):
        prop = schema_of(hints.get(param.name, Any))
        if param.name in arg_docs and "description" not in prop:
            prop["description"] = arg_docs[param.name]
        properties[param.name] = prop
        if param.default is inspect.Parameter.empty:
            required.append(param.name)
    out: JSONSchema = {"type": "object", "properties": properties}
    if required:
        out["required"] = required
    return out


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return get_type_hints(fn, include_extras=True)
    except Exception as exc:  # an annotation that cannot be resolved
        raise ConfigError(f"cannot read the type hints of {fn!r}: {exc}") from None


def _parameters(fn: Callable[..., Any]) -> list[inspect.Parameter]:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"cannot read the signature of {fn!r}: {exc}") from None
    for param in params:
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
            raise ConfigError(
                f"tool function {fn.__name__}: parameter {param.name!r} cannot be passed by "
                "name; a tool's arguments arrive as a JSON object"
            )
    return params


_ARG_SECTIONS = ("args", "arguments", "parameters")


def _docstring(doc: str) -> tuple[str, dict[str, str]]:
    """(the description: the first paragraph before any section, args: name → description),
    from a Google-style (``Args:``) or Sphinx-style (``:param name:``) docstring."""
    description: list[str] = []
    args: dict[str, str] = {}
    section: str | None = None
    current: str | None = None
    entry_indent: int | None = None
    for line in doc.splitlines():
        stripped = line.strip()
        header = _SECTION.match(line)
        sphinx = _SPHINX_ARG.match(line)
        if header:
            section, current, entry_indent = header.group(1).lower(), None, None
        elif sphinx:
            section, current = "sphinx", sphinx.group(1)
            args[current] = sphinx.group(2).strip()
        elif section is None:
            description.append(line)
        elif not stripped:
            continue
        elif section == "sphinx":
            if stripped.startswith(":"):
                current = None
            elif current:
                args[current] = f"{args[current]} {stripped}".strip()
        elif section in _ARG_SECTIONS:
            indent = len(line) - len(line.lstrip())
            if entry_indent is None:
                entry_indent = indent
            arg = _GOOGLE_ARG.match(line)
            if arg and indent <= entry_indent:
                current = arg.group(1).lstrip("*")
                args[current] = arg.group(2).strip()
            elif current:
                args[current] = f"{args[current]} {stripped}".strip()
    first = "\n".join(description).strip().split("\n\n")[0]
    return " ".join(first.split()), args


def tool_specs(tools: Iterable[Any]) -> list[dict[str, Any]]:
    """`tools=` items as dicts: a function becomes its `function_tool`."""
    out = []
    for tool in tools:
        if isinstance(tool, Mapping):
            out.append(dict(tool))
        elif callable(tool):
            out.append(function_tool(tool))
        else:
            raise ConfigError(
                f"tools takes functions or tool dicts, got {type(tool).__name__}: {tool!r}"
            )
    return out


# -- arguments and running ---------------------------------------------------------------------


def parse_arguments(call: ToolCall, into: Any = None) -> Any:
    """See `ToolCall.parse_arguments`."""

    def invalid(problem: str) -> OutputValidationError:
        return OutputValidationError(
            f"the arguments of the call to {call.name!r} {problem}",
            text=call.arguments,
            validation_message=problem,
        )

    try:
        data = json.loads(call.arguments) if call.arguments.strip() else {}
    except ValueError as exc:
        raise invalid(f"are not JSON ({exc})") from None
    if into is None:
        return data
    try:
        if is_pydantic_model(into):
            from ._structured import pydantic_validate

            return pydantic_validate(into, data)
        validate(data, schema_of(into))
    except _Invalid as exc:
        raise invalid(f"do not match {getattr(into, '__name__', into)!r}: {exc}") from None
    return build(into, data)


def _by_name(
    functions: Sequence[Callable[..., Any]] | Mapping[str, Callable[..., Any]],
) -> dict[str, Callable[..., Any]]:
    if isinstance(functions, Mapping):
        return dict(functions)
    out: dict[str, Callable[..., Any]] = {}
    for fn in functions:
        name = getattr(fn, "__name__", None)
        if not isinstance(name, str):
            raise ConfigError(f"a tool function needs a name, got {fn!r}")
        out[name] = fn
    return out


def _calls_of(calls: ChatResponse | Sequence[ToolCall] | ToolCall) -> list[ToolCall]:
    if isinstance(calls, ChatResponse):
        return list(calls.tool_calls)
    if isinstance(calls, ToolCall):
        return [calls]
    return list(calls)


def _prepare(
    call: ToolCall, table: Mapping[str, Callable[..., Any]]
) -> tuple[Callable[..., Any], dict[str, Any]]:
    """The function a call names and its keyword arguments, checked and typed."""
    fn = table.get(call.name)
    if fn is None:
        raise LookupError(
            f"no tool function named {call.name!r} (known: {', '.join(sorted(table))})"
        )
    data = parse_arguments(call)
    if not isinstance(data, dict):
        raise OutputValidationError(
            f"the arguments of the call to {call.name!r} are not a JSON object",
            text=call.arguments,
            validation_message="not a JSON object",
        )
    try:
        validate(data, parameters_schema(fn))
    except _Invalid as exc:
        raise OutputValidationError(
            f"the arguments of the call to {call.name!r} do not match its parameters: {exc}",
            text=call.arguments,
            validation_message=str(exc),
        ) from None
    hints = _hints(fn)
    return fn, {name: build(hints.get(name, Any), value) for name, value in data.items()}


def _content(result: Any) -> str:
    """A tool's return value as the text of its result message."""
    if isinstance(result, str):
        return result
    if is_pydantic_model(type(result)):
        text: str = result.model_dump_json()
        return text
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        result = dataclasses.asdict(result)
    return json.dumps(result, ensure_ascii=False, default=str)


def _message(call: ToolCall, content: str) -> Message:
    return Message(role="tool", content=content, tool_call_id=call.id, name=call.name)


def _failure(call: ToolCall, exc: Exception) -> Message:
    return _message(call, f"Error: {type(exc).__name__}: {exc}")


async def run_tool_calls(
    calls: ChatResponse | Sequence[ToolCall] | ToolCall,
    functions: Sequence[Callable[..., Any]] | Mapping[str, Callable[..., Any]],
    *,
    raise_errors: bool = False,
) -> list[Message]:
    """Run each tool call of a reply (or the calls given) against `functions`, in order, and
    return one tool `Message` per call, to append to the conversation::

        reply = await client.chat(messages, tools=[get_weather])
        messages += [reply.message, *await llmrelay.run_tool_calls(reply, [get_weather])]

    Functions may be sync or async. The arguments are checked against the function's
    parameters and built into their types (dataclasses, pydantic models, enums...). A call to
    an unknown function, bad arguments, or a function that raises gives a result message
    ``"Error: <type>: <message>"`` for the model to read, unless `raise_errors` is true.
    """
    table = _by_name(functions)
    out = []
    for call in _calls_of(calls):
        try:
            fn, kwargs = _prepare(call, table)
            result = fn(**kwargs)
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:
            if raise_errors:
                raise
            out.append(_failure(call, exc))
            continue
        out.append(_message(call, _content(result)))
    return out


def run_tool_calls_sync(
    calls: ChatResponse | Sequence[ToolCall] | ToolCall,
    functions: Sequence[Callable[..., Any]] | Mapping[str, Callable[..., Any]],
    *,
    raise_errors: bool = False,
) -> list[Message]:
    """`run_tool_calls` for sync code (with `llmrelay.Client`): the functions must be sync."""
    table = _by_name(functions)
    out = []
    for call in _calls_of(calls):
        try:
            fn, kwargs = _prepare(call, table)
            if inspect.iscoroutinefunction(fn):
                raise ConfigError(
                    f"tool function {call.name!r} is async: use `await run_tool_calls(...)`"
                )
            result = fn(**kwargs)
        except ConfigError:
            raise
        except Exception as exc:
            if raise_errors:
                raise
            out.append(_failure(call, exc))
            continue
        out.append(_message(call, _content(result)))
    return out
