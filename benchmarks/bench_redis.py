"""Benchmark: what a shared rate limit (`RateLimit(redis_url=...)`) costs per request, on a
redis-server started here on a loopback port.

    python benchmarks/bench_redis.py            # full run (about ten seconds)
    python benchmarks/bench_redis.py --quick    # fewer rounds

Figures, all wall-clock microseconds, medians of several rounds, measured in the same run:
- redis-py PING: one bare round trip to Redis through redis-py's asyncio client (the floor);
- acquire, local / shared: one `acquire()` of the in-process limiter and of the Redis one (one
  EVALSHA), budgets so large that nothing ever waits;
- shared, 16 tasks: acquires per second when 16 tasks of one process acquire at once;
- chat(): one call to the in-process mock provider with no limit, the local limit and the
  shared one (the difference is the overhead a user sees per request).
Not a test: it prints figures; nothing asserts on them.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

import llmrelay
from llmrelay._limits import RateLimiter
from llmrelay._shared_limits import SharedRateLimiter

HUGE = 1e12  # requests (and tokens) per minute: nothing waits


def start_redis() -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not installed (apt-get install redis-server)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(500):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            break
        except OSError:
            time.sleep(0.01)
    return process, f"redis://127.0.0.1:{port}/0"


async def per_call(n: int, one: Callable[[], Awaitable[object]], rounds: int) -> float:
    """Median over `rounds` of the wall microseconds per sequential call of `one`."""
    for _ in range(min(n, 200)):
        await one()  # warm: connections, script load, caches
    results = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(n):
            await one()
        results.append((time.perf_counter() - start) / n * 1e6)
    return statistics.median(results)


async def main(n: int, rounds: int) -> None:
    process, url = start_redis()
    try:
        from redis.asyncio import Redis

        redis = Redis.from_url(url)
        ping = await per_call(n, redis.ping, rounds)
        await redis.aclose()

        local = RateLimiter(
            llmrelay.RateLimit(requests_per_minute=HUGE, tokens_per_minute=HUGE),
            clock=time.monotonic,
            sleep=asyncio.sleep,
        )
        shared_limit = llmrelay.RateLimit(
            requests_per_minute=HUGE, tokens_per_minute=HUGE, redis_url=url, key="bench"
        )
        shared = SharedRateLimiter(shared_limit, clock=time.monotonic, sleep=asyncio.sleep)
        acquire_local = await per_call(n, lambda: local.acquire(100), rounds)
        acquire_shared = await per_call(n, lambda: shared.acquire(100), rounds)

        start = time.perf_counter()
        per_task = n // 16

        async def task() -> None:
            for _ in range(per_task):
                await shared.acquire(100)

        await asyncio.gather(*(task() for _ in range(16)))
        concurrent_rate = per_task * 16 / (time.perf_counter() - start)
        await shared.aclose()

        chats: dict[str, float] = {}
        for name, limit in (
            ("no limit", None),
            ("local limit", llmrelay.RateLimit(requests_per_minute=HUGE)),
            ("shared limit", llmrelay.RateLimit(requests_per_minute=HUGE, redis_url=url, key="c")),
        ):
            async with llmrelay.AsyncClient(provider="mock", rate_limit=limit) as client:
                chats[name] = await per_call(n, lambda c=client: c.chat("Hello"), rounds)
    finally:
        process.kill()
        process.wait()

    print(f"redis-py PING round trip       {ping:8.1f} µs")
    print(f"acquire, local limiter         {acquire_local:8.1f} µs")
    print(f"acquire, shared (one EVALSHA)  {acquire_shared:8.1f} µs")
    print(f"shared, 16 tasks at once       {concurrent_rate:8.0f} acquires/s")
    for name, value in chats.items():
        print(f"chat() on the mock, {name:<12} {value:7.1f} µs")
    overhead = chats["shared limit"] - chats["no limit"]
    print(
        f"=> a shared limit adds {overhead:.0f} µs per request (the local one "
        f"{chats['local limit'] - chats['no limit']:.0f} µs)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    options = parser.parse_args()
    asyncio.run(main(n=500 if options.quick else 2000, rounds=3 if options.quick else 5))
