"""Benchmark: peak resident memory (RSS) per in-flight request, 1,000 requests held open by a
loopback server, llmrelay against raw httpx.

    python benchmarks/bench_memory.py [--inflight 1000] [--runs 3]

Each measurement runs in a fresh subprocess, because the RSS high-water mark (VmHWM in
/proc/self/status) is per process. The child imports everything, creates the client, sends one
warm-up request (so lazily imported modules and one-time caches are not charged to the held
requests), then resets the high-water mark and reads it as the baseline. It starts `inflight`
requests, waits until the server reports all of them held, reads VmHWM again, and releases them.
Figure: (VmHWM in flight - baseline) / inflight; median over the runs.

RSS rather than tracemalloc: tracemalloc only sees Python's allocator, not the memory the C
parts (sockets, SSL, the allocator's own arenas) keep resident.

Not a test: it prints figures and ratios; nothing asserts on them.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import subprocess
import sys
from collections.abc import Awaitable, Callable
from typing import Any

sys.path.insert(0, __file__.rsplit("/", 1)[0])

MESSAGES = [{"role": "user", "content": "Say hello."}]
BODY = {"model": "bench-model", "messages": MESSAGES}
KINDS = (
    "raw httpx",
    "llmrelay",
    "pool via httpx",
    "raw aiohttp",
    "llmrelay http=aiohttp",
    "raw pyreqwest",
    "llmrelay http=reqwest",
)


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} missing from /proc/self/status")


def _reset_high_water_mark() -> bool:
    try:  # Linux >= 4.0: "5" resets VmHWM to the current RSS
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


async def _control(port: int, path: str) -> int:
    """GET `path` on the benchmark server over a bare socket (no client library involved)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nhost: bench\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    body = await reader.readexactly(length)
    writer.close()
    return int(body)


async def _child(kind: str, port: int, inflight: int) -> dict[str, Any]:
    import httpx

    import llmrelay

    url = f"http://127.0.0.1:{port}"
    one: Callable[[], Awaitable[object]]
    warm: Callable[[], Awaitable[object]]
    close: Callable[[], Awaitable[None]]
    if kind.startswith("llmrelay"):
        http: Any = kind.partition("http=")[2] or "httpx"
        relay = llmrelay.AsyncClient(
            provider="openai",
            base_url=url + "/hold",
            api_key="sk-bench",
            model="bench-model",
            max_concurrency=inflight,
            timeout=120,
            http=http,
        )
        warm_relay = llmrelay.AsyncClient(
            provider="openai",
            base_url=url + "/v1",
            api_key="sk-bench",
            model="bench-model",
            http=http,
        )

        async def one() -> object:
            return await relay.chat(MESSAGES)

        async def warm() -> object:
            await warm_relay.chat(MESSAGES)
            await warm_relay.aclose()
            return None

        close = relay.aclose
    elif kind == "raw aiohttp":
        import aiohttp

        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

        async def post(path: str) -> object:
            async with session.post(
                url + path, json=BODY, headers={"authorization": "Bearer sk-bench"}
            ) as response:
                return json.loads(await response.read())

        async def one() -> object:
            return await post("/hold/chat/completions")

        async def warm() -> object:
            return await post("/v1/chat/completions")

        close = session.close
    elif kind == "raw pyreqwest":
        from pyreqwest.client import ClientBuilder

        reqwest = ClientBuilder().build()

        async def send(path: str) -> object:
            request = (
                reqwest.post(url + path)
                .header("authorization", "Bearer sk-bench")
                .header("content-type", "application/json")
                .body_bytes(json.dumps(BODY).encode())
                .build()
            )
            response = await request.send()
            return json.loads((await response.bytes()).to_bytes())

        async def one() -> object:
            return await send("/hold/chat/completions")

        async def warm() -> object:
            return await send("/v1/chat/completions")

        close = reqwest.close
    else:
        if kind == "raw httpx":
            client = httpx.AsyncClient(
                base_url=url, limits=httpx.Limits(max_connections=inflight), timeout=120
            )
        else:
            from llmrelay.senders._pool import SlotTransport

            client = httpx.AsyncClient(base_url=url, transport=SlotTransport(), timeout=120)

        async def call(path: str) -> object:
            response = await client.post(
                path, json=BODY, headers={"authorization": "Bearer sk-bench"}
            )
            return json.loads(response.content)

        async def one() -> object:
            return await call("/hold/chat/completions")

        async def warm() -> object:
            return await call("/v1/chat/completions")

        close = client.aclose

    await warm()
    gc.collect()
    reset = _reset_high_water_mark()
    baseline = _status_kib("VmHWM")
    tasks = [asyncio.ensure_future(one()) for _ in range(inflight)]
    while await _control(port, "/held") < inflight:  # noqa: ASYNC110 (the count is the server's)
        await asyncio.sleep(0.02)
    held = _status_kib("VmHWM")
    rss_held = _status_kib("VmRSS")
    await _control(port, "/release")
    await asyncio.gather(*tasks)
    done = _status_kib("VmHWM")
    await close()
    return {
        "kind": kind,
        "reset": reset,
        "baseline_kib": baseline,
        "inflight_kib": (held - baseline) / inflight,
        "rss_inflight_kib": (rss_held - baseline) / inflight,
        "through_replies_kib": (done - baseline) / inflight,
    }


def measure(kind: str, port: int, inflight: int) -> dict[str, Any]:
    """One measurement in a fresh interpreter."""
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            kind,
            "--port",
            str(port),
            "--inflight",
            str(inflight),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--inflight", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kinds", default=",".join(KINDS), help="comma-separated subset")
    parser.add_argument("--child")
    parser.add_argument("--port", type=int)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(_child(args.child, args.port, args.inflight))))
        return

    from _server import ServerProcess

    server = ServerProcess(hold=0)
    kinds = [kind for kind in KINDS if kind in args.kinds.split(",")]
    runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
    try:
        for _ in range(args.runs):
            for kind in kinds:  # interleaved, so drift on a shared machine hits every kind
                runs[kind].append(measure(kind, server.port, args.inflight))
    finally:
        server.close()

    def median(kind: str, key: str) -> float:
        return statistics.median(run[key] for run in runs[kind])

    raw = median("raw httpx", "inflight_kib") if "raw httpx" in runs else float("nan")
    print(
        f"peak RSS per in-flight request ({args.inflight} held open, VmHWM, "
        f"median of {args.runs} runs, each in its own process):"
    )
    for kind in kinds:
        value = median(kind, "inflight_kib")
        each = ", ".join(f"{run['inflight_kib']:.1f}" for run in runs[kind])
        print(f"  {kind:20s} {value:6.1f} KiB  {value / raw:5.2f}× raw httpx   (runs: {each})")
    print("  including the replies (VmHWM after all have returned):")
    for kind in kinds:
        print(f"    {kind:18s} {median(kind, 'through_replies_kib'):6.1f} KiB")


if __name__ == "__main__":
    main()
