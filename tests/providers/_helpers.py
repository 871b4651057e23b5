"""Fake servers for the provider tests: requests go to an `httpx.MockTransport` handler and
the tests look at what was sent and what the user got back."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from llmrelay import AsyncClient

Handler = Callable[[httpx.Request], httpx.Response]


def client_over(handler: Handler, **options: Any) -> AsyncClient:
    """An `AsyncClient` whose HTTP requests are answered by `handler`, in process."""
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return AsyncClient(http_client=http, **options)


def completion(text: str = "pong", **fields: Any) -> dict[str, Any]:
    """An OpenAI chat completion replying `text`; `fields` replace top-level fields."""
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "some-model",
        "choices": [
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        **fields,
    }


class FakeServer:
    """An OpenAI-family server: records each request; answers `reply` as JSON, or the `sse`
    bytes when the request body asks to stream. Attributes may be changed between calls."""

    def __init__(
        self,
        *,
        reply: Any = None,
        sse: bytes = b"",
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.requests: list[httpx.Request] = []
        self.reply = reply if reply is not None else completion()
        self.sse = sse
        self.status = status
        self.headers = headers or {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        body = json.loads(request.content) if request.content else {}
        if body.get("stream"):
            headers = {"content-type": "text/event-stream", **self.headers}
            return httpx.Response(self.status, content=self.sse, headers=headers)
        return httpx.Response(self.status, json=self.reply, headers=self.headers)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    @property
    def body(self) -> dict[str, Any]:
        """The JSON body of the last request."""
        data: dict[str, Any] = json.loads(self.last.content)
        return data
