"""Benchmark: client CPU per streamed chunk (a 2,000-chunk stream from a loopback server),
llmrelay against raw httpx `aiter_lines()` + `json.loads`, measured in the same run, both
sequentially and with 8 streams at once. Every installed HTTP engine is a column (`http=`), with
the engine used raw (lines split, `json.loads` each) as its floor.

    python benchmarks/bench_stream.py [--quick]

Not a test: it prints figures and ratios; nothing asserts on them.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from importlib.util import find_spec
from typing import Any

import httpx

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from _server import ServerProcess

import llmrelay

# The engines installed here: httpx always, the extras when present.
ENGINES = (
    "httpx",
    *(e for e, m in (("aiohttp", "aiohttp"), ("reqwest", "pyreqwest")) if find_spec(m)),
)
BODY = {"model": "bench-model", "messages": [{"role": "user", "content": "go"}], "stream": True}


def raw_stream(client: httpx.AsyncClient) -> Callable[[], Awaitable[int]]:
    async def one() -> int:
        count = 0
        async with client.stream("POST", "/v1/chat/completions", json=BODY) as response:
            async for line in response.aiter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    json.loads(line[6:])
                    count += 1
        return count

    return one


def raw_aiohttp_stream(session: Any, url: str) -> Callable[[], Awaitable[int]]:
    async def one() -> int:
        count = 0
        async with session.post(url + "/v1/chat/completions", json=BODY) as response:
            async for raw in response.content:  # line by line
                line = raw.rstrip(b"\r\n")
                if line.startswith(b"data: ") and line != b"data: [DONE]":
                    json.loads(line[6:])
                    count += 1
        return count

    return one


def raw_pyreqwest_stream(client: Any, url: str, ahead: int = 0) -> Callable[[], Awaitable[int]]:
    """pyreqwest's async client, the body read by chunks, split into lines here. `ahead` is
    its read-ahead (`streamed_read_buffer_limit`): 0 as llmrelay's (each event as it arrives);
    pyreqwest's default, 64 KiB, batches many events per read here (the server sends them all
    at once) but holds a real stream's first event back until 64 KiB arrived."""
    content = json.dumps(BODY).encode()

    async def one() -> int:
        count = 0
        request = (
            client.post(url + "/v1/chat/completions")
            .header("content-type", "application/json")
            .body_bytes(content)
            .streamed_read_buffer_limit(ahead)
            .build_streamed()
        )
        async with request as response:
            reader = response.body_reader
            rest = b""
            while (chunk := await reader.read_chunk()) is not None:
                *lines, rest = (rest + chunk.to_bytes()).split(b"\n")
                for line in lines:
                    if line.startswith(b"data: ") and line != b"data: [DONE]":
                        json.loads(line[6:])
                        count += 1
        return count

    return one


def relay_stream(client: llmrelay.AsyncClient) -> Callable[[], Awaitable[int]]:
    async def one() -> int:
        count = 0
        async for _chunk in client.stream(BODY["messages"]):
            count += 1
        return count

    return one


async def cpu_per_chunk(one: Callable[[], Awaitable[int]], streams: int, concurrency: int) -> float:
    gc.collect()
    start = time.process_time()
    counts = await asyncio.gather(
        *(_sequence(one, streams // concurrency) for _ in range(concurrency))
    )
    return (time.process_time() - start) / sum(counts)


async def _sequence(one: Callable[[], Awaitable[int]], times: int) -> int:
    total = 0
    for _ in range(times):
        total += await one()
    return total


async def run(url: str, streams: int, rounds: int) -> dict[str, dict[int, float]]:
    raw = httpx.AsyncClient(base_url=url, timeout=60)
    relay = llmrelay.AsyncClient(
        "openai",
        base_url=url + "/v1",
        api_key="sk-bench",
        model="bench-model",
        timeout=llmrelay.Timeout(read=60),
    )
    # The same with a total deadline, which adds one timer per stream.
    relay_total = llmrelay.AsyncClient(
        "openai", base_url=url + "/v1", api_key="sk-bench", model="bench-model", timeout=60
    )
    calls = {
        "raw httpx": raw_stream(raw),
        "llmrelay": relay_stream(relay),
        "llmrelay, total=60": relay_stream(relay_total),
    }
    closers: list[Callable[[], Awaitable[object]]] = [raw.aclose, relay.aclose, relay_total.aclose]
    if "aiohttp" in ENGINES:
        import aiohttp

        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        calls["raw aiohttp"] = raw_aiohttp_stream(session, url)
        closers.append(session.close)
    if "reqwest" in ENGINES:
        from pyreqwest.client import ClientBuilder

        reqwest = ClientBuilder().read_timeout(timedelta(seconds=60)).build()
        calls["raw pyreqwest"] = raw_pyreqwest_stream(reqwest, url)
        calls["raw pyreqwest, 64 KiB ahead"] = raw_pyreqwest_stream(reqwest, url, 64 * 1024)
        closers.append(reqwest.close)
    for http in ENGINES[1:]:
        engine = llmrelay.AsyncClient(
            "openai",
            base_url=url + "/v1",
            api_key="sk-bench",
            model="bench-model",
            timeout=llmrelay.Timeout(read=60),
            http=http,  # type: ignore[arg-type]
        )
        calls[f"llmrelay http={http}"] = relay_stream(engine)
        closers.append(engine.aclose)
    results: dict[str, dict[int, list[float]]] = {n: {1: [], 8: []} for n in calls}
    for one in calls.values():
        await one()  # warm up
    for _ in range(rounds):
        for concurrency in (1, 8):
            for name, one in calls.items():
                value = await cpu_per_chunk(one, streams, concurrency)
                results[name][concurrency].append(value)
    for close in closers:
        await close()
    return {
        name: {c: statistics.median(v) for c, v in by_c.items()} for name, by_c in results.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    streams, rounds = (8, 2) if args.quick else (16, 5)
    server = ServerProcess(stream_chunks=2000)
    try:
        result = asyncio.run(run(server.url, streams, rounds))
    finally:
        server.close()
    print(f"client CPU per chunk, 2,000-chunk streams ({streams} per run, median of {rounds}):")
    for concurrency in (1, 8):
        raw = result["raw httpx"][concurrency]
        print(f"  concurrency {concurrency}: raw httpx {raw * 1e6:6.2f} µs")
        for name in result:
            if name == "raw httpx":
                continue
            ours = result[name][concurrency]
            print(f"    {name:22s} {ours * 1e6:6.2f} µs  ->  {ours / raw:4.2f}× raw httpx")
    seq, par = result["llmrelay"][1], result["llmrelay"][8]
    print(f"  llmrelay at concurrency 8 vs sequential: {(par / seq - 1) * 100:+.1f}%")


if __name__ == "__main__":
    main()
