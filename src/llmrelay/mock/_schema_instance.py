"""An instance of a JSON Schema: what the mock answers to a structured-output request.

`instance_of(schema, text)` builds a value the schema accepts, deterministically: every declared
property (required or not), one array item (or `minItems`), the first `enum`/`const` value, the
first branch of `anyOf`/`oneOf` that is not ``null``, `allOf` merged, ``$ref`` into ``$defs`` /
``definitions`` (any ``#/…`` pointer), bounds and `multipleOf` on numbers, length limits, the
common formats and a ``pattern`` (a sample built from the regex) on strings. Unconstrained strings carry `text` (the echo of the prompt). Gemini's
OpenAPI-style schemas (``"type": "OBJECT"``, ``nullable``) are read too. Past `MAX_DEPTH` nested
levels (recursive schemas) optional properties are left out and arrays keep only `minItems`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from ._regex_sample import sample

MAX_DEPTH = 6  # nesting levels filled in before recursive schemas stop growing
_FORMATS = {
    "date-time": "2023-11-14T22:13:20Z",
    "date": "2023-11-14",
    "time": "22:13:20Z",
    "duration": "PT1S",
    "email": "mock@example.com",
    "idn-email": "mock@example.com",
    "hostname": "example.com",
    "idn-hostname": "example.com",
    "ipv4": "127.0.0.1",
    "ipv6": "::1",
    "uri": "https://example.com/mock",
    "iri": "https://example.com/mock",
    "uri-reference": "https://example.com/mock",
    "url": "https://example.com/mock",
    "uuid": "00000000-0000-4000-8000-000000000000",
}
_PATTERN_GUESSES = ("mock", "a", "A", "0", "a0", "mock@example.com", "2023-11-14")


def instance_of(schema: Any, text: str = "mock") -> Any:
    """A value valid against `schema` (a JSON Schema object or boolean)."""
    return _Builder(schema, text).build(schema, 0, 0)


class _Builder:
    def __init__(self, root: Any, text: str) -> None:
        self.root = root
        self.text = text

    def build(self, schema: Any, depth: int, index: int) -> Any:
        if not isinstance(schema, Mapping):
            return self.text  # `true`, or not a schema at all: anything goes
        schema = self._resolve(schema, depth)
        if "const" in schema:
            return schema["const"]
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            return enum[index % len(enum)]
        for key in ("anyOf", "oneOf"):
            branches = schema.get(key)
            if isinstance(branches, list) and branches:
                return self.build(self._pick_branch(branches, depth), depth, index)
        kind = self._type_of(schema, depth)
        if kind == "object":
            return self._object(schema, depth)
        if kind == "array":
            return self._array(schema, depth)
        if kind == "integer":
            return _integer(schema, index)
        if kind == "number":
            return _number(schema, index)
        if kind == "boolean":
            return index % 2 == 0
        if kind == "null":
            return None
        return self._string(schema, index)

    def _resolve(self, schema: Mapping[str, Any], depth: int) -> Mapping[str, Any]:
        """Follow ``$ref`` and merge ``allOf`` into one schema."""
        for _ in range(64):  # a chain of refs longer than this is a loop
            ref = schema.get("$ref")
            if not isinstance(ref, str):
                break
            target = self._pointer(ref)
            schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        parts = schema.get("allOf")
        if isinstance(parts, list) and parts:
            merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
            for part in parts:
                if isinstance(part, Mapping):
                    _merge(merged, self._resolve(part, depth))
            schema = merged
        return schema

    def _pointer(self, ref: str) -> Mapping[str, Any]:
        if not ref.startswith("#"):
            return {}  # a remote reference: nothing to follow offline
        node: Any = self.root
        for token in ref[1:].split("/")[1:]:
            token = token.replace("~1", "/").replace("~0", "~")
            node = node.get(token) if isinstance(node, Mapping) else None
        return node if isinstance(node, Mapping) else {}

    def _pick_branch(self, branches: list[Any], depth: int) -> Any:
        nulls = [b for b in branches if isinstance(b, Mapping) and b.get("type") == "null"]
        others = [b for b in branches if b not in nulls]
        if depth >= MAX_DEPTH and nulls:
            return nulls[0]
        return others[0] if others else branches[0]

    def _type_of(self, schema: Mapping[str, Any], depth: int) -> str:
        kind = schema.get("type")
        if isinstance(kind, list):
            names = [str(k).lower() for k in kind]
            if depth >= MAX_DEPTH and "null" in names:
                return "null"
            concrete = [name for name in names if name != "null"]
            return concrete[0] if concrete else "null"
        if isinstance(kind, str):
            if depth >= MAX_DEPTH and schema.get("nullable") is True:
                return "null"
            return kind.lower()  # Gemini writes OBJECT, STRING...
        if "properties" in schema or "additionalProperties" in schema or "required" in schema:
            return "object"
        if "items" in schema or "prefixItems" in schema:
            return "array"
        return "string"

    def _object(self, schema: Mapping[str, Any], depth: int) -> dict[str, Any]:
        properties = schema.get("properties")
        properties = properties if isinstance(properties, Mapping) else {}
        required = schema.get("required")
        required = set(required) if isinstance(required, list) else set()
        out: dict[str, Any] = {}
        for name, sub in properties.items():
            if depth < MAX_DEPTH or name in required:
                out[name] = self.build(sub, depth + 1, 0)
        for name in sorted(required - set(out)):  # required but not declared: any value
            out[name] = self.build(_extra_schema(schema), depth + 1, 0)
        wanted = _int(schema.get("minProperties"), 0)
        extra = _extra_schema(schema)
        while len(out) < wanted:
            out[f"key{len(out) + 1}"] = self.build(extra, depth + 1, len(out))
        return out

    def _array(self, schema: Mapping[str, Any], depth: int) -> list[Any]:
        prefix = schema.get("prefixItems")
        prefix = prefix if isinstance(prefix, list) else []
        items = schema.get("items")
        if isinstance(items, list):  # draft 4-7 tuple form
            prefix, items = items, schema.get("additionalItems", {})
        low = _int(schema.get("minItems"), 0)
        high = _int(schema.get("maxItems"), None)
        count = max(low, len(prefix) if depth < MAX_DEPTH else 0, 1 if depth < MAX_DEPTH else 0)
        if high is not None:
            count = min(count, high)
        out = [
            self.build(prefix[i] if i < len(prefix) else items, depth + 1, i) for i in range(count)
        ]
        return out

    def _string(self, schema: Mapping[str, Any], index: int) -> str:
        suffix = f" {index + 1}" if index else ""
        fmt = schema.get("format")
        value = _FORMATS.get(fmt, self.text) if isinstance(fmt, str) else self.text
        if fmt == "uuid" and index:
            value = f"00000000-0000-4000-8000-{index:012d}"
        elif fmt in ("email", "idn-email") and index:
            value = f"mock{index + 1}@example.com"
        else:
            value += suffix if fmt not in _FORMATS else ""
        pattern = schema.get("pattern")
        if isinstance(pattern, str):
            value = _matching(pattern, value)
        low: int = _int(schema.get("minLength"), 0)
        high: int | None = _int(schema.get("maxLength"), None)
        if high is not None and len(value) > high:
            value = value[:high]
        return str(value) + "x" * max(0, low - len(value))


def _merge(into: dict[str, Any], part: Mapping[str, Any]) -> None:
    for key, value in part.items():
        if key == "properties" and isinstance(value, Mapping):
            into["properties"] = {**into.get("properties", {}), **value}
        elif key == "required" and isinstance(value, list):
            into["required"] = [*into.get("required", []), *value]
        else:
            into.setdefault(key, value)


def _extra_schema(schema: Mapping[str, Any]) -> Any:
    extra = schema.get("additionalProperties")
    return extra if isinstance(extra, Mapping) else {}


def _matching(pattern: str, value: str) -> str:
    try:
        compiled = re.compile(pattern)
    except re.error:
        return value
    for guess in (value, *_PATTERN_GUESSES):
        if compiled.search(guess):
            return guess
    return sample(pattern) or value  # None: a pattern this generator cannot satisfy


def _int(value: Any, default: int | None) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return default


def _number_bounds(schema: Mapping[str, Any]) -> tuple[float | None, float | None, bool, bool]:
    low, high = schema.get("minimum"), schema.get("maximum")
    ex_low, ex_high = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    low_open = high_open = False
    if isinstance(ex_low, bool):  # draft 4: a flag on minimum
        low_open = ex_low
    elif isinstance(ex_low, int | float):
        low, low_open = ex_low, True
    if isinstance(ex_high, bool):
        high_open = ex_high
    elif isinstance(ex_high, int | float):
        high, high_open = ex_high, True
    low = low if isinstance(low, int | float) and not isinstance(low, bool) else None
    high = high if isinstance(high, int | float) and not isinstance(high, bool) else None
    return low, high, low_open, high_open


def _integer(schema: Mapping[str, Any], index: int) -> int:
    low, high, low_open, high_open = _number_bounds(schema)
    step = schema.get("multipleOf")
    step = step if isinstance(step, int) and not isinstance(step, bool) and step > 0 else 1
    first = 1 if low is None else math.floor(low) + 1 if low_open else math.ceil(low)
    if high is not None and low is None:
        first = min(first, math.ceil(high) - 1 if high_open else math.floor(high))
    first = math.ceil(first / step) * step + index * step
    if high is not None:
        last = math.ceil(high) - 1 if high_open else math.floor(high)
        while first > last and first - step >= (low if low is not None else -math.inf):
            first -= step
    return first


def _number(schema: Mapping[str, Any], index: int) -> float | int:
    step = schema.get("multipleOf")
    if isinstance(step, int | float) and not isinstance(step, bool) and step > 0:
        # A multiple of `step` is `step` times an integer within the bounds divided by `step`.
        scaled = {
            key: value / step
            if isinstance(value, int | float) and not isinstance(value, bool)
            else value
            for key, value in schema.items()
            if key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
        }
        return _integer(scaled, index) * step
    low, high, low_open, high_open = _number_bounds(schema)
    value = 0.5 + index
    if low is not None and (value < low or (low_open and value <= low)):
        value = low + (0.5 if high is None else (high - low) / 2 if low_open else 0)
    if high is not None and (value > high or (high_open and value >= high)):
        value = high - (0.5 if low is None else (high - low) / 2 if high_open else 0)
    return value
