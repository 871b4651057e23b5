"""One worker process of the multi-process shared-limit test (tests/test_shared_limits.py).

It connects to Redis, prints ``ready``, reads a wall-clock start time from stdin, and from then
on, for WINDOW seconds, chats with the mock provider as fast as the shared rate limit allows;
then it prints how many requests went out.

    python tests/_shared_limit_worker.py REDIS_URL KEY RPM WINDOW
"""

from __future__ import annotations

import sys
import time

import anyio
import anyio.to_thread

import llmrelay


async def main(url: str, key: str, rpm: float, window: float) -> int:
    limit = llmrelay.RateLimit(requests_per_minute=rpm, redis_url=url, key=f"warm-{key}")
    async with llmrelay.AsyncClient(provider="mock", rate_limit=limit) as client:
        await client.chat("Hello")  # the imports and code paths, warm before the clock starts
    limit = llmrelay.RateLimit(requests_per_minute=rpm, redis_url=url, key=key)
    sent = 0
    async with llmrelay.AsyncClient(provider="mock", rate_limit=limit) as client:
        print("ready", flush=True)
        start = float(await anyio.to_thread.run_sync(sys.stdin.readline))
        await anyio.sleep(max(0.0, start - time.time()))

        async def worker() -> None:
            nonlocal sent
            while True:
                await client.chat("Hello")
                sent += 1

        with anyio.move_on_after(window):
            async with anyio.create_task_group() as tg:
                for _ in range(8):
                    tg.start_soon(worker)
    return sent


if __name__ == "__main__":
    url, key, rpm, window = sys.argv[1:5]
    print(anyio.run(main, url, key, float(rpm), float(window)))
