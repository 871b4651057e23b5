"""`batch()` and `as_completed()` take a list of prompts: a bare str is a sequence too (of
characters), so `batch("hello")` used to send five prompts. Now it, bytes, and anything else
that is not a sequence of prompts is a `TypeError` before anything is sent, on both clients."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import aclosing, closing
from typing import Any

import anyio
import httpx
import pytest

import llmrelay
from _loopback import LoopbackServer, Request, Response, chat_completion, json_response, loopback
from llmrelay import AsyncClient

pytestmark = pytest.mark.anyio

BOUND = 10


def _prompts() -> Iterator[str]:
    yield "a"


NOT_PROMPTS: list[tuple[str, Any, str]] = [
    ("str", "hello", "got a str; for one prompt use chat(), or pass [prompt]"),
    ("bytes", b"hello", "got a bytes"),
    ("bytearray", bytearray(b"hello"), "got a bytearray"),
    ("one message", {"role": "user", "content": "hi"}, "got dict"),
    ("a generator", _prompts(), "got generator"),
]
CASES = [c[1:] for c in NOT_PROMPTS]
IDS = [c[0] for c in NOT_PROMPTS]


def _echo(request: Request) -> Response:
    return json_response(chat_completion(request.json["messages"][-1]["content"]))


def _client(server: LoopbackServer) -> AsyncClient:
    return AsyncClient("openai", api_key="sk-x", base_url=server.base_url, model="m")


@pytest.mark.parametrize(("prompts", "words"), CASES, ids=IDS)
async def test_async_batch_refuses_what_is_not_a_list_of_prompts(prompts: Any, words: str) -> None:
    async with loopback(_echo) as server, _client(server) as client:
        with anyio.fail_after(BOUND):
            for return_exceptions in (False, True):
                with pytest.raises(TypeError, match=r"AsyncClient\.batch") as info:
                    await client.batch(prompts, return_exceptions=return_exceptions)
                assert words in str(info.value)
            with pytest.raises(TypeError, match=r"AsyncClient\.as_completed") as info:
                async with aclosing(client.as_completed(prompts)) as items:
                    async for _ in items:
                        pass
            assert words in str(info.value)
            # The client is unharmed, and a list of one str is one prompt.
            assert [r.text for r in await client.batch(["hello"])] == ["hello"]
    assert [r.json["messages"][-1]["content"] for r in server.requests] == ["hello"]


@pytest.mark.parametrize(("prompts", "words"), CASES, ids=IDS)
def test_sync_batch_refuses_what_is_not_a_list_of_prompts(prompts: Any, words: str) -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json=chat_completion("ok"))

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    with llmrelay.Client("openai", api_key="sk-x", model="m", http_client=http) as client:
        with pytest.raises(TypeError, match="batch") as info:
            client.batch(prompts)
        assert words in str(info.value)
        with (
            pytest.raises(TypeError, match="as_completed"),
            closing(client.as_completed(prompts)) as items,
        ):
            list(items)
        assert [r.text for r in client.batch(("a", "b"))] == ["ok", "ok"]
    assert len(sent) == 2
