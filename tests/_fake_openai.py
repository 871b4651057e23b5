"""An OpenAI-style server answered in process (``httpx.MockTransport``), for client tests that
run on trio's MockClock: time only moves when every task waits, so minutes of rate limiting or
cooldown cost nothing and are measured exactly."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx

import llmrelay

OK_BODY = {
    "id": "chatcmpl-1",
    "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}],
}


def mock_clock_backend() -> tuple[str, dict[str, Any]]:
    """What a module's ``anyio_backend`` fixture returns to run its tests on the fake clock."""
    import trio.testing

    return ("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})


@asynccontextmanager
async def openai_client(
    handler: Callable[[httpx.Request], Any], **kwargs: Any
) -> AsyncIterator[llmrelay.AsyncClient]:
    """An openai-preset `AsyncClient` whose requests `handler` answers (`kwargs`: its options)."""
    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http,
        llmrelay.AsyncClient(
            provider="openai", api_key="sk-test", model="m", http_client=http, **kwargs
        ) as client,
    ):
        yield client
