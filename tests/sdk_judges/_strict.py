"""Strict validation of raw wire JSON against the official SDKs' own pydantic types.

`strict(type_, raw)` parses `raw` (JSON text) with pydantic in strict mode (no coercion: a
string is not an int, a missing required field is an error) and then walks the result: any
field the SDK type does not declare (pydantic's ``model_extra``) is an error too, so the mock can
neither leave out nor invent a field without a test noticing.
"""

from __future__ import annotations

import json
from typing import Any

import pydantic


def strict(type_: Any, raw: str | bytes) -> Any:
    value = pydantic.TypeAdapter(type_).validate_json(raw, strict=True)
    unknown = list(_extras(value, "$"))
    assert not unknown, f"fields the SDK type does not declare: {unknown} in {raw!r}"
    return value


def _extras(value: Any, where: str) -> Any:
    if isinstance(value, pydantic.BaseModel):
        for name in value.model_extra or {}:
            yield f"{where}.{name}"
        for name in type(value).model_fields:
            yield from _extras(getattr(value, name), f"{where}.{name}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _extras(item, f"{where}[{index}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _extras(item, f"{where}.{key}")


def sse_data(body: str) -> list[tuple[str | None, str]]:
    """(event name, data) of each server-sent event in a whole stream body."""
    out = []
    for block in body.replace("\r\n", "\n").split("\n\n"):
        event, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        if data:
            out.append((event, "\n".join(data)))
    return out


def json_events(body: str) -> list[Any]:
    return [json.loads(data) for _, data in sse_data(body) if data != "[DONE]"]
