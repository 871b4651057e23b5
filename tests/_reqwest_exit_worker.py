"""One process of the reqwest exit test (tests/test_reqwest_exit.py): it makes one kind of call
with ``http="reqwest"`` against the loopback server at BASE_URL, prints what it saw, and exits
right away, as a CLI or a script does. The test checks the process ends with code 0 and no
"Fatal Python error" (pyreqwest's tokio thread touching the interpreter while it exits).

    python tests/_reqwest_exit_worker.py BASE_URL MODE

MODE is one of:
  error      a 401, the error raised, the client closed by ``async with``
  stream     a stream broken after its first piece (the server holds the rest)
  unclosed   a 200 from a client that is never closed
  abandoned  a stream left open after its first piece, its client never closed
  timeout    a reply slower than the total deadline, the client closed
  sync       the sync client, a 401
"""

from __future__ import annotations

import asyncio
import sys

import llmrelay
from llmrelay import AsyncClient, Timeout

KEY = "sk-exit-test-0123456789abcdef"


def client(base_url: str, **kwargs: object) -> AsyncClient:
    return AsyncClient(
        provider="openai",
        api_key=KEY,
        base_url=base_url,
        model="m",
        http="reqwest",
        max_retries=0,
        **kwargs,  # type: ignore[arg-type]
    )


async def main(base_url: str, mode: str) -> str:
    if mode == "error":
        async with client(base_url + "/401") as relay:
            try:
                await relay.chat("hi")
            except llmrelay.AuthenticationError as exc:
                return type(exc).__name__
    elif mode == "stream":
        async with client(base_url + "/stream") as relay, relay.stream("hi") as stream:
            async for piece in stream:
                return f"piece {piece.text!r}"
    elif mode == "unclosed":
        relay = client(base_url + "/ok")
        return (await relay.chat("hi")).text
    elif mode == "abandoned":
        relay = client(base_url + "/stream")
        stream = await relay.stream("hi").__aenter__()
        async for piece in stream:
            return f"piece {piece.text!r}"
    elif mode == "timeout":
        async with client(base_url + "/slow", timeout=Timeout(total=0.05)) as relay:
            try:
                await relay.chat("hi")
            except llmrelay.APITimeoutError as exc:
                return type(exc).__name__
    return "nothing happened"


def sync_main(base_url: str) -> str:
    with llmrelay.Client(
        provider="openai", api_key=KEY, base_url=base_url + "/401", model="m", http="reqwest"
    ) as relay:
        try:
            relay.chat("hi")
        except llmrelay.AuthenticationError as exc:
            return type(exc).__name__
    return "nothing happened"


if __name__ == "__main__":
    base, what = sys.argv[1], sys.argv[2]
    print(sync_main(base) if what == "sync" else asyncio.run(main(base, what)), flush=True)
