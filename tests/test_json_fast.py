"""`_json.loads` gives exactly what `json.loads` gives, value or error, for every input shape
(it hands the usual well-formed document to the C scanner and everything else to json.loads)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llmrelay._json import loads

CASES: list[str | bytes] = [
    '{"id": "chatcmpl-1", "choices": [{"index": 0, "delta": {"content": "hi"}}]}',
    "{}",
    "[1, 2.5, -3e2, true, false, null]",
    '"text"',
    "42",
    " {}",  # leading whitespace
    "{} ",  # trailing whitespace
    "{}\n",
    '{"a": 1}x',  # trailing garbage
    "\ufeff{}",  # a BOM in text
    "NaN",
    "1e400",
    "",
    "nul",
    '{"a": "\x01"}',  # a raw control character
    '{"a": 1, "a": 2}',  # the last duplicate wins
    b'{"a": "\xc3\xa9"}',  # UTF-8 bytes
    b"\xef\xbb\xbf{}",  # a UTF-8 BOM
    "{}".encode("utf-16"),  # detected by json.loads
    "[1]".encode("utf-32-le"),
    b"\xff{}",  # not UTF-8
    b"{\x00}",
]


def outcome(parse: Any, data: str | bytes) -> tuple[str, Any]:
    try:
        return "value", parse(data)
    except Exception as exc:
        return type(exc).__name__, str(exc)


@pytest.mark.parametrize("data", CASES, ids=repr)
def test_the_same_as_json_loads(data: str | bytes) -> None:
    assert outcome(loads, data) == outcome(json.loads, data)
