"""``llmrelay demo``: the main job end to end, offline, in a few seconds.

It starts the mock server on loopback (real HTTP, OpenAI wire format) with a share of requests
failing (429 with Retry-After, 500, 503, stalls longer than the read timeout), then talks to it
with the ``openai`` preset: a chat, a streamed reply, and a batch of a few hundred prompts whose
retries recover the injected faults. Exit status 0 means every prompt has an outcome.
"""

from __future__ import annotations

import json
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from .._client import AsyncClient
from .._config import RetryPolicy, Timeout
from .._prices import BUNDLED_PRICES
from .._settings import ClientConfig, resolve_config
from ._batch import run_job
from ._batch_io import read_prompts, recorded_outcomes
from ._common import (
    EXIT_FAILED,
    CLIError,
    Command,
    State,
    run,
    setup_logging,
    stdout_console,
    stream_to_stdout,
)
from ._render import BatchStats, summary_table

DEMO_FAULTS = ("429;retry-after=0.1", "500", "503", "stall;seconds=2")
DEMO_KEY = "demo-key-not-a-secret"
DEMO_PRICED_AS = "gpt-4o-mini"
# The library's jittered backoff, shortened so that an unlucky prompt (several faults in a row)
# does not hold the whole demo up; Retry-After is still honoured as sent.
DEMO_RETRY = RetryPolicy(max_retries=6, backoff_base=0.25, backoff_cap=1.0)
STREAM_PROMPT = (
    "Streaming means you see each word the moment the server sends it, "
    "instead of waiting for the whole reply to be ready."
)


def demo_config(url: str, concurrency: int, retry: RetryPolicy | None = None) -> ClientConfig:
    """The client the demo uses: the real ``openai`` preset pointed at the mock server, with
    a read timeout shorter than the injected stalls (so they time out and are retried). No
    environment: nothing of the user's setup changes what the demo does."""
    return resolve_config(
        "openai",
        base_url=f"{url}/v1",
        api_key=DEMO_KEY,
        model="mock-echo",
        timeout=Timeout(connect=2.0, read=0.5, total=60.0),
        retry=retry,
        max_concurrency=concurrency,
        # The mock is free: priced as gpt-4o-mini (bundled table), the summary shows what the
        # same run would cost there.
        prices={"mock-echo": BUNDLED_PRICES[DEMO_PRICED_AS]},
        environ={},
    )


def write_demo_prompts(path: Path, count: int) -> None:
    topics = ("retries", "rate limits", "streaming", "timeouts", "batching", "backoff")
    with path.open("w", encoding="utf-8") as f:
        for index in range(count):
            topic = topics[index % len(topics)]
            line: dict[str, Any] = {"id": index, "prompt": f"Prompt {index}: explain {topic}."}
            if index % 10 == 0:
                line = {
                    "id": index,
                    "messages": [
                        {"role": "system", "content": "Answer briefly."},
                        {"role": "user", "content": f"Prompt {index}: why {topic}?"},
                    ],
                    "params": {"max_tokens": 4},
                }
            f.write(json.dumps(line) + "\n")


@click.command(cls=Command)
@click.option(
    "--prompts",
    "count",
    default=300,
    show_default=True,
    type=click.IntRange(1, 100_000),
    help="How many prompts the batch sends.",
)
@click.option(
    "--fault-rate",
    default=0.15,
    show_default=True,
    type=click.FloatRange(0, 0.9),
    help="Share of requests the server fails.",
)
@click.option("--seed", default=7, show_default=True, type=int, help="Seed of the fault draws.")
@click.option(
    "--concurrency",
    default=32,
    show_default=True,
    type=click.IntRange(min=1),
    help="Requests in flight at most.",
)
@click.option(
    "--keep",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep prompts.jsonl and results.jsonl in this directory.",
)
@click.option("--no-progress", is_flag=True, help="No live progress bar.")
@click.option("-v", "--verbose", count=True, help="Log requests: -v retries, -vv every attempt.")
@click.pass_context
def demo(
    ctx: click.Context,
    /,
    count: int,
    fault_rate: float,
    seed: int,
    concurrency: int,
    keep: Path | None,
    no_progress: bool,
    verbose: int,
) -> None:
    """Run chat, streaming and a faulty batch against a local mock server (no key, no network)."""
    from ..mock import serve

    group = ctx.find_object(State)  # `llmrelay -v demo` counts as much as `llmrelay demo -v`
    setup_logging(verbose + (group.options.verbose if group else 0))
    out = stdout_console()
    with ExitStack() as stack:
        url = stack.enter_context(serve(fault_rate=fault_rate, seed=seed, faults=DEMO_FAULTS))
        folder = keep or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="llmrelay-demo-"))
        )
        folder.mkdir(parents=True, exist_ok=True)
        out.rule("[bold]llmrelay demo[/bold]")
        out.print(
            f"mock server on [bold]{url}[/bold] (real HTTP on loopback, OpenAI wire format); "
            f"{fault_rate:.0%} of requests fail with 429 + Retry-After, 500, 503 or a stall "
            f"(seed {seed})"
        )
        run(_conversation, demo_config(url, concurrency), out)
        prompts, results = folder / "prompts.jsonl", folder / "results.jsonl"
        write_demo_prompts(prompts, count)
        results.unlink(missing_ok=True)
        items = read_prompts(prompts)
        out.rule(f"3. batch: {count} prompts, {concurrency} at a time, faults injected")
        stats = BatchStats(in_file=len(items), to_send=len(items))
        config = demo_config(url, concurrency, DEMO_RETRY)
        run(_batch, config, items, results, stats, not no_progress, seed, out)
        out.print(summary_table(stats, results if keep else None))
        missing = {item.key for item in items} - recorded_outcomes(results).keys()
    if missing:
        raise CLIError(f"{len(missing)} of {count} prompts have no outcome", EXIT_FAILED)
    faults = sum(c for code, c in stats.statuses.items() if code >= 400) + sum(
        stats.transport_failures.values()
    )
    out.print(
        f"[green]every prompt has an outcome[/green]: {stats.ok} ok, {stats.failed} failed; "
        f"{faults} injected faults met {stats.retries} retries."
    )
    price = BUNDLED_PRICES[DEMO_PRICED_AS]
    out.print(
        f"[dim]cost: the mock is free; the summary prices its tokens as {DEMO_PRICED_AS} "
        f"(${price.input:g} in / ${price.output:g} out per million tokens, bundled table)[/dim]"
    )
    out.print(
        "Next: [bold]llmrelay mock serve --fault-rate 0.1 --seed 7[/bold] in one terminal, "
        "and point any OpenAI client at http://127.0.0.1:8000/v1"
    )


async def _conversation(config: ClientConfig, out: Console) -> None:
    async with AsyncClient._from_config(config) as client:
        out.rule("1. chat (the server answers 429 first; the client honours Retry-After)")
        reply = await client.chat(
            "Hello, llmrelay!",
            extra_headers={
                "x-mock-fault": "429;retry-after=0.2;times=1",
                "idempotency-key": "demo-chat",
            },
        )
        tokens = reply.usage.total_tokens if reply.usage else 0
        out.print(
            f"reply: [bold]{escape(reply.text)}[/bold]  ({tokens} tokens, finish {reply.finish_reason}, "
            f"retries: {client.usage.retries})"
        )
        out.rule("2. a streamed reply, chunk by chunk")
        final = await stream_to_stdout(
            client.stream(
                STREAM_PROMPT,
                extra_headers={"x-mock-chunk-delay": "0.03", "idempotency-key": "demo-stream"},
            )
        )
        usage = final.usage
        out.print(
            f"[dim]finish {final.finish_reason}, "
            f"{usage.completion_tokens if usage else '?'} completion tokens[/dim]"
        )


async def _batch(
    config: ClientConfig,
    items: list[Any],
    results: Path,
    stats: BatchStats,
    progress: bool,
    seed: int,
    console: Console,
) -> None:
    # A fixed run token makes every prompt's fault draws, and so the whole run, reproducible.
    await run_job(
        config,
        items,
        results,
        stats,
        show_progress=progress,
        run_token=f"demo{seed}",
        console=console,
    )
