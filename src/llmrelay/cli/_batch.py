"""``llmrelay batch``: a JSONL file of prompts through the client, resumably.

Concurrency, rate limits and retries are the library's (one `AsyncClient`); this module adds the
files (see `_batch_io`), a live progress bar and the summary. Each outcome is written the moment
it is known, so Ctrl-C or a kill loses nothing: running the same command again sends only the
prompts whose ids are not in the results yet.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections import Counter
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import click
from click.core import ParameterSource
from rich.console import Console
from rich.markup import escape

from .. import _constants as C
from .._batch import run_pool
from .._client import AsyncClient
from .._config import RateLimit
from .._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BudgetExceededError,
    ConfigError,
    LLMError,
    PermissionDeniedError,
)
from .._hooks import ErrorEvent, Hooks, ResponseEvent, RetryEvent
from .._routes import Budget
from .._settings import ClientConfig
from .._usage import format_usd
from ._batch_io import (
    BatchFileError,
    BatchItem,
    ResultWriter,
    outcome_record,
    prepare_results,
    read_prompts,
    recorded_outcomes,
)
from ._common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    CLIError,
    Command,
    State,
    run,
    shared_options,
    stderr_console,
    stdout_console,
)
from ._render import BatchStats, ProgressView, progress_bar, summary_table

if TYPE_CHECKING:
    from .._types import ChatResponse, MessageDict

IDEMPOTENCY_HEADER = "idempotency-key"


class AttemptTracker:
    """Hooks that count, for the summary, the error statuses the server answered and the
    attempts that got no answer (timeouts, dropped connections), retried ones included; and,
    for each item, its attempts and its latency from its first attempt on the wire (not the
    wait for a free slot), retries included. The hooks run in the task of the `chat()` call,
    so the item they are about is the one `current` holds there."""

    current: ContextVar[str | None] = ContextVar("llmrelay_batch_item", default=None)

    def __init__(self) -> None:
        self.statuses: Counter[int] = Counter()
        self.failures: Counter[str] = Counter()
        self.outcomes: dict[str, tuple[int, float]] = {}  # item key: attempts, latency (s)
        self.hooks = Hooks(on_retry=self._retried, on_response=self._ended, on_error=self._ended)

    def _count(self, error: LLMError | None) -> None:
        if isinstance(error, APIStatusError):
            self.statuses[error.status_code] += 1
        elif isinstance(error, APITimeoutError):
            self.failures["timeout"] += 1
        elif isinstance(error, APIConnectionError):
            self.failures["connection error"] += 1

    def _retried(self, event: RetryEvent) -> None:
        self._count(event.error)

    def _ended(self, event: ResponseEvent | ErrorEvent) -> None:
        if isinstance(event, ErrorEvent):
            self._count(event.error)
        key = self.current.get()
        if key is not None:
            self.outcomes[key] = (event.attempts, event.duration - event.queued)


async def run_job(
    config: ClientConfig,
    items: list[BatchItem],
    output: Path,
    stats: BatchStats,
    *,
    show_progress: bool,
    run_token: str | None = None,
    console: Console | None = None,
) -> BatchStats:
    """Send `items`, appending one result line per item to `output` as each finishes.

    An authentication or permission error stops the run at once (every later prompt would
    fail the same way); it is not written, so the next run sends that prompt again.
    """
    stats.started = time.perf_counter()
    tracker = AttemptTracker()
    async with AsyncClient._from_config(config) as client:
        client._add_hooks(tracker.hooks)
        if client.model is None:
            missing = next((item for item in items if item.model is None), None)
            if missing is not None:
                raise ConfigError(
                    f"line {missing.line} names no model and there is no default: give "
                    '--model, or a "model" on every line'
                )
        job = _Job(client, tracker, run_token or os.urandom(6).hex())
        writer = ResultWriter(output)
        try:
            with progress_bar(
                console or stderr_console(), stats, client.usage, enabled=show_progress
            ) as bar:
                await job.run(items, writer, stats, bar)
        finally:
            writer.close()
            stats.absorb_usage(client.usage)
            stats.statuses = tracker.statuses
            stats.transport_failures = tracker.failures
            stats.elapsed = time.perf_counter() - stats.started
    if job.fatal is not None:
        raise CLIError(
            f"stopped: {type(job.fatal).__name__}: {job.fatal}\nEvery other prompt would fail the "
            f"same way. Results so far are in {output}; fix the cause and run the same command "
            "to resume.",
            EXIT_FAILED,
        )
    return stats


class _Job:
    """Worker tasks pulling items in order; each outcome is written the moment it is known."""

    def __init__(self, client: AsyncClient, tracker: AttemptTracker, token: str) -> None:
        self.client = client
        self.tracker = tracker
        self.token = token
        self.fatal: LLMError | None = None
        # The first call the budget refused: every later one is refused too, and none of
        # them is written, so that a run with a larger budget sends them.
        self.over_budget: BudgetExceededError | None = None

    async def run(
        self, items: list[BatchItem], writer: ResultWriter, stats: BatchStats, bar: ProgressView
    ) -> None:
        async def work(index: int) -> bool:
            if self.over_budget is not None:  # stop submitting; calls in flight finish
                stats.unsent += 1
                return True
            record = await self.one(items[index])
            if record is None:
                return False  # stops the whole run
            if record is _UNSENT:
                stats.unsent += 1
                return True
            writer.write(record)  # no await between the outcome and its flushed line
            stats.add(record)
            bar.advance()
            return True

        await run_pool(len(items), work, workers=self.client.max_concurrency * 2)

    async def one(self, item: BatchItem) -> dict[str, Any] | None:
        """The result record of one item (`None` when the whole run must stop)."""
        digest = hashlib.sha256(item.key.encode()).hexdigest()[:20]
        key = f"llmrelay-batch-{self.token}-{digest}"
        outcome: ChatResponse | LLMError
        current = self.tracker.current.set(key)
        try:
            outcome = await self.client.chat(
                cast("list[MessageDict]", item.messages),  # checked when the file was read
                model=item.model,
                extra_headers={IDEMPOTENCY_HEADER: key},
                **item.params,
            )
        except (AuthenticationError, PermissionDeniedError) as exc:
            self.fatal = self.fatal or exc
            return None
        except BudgetExceededError as exc:
            self.over_budget = self.over_budget or exc
            self.tracker.outcomes.pop(key, None)
            return _UNSENT
        except LLMError as exc:
            outcome = exc
        finally:
            self.tracker.current.reset(current)
        record = outcome_record(item.id, outcome)
        # From the first attempt on the wire (not the wait for a free slot), retries included.
        attempts, latency = self.tracker.outcomes.pop(key, (0, 0.0))
        record["latency_ms"] = round(latency * 1000, 1)
        record["attempts"] = attempts
        return record


_UNSENT: dict[str, Any] = {}  # the record of a prompt the budget kept from being sent


def parse_prices(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, tuple[float, float]]:
    """``--price MODEL=PROMPT,COMPLETION`` (repeatable): prices per million tokens by model."""
    prices: dict[str, tuple[float, float]] = {}
    for value in values:
        model, _, numbers = value.rpartition("=")  # model names may hold "=" themselves
        try:
            prompt, completion = (float(number) for number in numbers.split(","))
        except ValueError:
            prompt = completion = math.nan
        if not model or not all(math.isfinite(p) and p >= 0 for p in (prompt, completion)):
            raise click.BadParameter(
                "expected MODEL=PROMPT,COMPLETION, prices per million tokens such as "
                f"gpt-4o-mini=0.15,0.60; got {value!r}",
                ctx,
                param,
            )
        prices[model] = (prompt, completion)
    return prices


@click.command(cls=Command)
@click.argument(
    "prompts", metavar="PROMPTS.jsonl", type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Results file (default: PROMPTS.results.jsonl). Existing ids in it are skipped.",
)
@click.option(
    "--rpm", type=click.FloatRange(min=0, min_open=True), help="Requests per minute at most."
)
@click.option(
    "--tpm", type=click.FloatRange(min=0, min_open=True), help="Tokens per minute at most."
)
@click.option(
    "--price",
    "prices",
    multiple=True,
    metavar="MODEL=PROMPT,COMPLETION",
    callback=parse_prices,
    help="A model's prices per million tokens, prompt and completion, for the cost in the "
    "summary (repeatable). The model is the one the server names in its replies.",
)
@click.option(
    "--max-cost",
    type=click.FloatRange(min=0),
    metavar="USD",
    help="Spend at most this many US dollars in this run: a prompt whose estimate would pass "
    "it is not sent (nor any after it); run again with a larger --max-cost to send the rest. "
    "Models are priced from the bundled table and --price.",
)
@click.option("--retry-failed", is_flag=True, help="Remove failed results and send them again.")
@click.option(
    "--provider-batch",
    is_flag=True,
    help="Send the prompts through the provider's Batch API (OpenAI, Anthropic, Gemini: half "
    "the price, done within its window); polls until done. Rerun to resume the same jobs.",
)
@click.option(
    "--poll-interval",
    type=click.FloatRange(min=0, min_open=True),
    default=C.BATCH_POLL_INTERVAL,
    show_default=True,
    help="Seconds between two looks at a provider batch job.",
)
@click.option("--no-progress", is_flag=True, help="No live progress bar.")
@shared_options
@click.pass_context
def batch(
    ctx: click.Context,
    /,
    prompts: Path,
    output: Path | None,
    rpm: float | None,
    tpm: float | None,
    prices: dict[str, tuple[float, float]],
    max_cost: float | None,
    retry_failed: bool,
    no_progress: bool,
    provider_batch: bool,
    poll_interval: float,
    **shared: Any,
) -> None:
    """Run every prompt of a JSONL file; write one result line per prompt.

    \b
    Input lines:  {"id": 1, "prompt": "..."}  or  {"id": "a", "messages": [...]}
                  optional "model" and "params": {"temperature": 0.2, "max_tokens": 100, ...}
    Output lines: {"id", "ok": true, "text", "usage", "finish_reason", "model", "latency_ms",
                   "attempts"}  or  {"id", "ok": false, "error": {"type", "message", "status_code"},
                   "latency_ms", "attempts"}

    Interrupted? Run the same command again: ids already in the output are skipped. Exit
    status: 0 every prompt has an ok result, 1 some failed, 2 bad input, 130 interrupted.
    """
    state = State.of(ctx, shared)
    if provider_batch or ctx.get_parameter_source("poll_interval") != ParameterSource.DEFAULT:
        from ._provider_batch import check_options

        check_options(ctx, provider_batch, rpm=rpm, tpm=tpm, prices=prices, max_cost=max_cost)
    output = output or prompts.with_name(prompts.stem + ".results.jsonl")
    if output.resolve() == prompts.resolve():
        raise CLIError("the results file must not be the prompts file", EXIT_USAGE)
    console = stderr_console()
    shown = escape(str(output))
    try:
        items = read_prompts(prompts)
        existing = prepare_results(output, retry_failed=retry_failed)
    except BatchFileError as exc:
        raise CLIError(str(exc), EXIT_USAGE) from None
    if existing.dropped_partial_line:
        console.print(
            f"[yellow]{shown}: dropped a half-written last line (from an interrupted run)[/yellow]"
        )
    if existing.removed_failed:
        console.print(f"{shown}: removed {existing.removed_failed} failed results to send again")
    pending = [item for item in items if item.key not in existing.done]
    rate = RateLimit(requests_per_minute=rpm, tokens_per_minute=tpm) if rpm or tpm else None
    stats = BatchStats(
        in_file=len(items),
        already_done=len(items) - len(pending),
        to_send=len(pending),
        max_cost=max_cost,
    )
    if provider_batch:
        from ._provider_batch import provider_batch_command

        failed = provider_batch_command(
            ctx, state.config(), items, pending, output, poll_interval, not no_progress
        )
        _check_outcomes(items, output, failed_now=failed)
        return
    if not pending:
        console.print(f"nothing to send: all {len(items)} prompts have results in {shown}")
    else:
        if stats.already_done:
            console.print(
                f"{stats.already_done} of {len(items)} prompts have results in {shown} "
                f"already; sending the other {len(pending)}"
            )
        budget = None if max_cost is None else Budget(max_cost_usd=max_cost)
        config = state.config(rate_limit=rate, prices=prices or None, budget=budget)
        stopped: CLIError | None = None
        try:
            run(_run, config, pending, output, stats, not no_progress)
        except KeyboardInterrupt:
            stats.interrupted = True
        except BatchFileError as exc:  # the results file cannot be written: nothing was sent
            raise CLIError(str(exc), EXIT_USAGE) from None
        except CLIError as exc:  # stopped early (authentication): show what was done first
            stopped = exc
        stdout_console().print(summary_table(stats, output))
        if stopped is not None:
            raise stopped
        if stats.interrupted:
            console.print(
                f"[yellow]interrupted[/yellow]: run the same command again to resume "
                f"({shown} keeps every finished result)"
            )
            ctx.exit(EXIT_INTERRUPTED)
        if stats.unsent:
            console.print(
                f"[yellow]budget reached[/yellow]: {stats.unsent} prompts were not sent "
                f"(spent {format_usd(stats.cost or 0.0)} of --max-cost "
                f"{format_usd(max_cost or 0.0)}); run the same command with a larger "
                "--max-cost to send them"
            )
    _check_outcomes(items, output, failed_now=stats.failed)


def _check_outcomes(items: list[BatchItem], output: Path, *, failed_now: int) -> None:
    """Exit 1 unless every prompt of the file has an ok result, from this run or an earlier."""
    outcomes = recorded_outcomes(output)
    missing = sum(item.key not in outcomes for item in items)
    if missing:
        raise CLIError(f"{missing} of {len(items)} prompts have no result in {output}")
    failed = sum(outcomes[item.key] is False for item in items)
    if failed:
        earlier = (
            f", {failed - failed_now} of them in an earlier run" if failed > failed_now else ""
        )
        raise CLIError(
            f"{failed} of {len(items)} prompts failed{earlier} (see {output}; --retry-failed "
            "sends them again)"
        )


async def _run(
    config: ClientConfig, items: list[BatchItem], output: Path, stats: BatchStats, progress: bool
) -> None:
    await run_job(config, items, output, stats, show_progress=progress)
