"""JSON Schema from Python types, a small validator, and building typed values from JSON.

Used by structured outputs (`response_format=SomeType`) and by tools written as plain functions.
pydantic is never imported here: a pydantic model gives its own schema and validates itself
(see `_structured`); dataclasses, TypedDicts, enums, literals, unions and the usual containers
are handled here, so structured outputs work without pydantic installed.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import re
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from ._exceptions import ConfigError

JSONSchema = dict[str, Any]

_PRIMITIVES: dict[type, JSONSchema] = {
    str: {"type": "string"},
    bool: {"type": "boolean"},
    int: {"type": "integer"},
    float: {"type": "number"},
    type(None): {"type": "null"},
    datetime.datetime: {"type": "string", "format": "date-time"},
    datetime.date: {"type": "string", "format": "date"},
}
_SEQUENCES = (list, tuple, set, frozenset, Sequence, typing.List, typing.Tuple)  # noqa: UP006
_MAPPINGS = (dict, Mapping, typing.Dict)  # noqa: UP006


def is_typeddict(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, dict) and hasattr(tp, "__required_keys__")


def is_pydantic_model(tp: Any) -> bool:
    """A pydantic model class, told without importing pydantic (it is never a dependency)."""
    return isinstance(tp, type) and callable(getattr(tp, "model_json_schema", None))


def _hints(tp: Any) -> dict[str, Any]:
    try:
        return get_type_hints(tp, include_extras=True)
    except Exception as exc:  # an annotation naming something that cannot be resolved
        raise ConfigError(f"cannot read the type hints of {tp!r}: {exc}") from None


def schema_of(tp: Any, *, _open: frozenset[int] = frozenset()) -> JSONSchema:
    """The JSON Schema of a type annotation (nested classes inlined; a recursive type is a
    `ConfigError`: inline schemas cannot express it, give a JSON Schema dict instead)."""
    if tp in _PRIMITIVES:
        return dict(_PRIMITIVES[tp])
    if tp is Any or tp is object:
        return {}
    if is_pydantic_model(tp):
        from ._structured import pydantic_schema  # nested model: its schema, $defs inlined

        return pydantic_schema(tp)
    origin = get_origin(tp)
    if origin is typing.Annotated:
        inner, *extra = get_args(tp)
        out = schema_of(inner, _open=_open)
        described = next((e for e in extra if isinstance(e, str)), None)
        if described:
            out["description"] = described
        return out
    if origin is Literal:
        values = list(get_args(tp))
        out = {"enum": values}
        kinds = {_json_type(v) for v in values}
        if len(kinds) == 1:
            out["type"] = kinds.pop()
        return out
    if origin in (Union, types.UnionType):
        members = [schema_of(arg, _open=_open) for arg in get_args(tp)]
        return {"anyOf": members}
    if origin in _SEQUENCES or tp in (list, tuple, set, frozenset):
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            return {
                "type": "array",
                "prefixItems": [schema_of(a, _open=_open) for a in args],
                "minItems": len(args),
                "maxItems": len(args),
            }
        out = {"type": "array"}
        if args:
            out["items"] = schema_of(args[0], _open=_open)
        return out
    if origin in _MAPPINGS or tp is dict:
        args = get_args(tp)
        out = {"type": "object"}
        if len(args) == 2:
            out["additionalProperties"] = schema_of(args[1], _open=_open)
        return out
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        values = [member.value for member in tp]
        out = {"enum": values}
        kinds = {_json_type(v) for v in values}
        if len(kinds) == 1:
            out["type"] = kinds.pop()
        return out
    if (dataclasses.is_dataclass(tp) and isinstance(tp, type)) or is_typeddict(tp):
        if id(tp) in _open:
            raise ConfigError(
                f"{tp.__name__} refers to itself; a recursive type needs a JSON Schema dict "
                "(or a pydantic model) as response_format"
            )
        return _object_schema(tp, _open | {id(tp)})
    raise ConfigError(f"no JSON Schema for the type {tp!r}")


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if value is None:
        return "null"
    return "string"


def _object_schema(tp: Any, open_types: frozenset[int]) -> JSONSchema:
    hints = _hints(tp)
    properties: dict[str, JSONSchema] = {}
    required: list[str] = []
    if is_typeddict(tp):
        for name, hint in hints.items():
            properties[name] = schema_of(_strip_required(hint), _open=open_types)
            if name in tp.__required_keys__:
                required.append(name)
    else:
        for f in dataclasses.fields(tp):
            if not f.init:
                continue
            prop = schema_of(hints.get(f.name, Any), _open=open_types)
            description = f.metadata.get("description")
            if isinstance(description, str):
                prop["description"] = description
            properties[f.name] = prop
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                required.append(f.name)
    out: JSONSchema = {"type": "object", "title": tp.__name__, "properties": properties}
    if required:
        out["required"] = required
    doc = _class_doc(tp)
    if doc:
        out["description"] = doc
    return out


# TypedDict key qualifiers: the type inside is the key's type (ReadOnly is new in 3.13).
_QUALIFIERS = tuple(
    q for q in (typing.Required, typing.NotRequired, getattr(typing, "ReadOnly", None)) if q
)


def _strip_required(hint: Any) -> Any:
    if get_origin(hint) in _QUALIFIERS:
        return _strip_required(get_args(hint)[0])
    return hint


def _class_doc(tp: Any) -> str | None:
    doc = tp.__dict__.get("__doc__")
    if not isinstance(doc, str) or not doc.strip():
        return None
    if dataclasses.is_dataclass(tp) and doc.startswith(f"{getattr(tp, '__name__', '')}("):
        return None  # the signature dataclasses writes when a class has no docstring
    return " ".join(doc.strip().split("\n\n")[0].split())


# -- strict schemas ----------------------------------------------------------------------------


def strict_schema(schema: JSONSchema) -> JSONSchema:
    """`schema` in the form OpenAI's ``strict: true`` (and Anthropic's structured output)
    accept: every object closed (``additionalProperties: false``) with every property required,
    a property that was optional made nullable instead, and no ``default``s. A copy; `schema`
    is not changed."""
    out: JSONSchema = _strict(schema, schema)
    return out


def _strict(node: Any, root: JSONSchema) -> Any:
    if isinstance(node, list):
        return [_strict(item, root) for item in node]
    if not isinstance(node, dict):
        return node
    out: JSONSchema = {}
    for key, value in node.items():
        if key == "default":
            continue
        if key in ("properties", "$defs", "definitions", "patternProperties"):
            out[key] = {name: _strict(sub, root) for name, sub in value.items()}
        elif key in ("items", "anyOf", "allOf", "oneOf", "prefixItems", "not") or (
            key == "additionalProperties" and isinstance(value, dict)
        ):
            out[key] = _strict(value, root)
        else:
            out[key] = value
    if "oneOf" in out:  # strict mode takes anyOf only; with one branch valid, the same thing
        out.setdefault("anyOf", []).extend(out.pop("oneOf"))
    if "$ref" in out and len(out) > 1:  # strict mode takes a $ref alone: inline the target
        target = _strict(_resolve(out.pop("$ref"), root), root)
        out = {**target, **out}
    if out.get("type") == "object" or "properties" in out:
        properties = out.get("properties", {})
        optional = set(properties) - set(out.get("required", ()))
        for name in optional:
            properties[name] = _nullable(properties[name])
        out["properties"] = properties
        out["required"] = list(properties)
        if not isinstance(out.get("additionalProperties"), dict):
            out["additionalProperties"] = False
    return out


def _nullable(schema: JSONSchema) -> JSONSchema:
    if accepts_null(schema):
        return schema
    kind = schema.get("type")
    if isinstance(kind, str) and set(schema) <= {"type", "description", "title", "format"}:
        return {**schema, "type": [kind, "null"]}
    return {"anyOf": [schema, {"type": "null"}]}


def accepts_null(schema: Any) -> bool:
    if not isinstance(schema, dict):
        return False
    kind = schema.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind) or schema == {}:
        return True
    return any(accepts_null(s) for s in schema.get("anyOf", ()) or schema.get("oneOf", ()))


def _resolve(ref: Any, root: JSONSchema) -> JSONSchema:
    if not isinstance(ref, str) or not ref.startswith("#/"):
        raise _Invalid(f"unsupported $ref {ref!r}")
    node: Any = root
    for part in ref[2:].split("/"):
        if not isinstance(node, dict) or part not in node:
            raise _Invalid(f"$ref {ref!r} points nowhere")
        node = node[part]
    if not isinstance(node, dict):
        raise _Invalid(f"$ref {ref!r} is not a schema")
    return node


def inline_refs(schema: JSONSchema) -> JSONSchema:
    """`schema` with every local ``$ref`` replaced by its target and ``$defs`` dropped (for a
    nested pydantic model inside another type's schema). Recursive refs stay a `ConfigError`."""

    def walk(node: Any, seen: frozenset[str]) -> Any:
        if isinstance(node, list):
            return [walk(item, seen) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            ref = node["$ref"]
            if ref in seen:
                raise ConfigError(f"the schema refers to itself through {ref!r}")
            target = walk(_resolve(ref, schema), seen | {ref})
            rest = {k: walk(v, seen) for k, v in node.items() if k != "$ref"}
            return {**target, **rest}
        return {k: walk(v, seen) for k, v in node.items() if k not in ("$defs", "definitions")}

    return walk(schema, frozenset())  # type: ignore[no-any-return]


# -- validation --------------------------------------------------------------------------------


class _Invalid(Exception):
    """A value does not match its schema; the message says where and why."""


_TYPE_CHECKS: dict[str, Any] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: (
        (isinstance(v, int) and not isinstance(v, bool))
        or (isinstance(v, float) and v.is_integer())
    ),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}


def validate(value: Any, schema: JSONSchema) -> None:
    """Check `value` against `schema` (the keywords schemas for LLM output use: types, enum,
    const, properties, required, additionalProperties, items, prefixItems, anyOf/oneOf/allOf,
    local $ref, lengths, bounds and patterns); raise `_Invalid` naming the first problem."""
    _check(value, schema, schema, "$")


def _check(value: Any, schema: Any, root: JSONSchema, where: str) -> None:
    if schema is False:
        raise _Invalid(f"{where}: no value is allowed here")
    if not isinstance(schema, dict) or not schema:
        return
    if "$ref" in schema:
        _check(value, _resolve(schema["$ref"], root), root, where)
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        if not any(_TYPE_CHECKS.get(k, lambda v: True)(value) for k in kinds):
            raise _Invalid(f"{where}: expected {' or '.join(kinds)}, got {_describe(value)}")
    if "enum" in schema and value not in schema["enum"]:
        raise _Invalid(f"{where}: {value!r} is not one of {schema['enum']!r}")
    if "const" in schema and value != schema["const"]:
        raise _Invalid(f"{where}: expected {schema['const']!r}, got {value!r}")
    for key in ("anyOf", "oneOf"):
        if key in schema:
            problems = []
            for branch in schema[key]:
                try:
                    _check(value, branch, root, where)
                    break
                except _Invalid as exc:
                    problems.append(str(exc))
            else:
                raise _Invalid(
                    f"{where}: matches none of the allowed shapes ({'; '.join(problems)})"
                )
    for branch in schema.get("allOf", ()):
        _check(value, branch, root, where)
    if isinstance(value, dict):
        _check_object(value, schema, root, where)
    elif isinstance(value, list):
        _check_array(value, schema, root, where)
    elif isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            raise _Invalid(f"{where}: shorter than {schema['minLength']} characters")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            raise _Invalid(f"{where}: longer than {schema['maxLength']} characters")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            raise _Invalid(f"{where}: {value!r} does not match {schema['pattern']!r}")
    elif isinstance(value, int | float) and not isinstance(value, bool):
        _check_bounds(value, schema, where)


def _check_bounds(value: float, schema: JSONSchema, where: str) -> None:
    for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        bound = schema.get(key)
        if not isinstance(bound, int | float) or isinstance(bound, bool):
            continue
        ok = {
            "minimum": value >= bound,
            "maximum": value <= bound,
            "exclusiveMinimum": value > bound,
            "exclusiveMaximum": value < bound,
        }[key]
        if not ok:
            raise _Invalid(f"{where}: {value!r} is out of range ({key} {bound})")


def _check_object(value: dict[str, Any], schema: JSONSchema, root: JSONSchema, where: str) -> None:
    properties = schema.get("properties", {})
    for name in schema.get("required", ()):
        if name not in value:
            raise _Invalid(f"{where}: missing required property {name!r}")
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        if name in properties:
            _check(item, properties[name], root, f"{where}.{name}")
        elif extra is False:
            raise _Invalid(f"{where}: unexpected property {name!r}")
        elif isinstance(extra, dict):
            _check(item, extra, root, f"{where}.{name}")


def _check_array(value: list[Any], schema: JSONSchema, root: JSONSchema, where: str) -> None:
    if "minItems" in schema and len(value) < schema["minItems"]:
        raise _Invalid(f"{where}: fewer than {schema['minItems']} items")
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        raise _Invalid(f"{where}: more than {schema['maxItems']} items")
    prefix = schema.get("prefixItems", ())
    for index, item in enumerate(value):
        sub = prefix[index] if index < len(prefix) else schema.get("items")
        if sub is not None:
            _check(item, sub, root, f"{where}[{index}]")


def _describe(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), type(value).__name__) + (
        f" {value!r}" if isinstance(value, int | float | str) and len(repr(value)) < 40 else ""
    )


# -- typed values --------------------------------------------------------------------------------


def drop_added_nulls(value: Any, schema: Any, root: JSONSchema) -> Any:
    """Undo `strict_schema` on a value: a property that was optional (so strict mode sent
    ``null`` for "not given") and whose own schema does not take ``null`` is left out, so the
    type's default applies."""
    if not isinstance(schema, dict):
        return value
    if "$ref" in schema:
        try:
            schema = _resolve(schema["$ref"], root)
        except _Invalid:
            return value
    if isinstance(value, dict) and "properties" in schema:
        required = set(schema.get("required", ()))
        out = {}
        for name, item in value.items():
            sub = schema["properties"].get(name)
            if item is None and name not in required and sub is not None and not accepts_null(sub):
                continue
            out[name] = drop_added_nulls(item, sub, root) if sub is not None else item
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [drop_added_nulls(item, schema["items"], root) for item in value]
    for branch in schema.get("anyOf", ()) or schema.get("oneOf", ()):
        try:
            _check(value, branch, root, "$")
        except _Invalid:
            continue
        return drop_added_nulls(value, branch, root)
    return value


def build(tp: Any, value: Any) -> Any:
    """A value of type `tp` from JSON data that has been validated against `schema_of(tp)`."""
    if tp is Any or tp is object or value is None:
        return value
    if tp is float and isinstance(value, int):
        return float(value)
    if tp is int and isinstance(value, float):
        return int(value)
    if tp is datetime.datetime:
        return datetime.datetime.fromisoformat(value)
    if tp is datetime.date:
        return datetime.date.fromisoformat(value)
    if is_pydantic_model(tp):
        from ._structured import pydantic_validate

        return pydantic_validate(tp, value)
    origin = get_origin(tp)
    args = get_args(tp)
    if origin is typing.Annotated:
        return build(args[0], value)
    if origin in (Union, types.UnionType):
        for arg in args:
            if arg is type(None):
                continue
            try:
                _check(value, schema_of(arg), {}, "$")
            except (_Invalid, ConfigError):
                continue
            return build(arg, value)
        return value
    if isinstance(value, list) and (origin in _SEQUENCES or tp in (list, tuple, set, frozenset)):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return tuple(build(a, v) for a, v in zip(args, value, strict=False))
        items = [build(args[0], v) for v in value] if args else value
        container = origin if origin in (list, tuple, set, frozenset) else tp
        return container(items) if container in (tuple, set, frozenset) else items
    if isinstance(value, dict) and (origin in _MAPPINGS or tp is dict):
        return {k: build(args[1], v) for k, v in value.items()} if len(args) == 2 else value
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp(value)
    if isinstance(value, dict) and is_typeddict(tp):
        hints = _hints(tp)
        # Keys the TypedDict does not declare are left out, as a dataclass leaves them out.
        return {k: build(_strip_required(hints[k]), v) for k, v in value.items() if k in hints}
    if isinstance(value, dict) and dataclasses.is_dataclass(tp) and isinstance(tp, type):
        hints = _hints(tp)
        kwargs = {
            f.name: build(hints.get(f.name, Any), value[f.name])
            for f in dataclasses.fields(tp)
            if f.init and f.name in value
        }
        return tp(**kwargs)
    return value


# -- Anthropic's subset --------------------------------------------------------------------------

# What Anthropic's structured outputs take besides types, enum/const, combinators, $ref/$defs,
# properties and required: these string formats, and minItems of 0 or 1. Any other keyword
# (bounds, lengths, patterns...) is refused there; it goes into the description, so the model
# may still follow it, and the reply is checked against the full schema when it comes back.
_ANTHROPIC_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "uri", "ipv4", "ipv6", "uuid"}
)
_ANTHROPIC_KEPT = frozenset({"description", "title", "enum", "const", "required", "$ref"})


def _anthropic_keeps(key: str, value: Any) -> bool:
    if key == "format":
        return value in _ANTHROPIC_FORMATS
    if key == "minItems":
        return value in (0, 1)
    return key in _ANTHROPIC_KEPT


def anthropic_schema(schema: Any) -> Any:
    """`schema` (already in strict form) in the subset Anthropic's structured outputs take:
    a ``type`` list becomes an ``anyOf``, ``oneOf`` an ``anyOf``, objects are closed, and the
    keywords it does not take are written into the description."""
    if not isinstance(schema, dict):
        return schema
    out: JSONSchema = {}
    rest: dict[str, Any] = {}
    kind = schema.get("type")
    for key, value in schema.items():
        if key in ("$defs", "definitions", "properties"):
            out[key] = {name: anthropic_schema(sub) for name, sub in value.items()}
        elif key in ("anyOf", "oneOf"):
            out.setdefault("anyOf", []).extend(anthropic_schema(sub) for sub in value)
        elif key == "allOf":
            out[key] = [anthropic_schema(sub) for sub in value]
        elif key == "items":
            out[key] = anthropic_schema(value)
        elif key == "type":
            continue
        elif _anthropic_keeps(key, value):
            out[key] = value
        elif key != "additionalProperties":
            rest[key] = value
    if isinstance(kind, list):
        branches = [{"type": k} for k in kind]
        if len(branches) == 1:
            out["type"] = kind[0]
        else:  # the keywords of a typed schema stay with the branch of that type
            typed = {k: v for k, v in out.items() if k not in ("description", "title")}
            for key in typed:
                out.pop(key)
            branches = [{**b, **typed} if b["type"] != "null" else b for b in branches]
            out["anyOf"] = [*out.get("anyOf", []), *branches]
    elif kind is not None:
        out["type"] = kind
    if kind == "object" or "properties" in out:
        out["additionalProperties"] = False
    if rest:
        note = "{" + ", ".join(f"{key}: {value}" for key, value in rest.items()) + "}"
        out["description"] = f"{out['description']}\n\n{note}" if out.get("description") else note
    return out
