"""Structured outputs: `response_format=` a type or a JSON Schema, `reply.parsed` its value.

`output_spec()` reads what the caller gave (a pydantic model, a dataclass, a TypedDict, a JSON
Schema dict, or an OpenAI-shaped ``{"type": "json_schema" | "json_object", ...}`` dict) into an
`OutputSpec`: the schema to send and how to turn the reply's text into a value. Each wire family
sends the schema its own way (see the adapters); `finish_reply()` fills `reply.parsed`.

Refusals are not invalid output: a reply the model refused (OpenAI's ``refusal``, a
``content_filter`` finish such as Anthropic's ``refusal`` stop reason) keeps ``parsed=None``
and says why in `reply.refusal`; no error is raised. Text that is not JSON, or JSON that does
not match the schema, is an `OutputValidationError`.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from typing import Any

from ._exceptions import ConfigError, OutputValidationError
from ._schema import (
    JSONSchema,
    _Invalid,
    build,
    drop_added_nulls,
    inline_refs,
    is_pydantic_model,
    is_typeddict,
    schema_of,
    strict_schema,
    validate,
)
from ._types import ChatResponse

_WIRE_KINDS = ("text", "json_object", "json_schema")
_JSON_TYPES = {"object", "array", "string", "number", "integer", "boolean", "null"}
_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_-]")
_FENCE = re.compile(r"^\s*```(?:json|JSON)?\s*\n(.*?)\n?```\s*$", re.DOTALL)
_MAX_NAME = 64  # OpenAI's limit on json_schema.name


class OutputSpec:
    """What a `response_format=` asks for: the JSON Schema (`schema`, as written; `strict`,
    the form strict modes accept, or `None` when the schema cannot be made strict, e.g. a
    free-form object), its `name`, and the type to build (`target`; `None` gives the dict)."""

    __slots__ = ("json_only", "name", "schema", "strict", "target")

    def __init__(
        self,
        *,
        name: str,
        schema: JSONSchema | None,
        target: Any = None,
        strict: bool = True,
        json_only: bool = False,
    ) -> None:
        self.name = name
        self.schema = schema
        self.target = target
        self.json_only = json_only  # json_object: any JSON value, no schema
        self.strict: JSONSchema | None = None
        if schema is not None and strict and _can_be_strict(schema):
            self.strict = strict_schema(schema)

    def wire_format(self) -> dict[str, Any]:
        """The OpenAI Chat Completions ``response_format`` for this spec."""
        if self.schema is None:
            return {"type": "json_object"}
        spec: dict[str, Any] = {"name": self.name, "schema": self.strict or self.schema}
        spec["strict"] = self.strict is not None
        return {"type": "json_schema", "json_schema": spec}

    def sent_schema(self) -> JSONSchema | None:
        """The schema as a strict-mode service is sent it."""
        return self.strict or self.schema

    def parse(self, text: str) -> Any:
        """The value of a reply's text; raises `_Invalid` with the reason."""
        match = _FENCE.match(text)  # a model asked in the prompt may fence its JSON
        if match:
            text = match.group(1)
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise _Invalid(f"the reply is not JSON ({exc})") from None
        if self.schema is None:
            return data
        if self.strict is not None:
            data = drop_added_nulls(data, self.schema, self.schema)
        if is_pydantic_model(self.target):
            return pydantic_validate(self.target, data)
        validate(data, self.schema)
        return data if self.target is None else build(self.target, data)


def _can_be_strict(schema: Any) -> bool:
    """Whether strict mode can express `schema`: no free-form object (a dict of any keys) and
    no schema-less value anywhere."""
    if isinstance(schema, list):
        return all(_can_be_strict(item) for item in schema)
    if not isinstance(schema, dict):
        return True
    if schema == {}:
        return False
    if schema.get("type") == "object" and "properties" not in schema:
        return False
    if isinstance(schema.get("additionalProperties"), dict):
        return False
    for key, value in schema.items():
        if key in ("properties", "$defs", "definitions") and isinstance(value, dict):
            if not all(_can_be_strict(sub) for sub in value.values()):
                return False
        elif key in ("items", "anyOf", "allOf", "oneOf", "prefixItems") and not _can_be_strict(
            value
        ):
            return False
    return True


def _name(raw: Any) -> str:
    name = _NAME_CHARS.sub("_", raw if isinstance(raw, str) and raw else "output")
    return name[:_MAX_NAME]


def output_spec(response_format: Any) -> OutputSpec | None:
    """The spec of a `response_format=` argument (`None` for ``{"type": "text"}``); a
    `ConfigError` for anything else."""
    fmt = response_format
    if isinstance(fmt, dict) and fmt.get("type") in _WIRE_KINDS:
        kind = fmt["type"]
        if kind == "text":
            return None
        if kind == "json_object":
            return OutputSpec(name="output", schema=None, json_only=True)
        inner = fmt.get("json_schema")
        schema = inner.get("schema") if isinstance(inner, dict) else None
        if not isinstance(schema, dict):
            raise ConfigError(
                "response_format {'type': 'json_schema'} needs "
                "'json_schema': {'name': ..., 'schema': {...}}"
            )
        # Sent as given; the reply is checked against the schema as written.
        name = inner.get("name") if isinstance(inner, dict) else None
        return OutputSpec(name=_name(name), schema=schema, strict=False)
    if isinstance(fmt, dict):
        kind = fmt.get("type")
        kinds = kind if isinstance(kind, list) else [kind]
        if kind is not None and not set(kinds) <= _JSON_TYPES:
            raise ConfigError(
                f"response_format {fmt!r} is neither a JSON Schema nor one of "
                "{'type': 'text' | 'json_object' | 'json_schema', ...}"
            )
        return OutputSpec(name=_name(fmt.get("title")), schema=fmt)
    if is_pydantic_model(fmt):
        return OutputSpec(
            name=_name(fmt.__name__), schema=pydantic_schema(fmt, top=True), target=fmt
        )
    if (dataclasses.is_dataclass(fmt) and isinstance(fmt, type)) or is_typeddict(fmt):
        schema = schema_of(fmt)
        return OutputSpec(name=_name(fmt.__name__), schema=schema, target=fmt)
    raise ConfigError(
        "response_format takes a pydantic model, a dataclass, a TypedDict, a JSON Schema dict "
        f"or {{'type': 'json_object' | 'json_schema', ...}}; got {fmt!r}"
    )


def pydantic_schema(model: Any, *, top: bool = False) -> JSONSchema:
    """A pydantic model's JSON Schema (``$defs`` kept at the top level, inlined when nested)."""
    try:
        schema: JSONSchema = model.model_json_schema()
    except Exception as exc:  # pydantic's own error for a type it cannot describe
        raise ConfigError(f"cannot make a JSON Schema of {model.__name__}: {exc}") from None
    return schema if top else inline_refs(schema)


def pydantic_validate(model: Any, data: Any) -> Any:
    try:
        return model.model_validate(data)
    except Exception as exc:  # pydantic.ValidationError, told apart without importing pydantic
        if type(exc).__name__ != "ValidationError":
            raise
        raise _Invalid(str(exc)) from None


def finish_reply(reply: ChatResponse, spec: OutputSpec) -> ChatResponse:
    """`reply` with `parsed` filled in (or its refusal said), or an `OutputValidationError`."""
    if reply.refusal:
        return reply
    if reply.finish_reason == "content_filter":
        return dataclasses.replace(reply, refusal=reply.text or "the provider withheld the reply")
    try:
        parsed = spec.parse(reply.text)
    except _Invalid as exc:
        cut = (
            " (the reply was cut short: raise max_tokens)"
            if reply.finish_reason == "length"
            else ""
        )
        raise OutputValidationError(
            f"{reply.provider or 'the provider'} replied with output that does not match "
            f"{spec.name}: {exc}{cut}",
            text=reply.text,
            validation_message=str(exc),
            provider=reply.provider,
            request_id=reply.request_id,
            body=reply.raw,
        ) from None
    return dataclasses.replace(reply, parsed=parsed)


def split_response_format(response_format: Any) -> tuple[OutputSpec | None, Any]:
    """(the spec, what to pass on as ``response_format``): a type or a JSON Schema becomes
    the OpenAI-shaped ``json_schema`` format; an OpenAI-shaped dict (``{"type": "json_schema"
    | "json_object" | "text", ...}``) goes on as it was given and its reply is not parsed."""
    if response_format is None:
        return None, None
    if isinstance(response_format, dict) and response_format.get("type") in _WIRE_KINDS:
        output_spec(response_format)  # checked now; sent as given and not parsed, as before
        return None, response_format
    spec = output_spec(response_format)
    return spec, spec.wire_format() if spec is not None else response_format


def finisher(spec: OutputSpec) -> Callable[[ChatResponse], ChatResponse]:
    return lambda reply: finish_reply(reply, spec)


def json_instruction(spec: OutputSpec) -> str:
    """The system-prompt line that asks for JSON where the service has only a JSON mode."""
    if spec.schema is None:
        return "Reply with one JSON object only."
    schema = json.dumps(spec.schema, ensure_ascii=False, separators=(",", ":"))
    return (
        "Reply with one JSON object only, no prose and no code fence, that matches this "
        f"JSON Schema: {schema}"
    )
