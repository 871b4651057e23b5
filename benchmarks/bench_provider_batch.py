"""Benchmark: a 10,000-prompt provider batch through the mock, wall time and peak memory.

    python benchmarks/bench_provider_batch.py [--prompts 10000] [--runs 3]

What is timed, per run: `submit_batch()` (encode every prompt, upload the JSONL / post the
requests), `wait_batch()` until the job has ended, and `batch_results()` (download and parse
every outcome into a `ChatResponse`). The mock ends a job after `--batch-delay` (0 by default:
then it answers the job's 10,000 requests while it answers its creation, so that work of the
mock's is in the "submit" column). Kinds:

- ``llmrelay <family> loopback``: the client in this process, the mock (``llmrelay mock serve``)
  in another one, over loopback HTTP, for the OpenAI, Anthropic and Gemini wire formats;
- ``openai SDK loopback``: the official `openai` SDK doing the same OpenAI steps (upload,
  create, retrieve until done, download both files, parse every line), as the reference;
- ``llmrelay mock in-process``: ``provider="mock"``, the mock's engine inside the client's
  process (its memory counts too).

Each run is a fresh subprocess (VmHWM, the RSS high-water mark, is per process): it imports
everything, builds the client, reads VmHWM as the baseline, runs the job, reads VmHWM again.
Figures: medians over the runs of wall time per step and of peak RSS (absolute, and above the
baseline). Not a test: nothing asserts on the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import time
from typing import Any

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
KINDS = (
    "llmrelay openai loopback",
    "llmrelay anthropic loopback",
    "llmrelay gemini loopback",
    "openai SDK loopback",
    "llmrelay mock in-process",
)


def _vm_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} missing from /proc/self/status")


def _prompts(count: int) -> list[str]:
    return [
        f"Summarise item {i}: the quick brown fox jumps over the lazy dog." for i in range(count)
    ]


async def _llmrelay(kind: str, url: str, count: int) -> dict[str, Any]:
    import llmrelay

    family = kind.split()[1]
    if family == "mock":
        client = llmrelay.AsyncClient(provider="mock")
        headers = {"x-mock-batch": "delay=0"}
    else:
        base = {"openai": "/v1", "anthropic": "", "gemini": "/v1beta"}[family]
        client = llmrelay.AsyncClient(
            provider=family, base_url=url + base, api_key="sk-bench-provider-batch"
        )
        headers = {}
    prompts = _prompts(count)
    async with client:
        baseline = _vm_kib("VmHWM")
        started = time.perf_counter()
        job = await client.submit_batch(
            prompts, model="mock-echo", max_tokens=16, extra_headers=headers
        )
        submitted = time.perf_counter()
        job = await client.wait_batch(job.id, poll_interval=0.02)
        ended = time.perf_counter()
        outcomes = await client.batch_results(job.id)
        fetched = time.perf_counter()
    ok = sum(isinstance(o, llmrelay.ChatResponse) for o in outcomes)
    assert ok == count, (ok, count, job)
    return {
        "submit": submitted - started,
        "wait": ended - submitted,
        "results": fetched - ended,
        "total": fetched - started,
        "baseline_kib": baseline,
        "peak_kib": _vm_kib("VmHWM"),
    }


async def _openai_sdk(url: str, count: int) -> dict[str, Any]:
    import openai

    client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="sk-bench-provider-batch")
    lines = [
        json.dumps(
            {
                "custom_id": str(i),
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {
                    "model": "mock-echo",
                    "max_completion_tokens": 16,
                    "messages": [{"role": "user", "content": prompt}],
                },
            }
        )
        for i, prompt in enumerate(_prompts(count))
    ]
    async with client:
        baseline = _vm_kib("VmHWM")
        started = time.perf_counter()
        data = ("\n".join(lines) + "\n").encode()
        del lines
        uploaded = await client.files.create(file=("batch.jsonl", data), purpose="batch")
        job = await client.batches.create(
            input_file_id=uploaded.id,
            endpoint="/v1/chat/completions",
            completion_window="24h",
        )
        submitted = time.perf_counter()
        while job.status not in ("completed", "failed", "expired", "cancelled"):
            await asyncio.sleep(0.02)
            job = await client.batches.retrieve(job.id)
        ended = time.perf_counter()
        replies: dict[int, Any] = {}
        for file_id in (job.output_file_id, job.error_file_id):
            if file_id:
                content = await client.files.content(file_id)
                for line in content.text.splitlines():
                    record = json.loads(line)
                    replies[int(record["custom_id"])] = openai.types.chat.ChatCompletion(
                        **record["response"]["body"]
                    )
        fetched = time.perf_counter()
    assert len(replies) == count
    return {
        "submit": submitted - started,
        "wait": ended - submitted,
        "results": fetched - ended,
        "total": fetched - started,
        "baseline_kib": baseline,
        "peak_kib": _vm_kib("VmHWM"),
    }


def _child(kind: str, url: str, count: int) -> None:
    if kind == "openai SDK loopback":
        result = asyncio.run(_openai_sdk(url, count))
    else:
        result = asyncio.run(_llmrelay(kind, url, count))
    print(json.dumps(result))


def _start_server(delay: float) -> tuple[subprocess.Popen[str], str]:
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    process = subprocess.Popen(
        [sys.executable, "-m", "llmrelay.cli", "mock", "serve", "--port", "0",
         "--no-access-log", "--batch-delay", str(delay)],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert process.stderr is not None
    for line in process.stderr:
        found = re.search(r"on (http://\S+)", line)
        if found:
            time.sleep(0.3)  # the banner comes just before the server listens
            return process, found.group(1)
    raise RuntimeError("the mock server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch-delay", type=float, default=0.0)
    parser.add_argument("--child", nargs=2, metavar=("KIND", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, SRC)
        _child(args.child[0], args.child[1], args.prompts)
        return
    server, url = _start_server(args.batch_delay)
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    try:
        print(f"{args.prompts:,} prompts, {args.runs} runs per kind, mock at {url}")
        print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
        header = f"{'kind':28} {'submit':>8} {'wait':>8} {'results':>8} {'total':>8} {'peak RSS':>10} {'+above base':>12}"
        print(header)
        for kind in KINDS:
            runs = []
            for _ in range(args.runs):
                out = subprocess.run(
                    [sys.executable, __file__, "--prompts", str(args.prompts), "--child", kind, url],
                    env=env, capture_output=True, text=True, check=True,
                )  # fmt: skip
                runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
            med = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
            print(
                f"{kind:28} {med['submit']:7.2f}s {med['wait']:7.2f}s {med['results']:7.2f}s "
                f"{med['total']:7.2f}s {med['peak_kib'] / 1024:8.1f}MB "
                f"{(med['peak_kib'] - med['baseline_kib']) / 1024:10.1f}MB"
            )
        print(f"load average after: {os.getloadavg()[0]:.2f}")
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
