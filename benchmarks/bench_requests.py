"""Benchmark: client CPU per non-streaming request (W1; also with fallbacks + a budget, and
with `llmrelay.instrument()` when the OpenTelemetry SDK is installed), SDK overhead, peak RSS per in-flight request,
and import time, each against raw httpx measured in the same run. Every HTTP engine installed
(`http="httpx"`, and ``"aiohttp"``/``"reqwest"`` with their extras) is a column, with the
engine used raw as its floor. CPU is the whole process's (all threads: pyreqwest's tokio thread
counts).

    python benchmarks/bench_requests.py            # full run (a minute or so)
    python benchmarks/bench_requests.py --quick    # fewer requests

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
import time
from collections.abc import Awaitable, Callable
from functools import partial
from importlib.util import find_spec
from typing import Any

import httpx

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import bench_memory
from _server import ServerProcess

import llmrelay
from llmrelay.senders._pool import SlotTransport

# The engines installed here: httpx always, the extras when present.
ENGINES = (
    "httpx",
    *(e for e, m in (("aiohttp", "aiohttp"), ("reqwest", "pyreqwest")) if find_spec(m)),
)

MESSAGES = [{"role": "user", "content": "Say hello."}]
BODY = {"model": "bench-model", "messages": MESSAGES}


async def _run(n: int, concurrency: int, one: Callable[[], Awaitable[object]]) -> float:
    """CPU seconds of this process for `n` calls of `one` by `concurrency` workers."""
    per_worker = n // concurrency

    async def worker() -> None:
        for _ in range(per_worker):
            await one()

    gc.collect()
    start = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return (time.process_time() - start) / (per_worker * concurrency)


def _raw_aiohttp(session: Any, url: str) -> Callable[[], Awaitable[object]]:
    async def one() -> object:
        async with session.post(
            url + "/v1/chat/completions", json=BODY, headers={"authorization": "Bearer sk-bench"}
        ) as response:
            return json.loads(await response.read())

    return one


def _raw_pyreqwest(client: Any, url: str) -> Callable[[], Awaitable[object]]:
    target = url + "/v1/chat/completions"

    async def one() -> object:
        request = (
            client.post(target)
            .header("authorization", "Bearer sk-bench")
            .header("content-type", "application/json")
            .body_bytes(json.dumps(BODY).encode())
            .build()
        )
        response = await request.send()
        return json.loads((await response.bytes()).to_bytes())

    return one


def _relay(url: str, concurrency: int, http: str) -> llmrelay.AsyncClient:
    return llmrelay.AsyncClient(
        "openai",
        base_url=url + "/v1",
        api_key="sk-bench",
        model="bench-model",
        max_concurrency=concurrency,
        http=http,  # type: ignore[arg-type]
    )


def _raw_call(client: httpx.AsyncClient) -> Callable[[], Awaitable[object]]:
    async def one() -> object:
        response = await client.post(
            "/v1/chat/completions", json=BODY, headers={"authorization": "Bearer sk-bench"}
        )
        return json.loads(response.content)

    return one


def _otel_providers() -> tuple[object, object] | None:
    """OpenTelemetry SDK providers that do all the work of recording (spans built and handed
    to a processor, histograms aggregated) and export nothing; None without the SDK."""
    try:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            SimpleSpanProcessor,
            SpanExporter,
            SpanExportResult,
        )
    except ImportError:
        return None

    class Discard(SpanExporter):
        def export(self, spans: object) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(Discard()))
    return tracer_provider, MeterProvider(metric_readers=[InMemoryMetricReader()])


async def cpu_per_request(url: str, n: int, concurrency: int, rounds: int) -> dict[str, float]:
    raw = httpx.AsyncClient(base_url=url)
    slot = httpx.AsyncClient(base_url=url, transport=SlotTransport())
    relays = {http: _relay(url, concurrency, http) for http in ENGINES}
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "raw httpx": _raw_call(raw),
        "same transport, raw": _raw_call(slot),
    }
    closers: list[Callable[[], Awaitable[object]]] = [raw.aclose, slot.aclose]
    if "aiohttp" in ENGINES:
        import aiohttp

        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        calls["raw aiohttp"] = _raw_aiohttp(session, url)
        closers.append(session.close)
    if "reqwest" in ENGINES:
        from pyreqwest.client import ClientBuilder

        reqwest = ClientBuilder().build()
        calls["raw pyreqwest"] = _raw_pyreqwest(reqwest, url)
        closers.append(reqwest.close)
    for http, relay in relays.items():
        calls[_name(http)] = partial(relay.chat, MESSAGES)
        closers.append(relay.aclose)
    # The default client with a fallback route (never used: the primary answers) and a budget
    # (never reached): the cost of the two stages on the path of every call.
    guarded = llmrelay.AsyncClient(
        "openai",
        base_url=url + "/v1",
        api_key="sk-bench",
        model="bench-model",
        max_concurrency=concurrency,
        prices={"bench-model": (0.15, 0.60)},
        budget=llmrelay.Budget(max_cost_usd=1e9, max_tokens=10**12),
        fallbacks=[
            llmrelay.Route(
                "openai", model="bench-model", base_url=url + "/v1", api_key="sk-bench-2"
            )
        ],
    )
    calls["llmrelay +fallback+budget"] = partial(guarded.chat, MESSAGES)
    closers.append(guarded.aclose)
    providers = _otel_providers()
    if providers is not None:  # W1 with llmrelay.instrument(): a span and metrics per call
        traced = _relay(url, concurrency, "httpx")
        tracer_provider, meter_provider = providers
        llmrelay.instrument(
            traced,
            tracer_provider=tracer_provider,  # type: ignore[arg-type]
            meter_provider=meter_provider,  # type: ignore[arg-type]
        )
        calls["llmrelay, instrumented"] = partial(traced.chat, MESSAGES)
        closers.append(traced.aclose)
    results: dict[str, list[float]] = {name: [] for name in calls}
    for one in calls.values():  # warm up: connections open, caches filled
        await _run(concurrency * 10, concurrency, one)
    for _ in range(rounds):
        for name, one in calls.items():
            results[name].append(await _run(n, concurrency, one))
    for close in closers:
        await close()
    return {name: statistics.median(values) for name, values in results.items()}


def memory_per_inflight(port: int, inflight: int, runs: int) -> dict[str, float]:
    """Peak RSS (VmHWM) per in-flight request, KiB; each run in a fresh process (see
    bench_memory.py, which also explains why not tracemalloc)."""
    results: dict[str, list[float]] = {
        kind: [] for kind in bench_memory.KINDS if kind != "pool via httpx" and _installed(kind)
    }
    for _ in range(runs):
        for name, values in results.items():
            values.append(bench_memory.measure(name, port, inflight)["inflight_kib"])
    return {name: statistics.median(values) for name, values in results.items()}


def _name(http: str) -> str:
    return "llmrelay" if http == "httpx" else f"llmrelay http={http}"


def _installed(kind: str) -> bool:
    return not any(engine in kind for engine in ("aiohttp", "reqwest")) or any(
        engine in kind for engine in ENGINES[1:]
    )


def import_time(code: str, runs: int = 7) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n = 640 if args.quick else 2000
    rounds = 2 if args.quick else 5
    concurrency = 32
    inflight = 1000

    server = ServerProcess(hold=0)  # /hold waits for /release
    try:
        cpu = asyncio.run(cpu_per_request(server.url, n, concurrency, rounds))
        memory = memory_per_inflight(server.port, inflight, 1 if args.quick else 3)
    finally:
        server.close()
    base = import_time("import httpx, anyio")
    ours = import_time("import llmrelay")

    raw = cpu["raw httpx"]
    print(f"client CPU per request ({n} requests, concurrency {concurrency}, median of {rounds}):")
    for name, value in cpu.items():
        print(f"  {name:26s} {value * 1e6:8.1f} µs   {value / raw:5.2f}× raw httpx")
    print(
        f"  SDK overhead over its own transport used raw: "
        f"{cpu['llmrelay'] / cpu['same transport, raw']:.2f}×"
    )
    print(
        f"  fallback + budget stages: "
        f"{cpu['llmrelay +fallback+budget'] / cpu['llmrelay']:.3f}× llmrelay without them"
    )
    if "llmrelay, instrumented" in cpu:
        print(
            f"  instrument() (OpenTelemetry SDK, nothing exported) costs "
            f"{(cpu['llmrelay, instrumented'] - cpu['llmrelay']) * 1e6:.1f} µs per request"
        )
    for http, floor in (("aiohttp", "raw aiohttp"), ("reqwest", "raw pyreqwest")):
        if _name(http) in cpu:
            print(f"  http={http!r} over its engine used raw: {cpu[_name(http)] / cpu[floor]:.2f}×")
    print(f"peak RSS per in-flight request ({inflight} held open; VmHWM, fresh processes):")
    for name, value in memory.items():
        print(f"  {name:22s} {value:8.1f} KiB  {value / memory['raw httpx']:5.2f}× raw httpx")
    print(
        f"import: httpx+anyio {base * 1e3:.0f} ms, llmrelay {ours * 1e3:.0f} ms "
        f"(our modules add {(ours - base) * 1e3:.0f} ms)"
    )


if __name__ == "__main__":
    main()
