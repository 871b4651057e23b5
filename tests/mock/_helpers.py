"""Requests to the mock engine as plain dicts, and readers for what it answers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from llmrelay.mock import MockEngine, MockResponse

OPENAI_CHAT = "/v1/chat/completions"
ANTHROPIC = "/v1/messages"
GEMINI = "/v1beta/models/mock-echo"
ANTHROPIC_HEADERS = {"anthropic-version": "2023-06-01"}


def post(
    engine: MockEngine,
    path: str,
    payload: Any,
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
) -> MockResponse:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return engine.handle("POST", path, query or {}, headers or {}, body)


def get(engine: MockEngine, path: str, headers: Mapping[str, str] | None = None) -> MockResponse:
    return engine.handle("GET", path, {}, headers or {}, b"")


def chat(text: str = "Hello there, world", **extra: Any) -> dict[str, Any]:
    return {"model": "mock-echo", "messages": [{"role": "user", "content": text}], **extra}


def anthropic(text: str = "Hello there, world", **extra: Any) -> dict[str, Any]:
    return {"max_tokens": 100, **chat(text), **extra}


def gemini(text: str = "Hello there, world", **config: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": text}]}]}
    if config:
        body["generationConfig"] = config
    return body


def events(response: MockResponse) -> list[tuple[str | None, str]]:
    """(event name, data) of every SSE event, split simply on blank lines."""
    assert response.steps is not None
    out = []
    for block in response.content().split(b"\n\n"):
        if not block:
            continue
        fields = dict(line.split(": ", 1) for line in block.decode().split("\n"))
        out.append((fields.get("event"), fields["data"]))
    return out


def datas(response: MockResponse) -> list[Any]:
    return [json.loads(data) for _, data in events(response) if data != "[DONE]"]


def openai_text(response: MockResponse) -> str:
    return "".join(
        chunk["choices"][0]["delta"].get("content", "")
        for chunk in datas(response)
        if chunk.get("choices")
    )


def error_of(response: MockResponse) -> dict[str, Any]:
    body: dict[str, Any] = response.json()["error"]
    return body
