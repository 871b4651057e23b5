"""Quickstart: chat, stream, and a batch with injected faults, against the embedded mock
provider (no key, no network). Run: python examples/quickstart.py"""

from __future__ import annotations

import anyio

import llmrelay


async def main() -> None:
    async with llmrelay.AsyncClient(provider="mock", max_concurrency=8) as client:
        reply = await client.chat("Hello, relay!")
        print(f"chat:   {reply.text!r} ({reply.usage.total_tokens if reply.usage else 0} tokens)")

        print("stream: ", end="")
        async with client.stream("Stream me a few words please") as stream:
            async for chunk in stream:
                print(chunk.text, end="", flush=True)
            final = await stream.final()
        print(f"  [finish_reason={final.finish_reason}]")

        # Each prompt first gets a 429 with Retry-After (injected by the mock); the retry loop recovers it.
        prompts = [f"prompt number {i}" for i in range(30)]
        results = await client.batch(
            prompts,
            return_exceptions=True,
            extra_headers={"x-mock-fault": "429;retry-after-ms=10;times=1"},
        )
        ok = sum(isinstance(r, llmrelay.ChatResponse) for r in results)
        print(f"batch:  {ok}/{len(prompts)} ok, {client.usage.retries} retries recovered")
        print(f"usage:  {client.usage}")


if __name__ == "__main__":
    anyio.run(main)
