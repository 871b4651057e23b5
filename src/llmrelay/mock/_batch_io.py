"""Reading and writing the mock's Batch API bodies: multipart uploads, JSON objects, times."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from ._common import RequestError
from ._types import MockResponse

_BOUNDARY = re.compile(r'boundary="?([^";]+)"?')
_DISPOSITION = re.compile(r'(\w+)="([^"]*)"')


def multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """The fields of a ``multipart/form-data`` body: name -> (filename, value)."""
    match = _BOUNDARY.search(content_type)
    if not content_type.lower().startswith("multipart/form-data") or not match:
        raise RequestError("the request must be multipart/form-data with a boundary")
    delimiter = b"--" + match.group(1).encode("latin-1")
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in body.split(delimiter)[1:]:
        if part.startswith(b"--"):
            break
        head, sep, value = part.partition(b"\r\n\r\n")
        if not sep:
            raise RequestError("a multipart part has no header block")
        value = value.removesuffix(b"\r\n")
        disposition = next(
            (
                line.decode("latin-1")
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-disposition")
            ),
            "",
        )
        params = dict(_DISPOSITION.findall(disposition))
        if "name" in params:
            fields[params["name"]] = (params.get("filename"), value)
    return fields


def json_object(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestError(f"We could not parse the JSON body of your request: {exc}") from None
    if not isinstance(payload, dict):
        raise RequestError("the request body must be a JSON object")
    return payload


def answer_body(answer: MockResponse) -> Any:
    content = answer.content()
    try:
        return json.loads(content)
    except ValueError:
        return content.decode("utf-8", "replace")


def iso(seconds: float) -> str:
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int(seconds % 1 * 1e6):06d}Z"
    )
