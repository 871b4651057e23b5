"""How batch runs look: the live progress bar and the summary table."""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from .._usage import UsageTotals, format_usd


@dataclass(slots=True)
class BatchStats:
    """Counts of one batch run (live while it runs, final after)."""

    in_file: int = 0
    already_done: int = 0
    to_send: int = 0
    ok: int = 0
    failed: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None
    unpriced: list[str] = field(default_factory=list)  # models used that have no price
    max_cost: float | None = None  # --max-cost
    unsent: int = 0  # prompts not sent: the budget would have been passed
    statuses: Counter[int] = field(default_factory=Counter)
    # attempts without a complete answer, by kind: "timeout", "connection error"
    transport_failures: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.perf_counter)
    elapsed: float = 0.0
    interrupted: bool = False

    @property
    def done(self) -> int:
        return self.ok + self.failed

    def add(self, record: dict[str, Any]) -> None:
        if record.get("ok"):
            self.ok += 1
            self.latencies_ms.append(float(record.get("latency_ms") or 0.0))
        else:
            self.failed += 1
            self.errors[str(record.get("error", {}).get("type", "Error"))] += 1

    def absorb_usage(self, usage: UsageTotals) -> None:
        self.retries = usage.retries
        self.prompt_tokens = usage.prompt_tokens
        self.completion_tokens = usage.completion_tokens
        self.cost = usage.cost
        self.unpriced = usage.unpriced


def percentile(values: Sequence[float], share: float) -> float | None:
    """Nearest-rank percentile (`share` in 0..1) of `values`, or `None` when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


class _LiveCounts(ProgressColumn):
    """ok / failed / retries / tokens, read live from the stats and the client's usage."""

    def __init__(self, stats: BatchStats, usage: UsageTotals) -> None:
        super().__init__()
        self.stats = stats
        self.usage = usage

    def render(self, task: Task) -> Text:
        s, u = self.stats, self.usage
        text = Text()
        text.append(f"ok {s.ok}", style="green")
        text.append(" ")
        text.append(f"failed {s.failed}", style="red" if s.failed else "dim")
        text.append(f" retries {u.retries} tok {u.prompt_tokens + u.completion_tokens:,}")
        return text


class ProgressView:
    """The live bar (a no-op when disabled)."""

    def __init__(self, progress: Progress | None, task: Any) -> None:
        self._progress = progress
        self._task = task

    def advance(self) -> None:
        if self._progress is not None:
            self._progress.advance(self._task)


@contextmanager
def progress_bar(
    console: Console, stats: BatchStats, usage: UsageTotals, *, enabled: bool, label: str = "batch"
) -> Iterator[ProgressView]:
    if not enabled:
        yield ProgressView(None, None)
        return
    progress = Progress(
        BarColumn(bar_width=16),
        MofNCompleteColumn(),
        _LiveCounts(stats, usage),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        refresh_per_second=8,
    )
    with progress:
        task = progress.add_task(label, total=stats.to_send)
        yield ProgressView(progress, task)


def summary_table(stats: BatchStats, results: Path | None) -> Table:
    """The end-of-run table: outcomes, retries, latency percentiles, tokens, cost, time."""
    table = Table(title="batch summary", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("prompts in file", f"{stats.in_file}")
    if stats.already_done:
        table.add_row("already done", f"{stats.already_done} (skipped)")
    table.add_row("sent", f"{stats.done} of {stats.to_send}")
    table.add_row("ok", f"[green]{stats.ok}[/green]")
    failed = f"[red]{stats.failed}[/red]" if stats.failed else "0"
    if stats.errors:
        failed += "  (" + ", ".join(f"{n} ×{c}" for n, c in stats.errors.most_common()) + ")"
    table.add_row("failed", failed)
    seen = [f"{code} ×{count}" for code, count in sorted(stats.statuses.items()) if code >= 400]
    seen += [f"{kind} ×{count}" for kind, count in sorted(stats.transport_failures.items())]
    retries = f"{stats.retries}"
    if seen:
        retries += "  (server faults seen: " + ", ".join(seen) + ")"
    table.add_row("retries", retries)
    p50, p90, p99 = (percentile(stats.latencies_ms, q) for q in (0.5, 0.9, 0.99))
    if p50 is not None and p90 is not None and p99 is not None:
        table.add_row("latency p50/p90/p99", f"{p50:,.0f} / {p90:,.0f} / {p99:,.0f} ms")
    total = stats.prompt_tokens + stats.completion_tokens
    table.add_row(
        "tokens",
        f"{total:,} ({stats.prompt_tokens:,} prompt + {stats.completion_tokens:,} completion)",
    )
    hint = " (--price MODEL=PROMPT,COMPLETION)"
    if stats.cost is not None:
        cost = format_usd(stats.cost)
        if stats.unpriced:
            cost += f" + unknown for {', '.join(stats.unpriced)}{hint}"
        table.add_row("cost", escape(cost))
    elif stats.unpriced:
        models = ", ".join(stats.unpriced)
        table.add_row("cost", escape(f"unknown: no price for {models}{hint}"))
    if stats.max_cost is not None:
        spent = format_usd(stats.cost or 0.0)
        line = f"{spent} spent of {format_usd(stats.max_cost)}"
        if stats.unsent:
            line += f"; [yellow]{stats.unsent} prompts not sent[/yellow] (the budget would pass)"
        table.add_row("budget", line)
    rate = (
        f" ({stats.done / stats.elapsed:,.0f} prompts/s)"
        if stats.elapsed > 0 and stats.done
        else ""
    )
    table.add_row("wall time", f"{stats.elapsed:.1f} s{rate}")
    if results is not None:
        table.add_row("results", escape(str(results)))
    return table
