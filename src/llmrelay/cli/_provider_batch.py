"""``llmrelay batch --provider-batch``: the prompts go to the provider's Batch API as jobs; the
command polls them with a live status line (status, counts, elapsed), downloads the outcomes
and writes one result line per prompt, in the live batch's format (plus ``"batch_id"``).

Resuming: the jobs are recorded in a state file next to the output (``OUT.provider-batch.json``)
the moment each is made. Run the same command again after Ctrl-C, a crash or a lost connection
and it picks up the same jobs: it never submits a prompt twice. The state file goes once every
result is written. A run killed *during* a job's creation cannot know whether the provider made
it: the state file says so, and the next run stops and asks (see `StateError`).

Prompts with different models or params go in different jobs (one job holds one model and one
set of params).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import anyio
import click
from rich.console import Console
from rich.live import Live
from rich.text import Text

from .._batch_job import BatchCounts, BatchJob
from .._client import AsyncClient
from .._exceptions import APIStatusError, ConfigError, LLMError
from .._provider_batch import batch_wire
from ._batch_io import BatchItem, ResultWriter, outcome_record, recorded_outcomes
from ._common import EXIT_INTERRUPTED, CLIError, run, stderr_console, stdout_console

if TYPE_CHECKING:
    from .._settings import ClientConfig
    from .._types import MessageDict

STATE_VERSION = 1
STATE_SUFFIX = ".provider-batch.json"


def state_path(output: Path) -> Path:
    return output.with_name(output.name + STATE_SUFFIX)


@dataclass(slots=True)
class Totals:
    """What the summary shows of a provider batch run."""

    ok: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    submitted: int = 0  # jobs made by this run (a resumed run makes none)


def _group_key(item: BatchItem) -> str:
    return json.dumps([item.model, item.params], sort_keys=True, ensure_ascii=False)


def _digest(keys: list[str]) -> str:
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()


class State:
    """The state file: the jobs of this output, each with the ids of its prompts in order."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.data = data

    @classmethod
    def load(cls, path: Path) -> State | None:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CLIError(f"{path}: cannot read: {exc.strerror or exc}") from None
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            raise CLIError(f"{path}: not a provider-batch state file this version can read")
        return cls(path, data)

    def save(self) -> None:
        """Written whole to a temporary file, then renamed over: never half a state."""
        temporary = self.path.with_name(self.path.name + ".tmp")
        with temporary.open("w", encoding="utf-8") as file:
            json.dump(self.data, file, ensure_ascii=False)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, self.path)

    @property
    def jobs(self) -> list[dict[str, Any]]:
        return cast("list[dict[str, Any]]", self.data["jobs"])


async def run_provider_batch(
    config: ClientConfig,
    items: list[BatchItem],
    output: Path,
    console: Console,
    *,
    poll_interval: float,
    show_progress: bool,
) -> Totals:
    """Submit (or resume), poll, download and write. `items` are the prompts without a result
    in `output` yet."""
    totals = Totals()
    path = state_path(output)
    by_key = {item.key: item for item in items}
    async with AsyncClient._from_config(config) as client:
        state = State.load(path)
        if state is None:
            state = State(path, {"version": STATE_VERSION, "started": time.time(), "jobs": []})
        else:
            _check_state(state, by_key, output)
            console.print(f"resuming {len(state.jobs)} provider batch job(s) from {path}")
        await _submit_missing(client, state, items, totals, console)
        jobs = await _poll(client, state, console, poll_interval, show_progress)
        writer = ResultWriter(output)
        try:
            done = recorded_outcomes(output)
            for entry, job in zip(state.jobs, jobs, strict=True):
                outcomes = await client.batch_results(job.id)
                for key, outcome in zip(entry["ids"], outcomes, strict=False):
                    if key in done or key not in by_key:
                        continue
                    record = outcome_record(by_key[key].id, outcome)
                    record.update(latency_ms=None, attempts=None, batch_id=job.id)
                    writer.write(record)
                    _count(totals, record)
        finally:
            writer.close()
    path.unlink(missing_ok=True)  # every result is written: nothing left to resume
    return totals


def _check_state(state: State, by_key: dict[str, BatchItem], output: Path) -> None:
    for entry in state.jobs:
        if entry.get("id") is None:
            raise CLIError(
                f"{state.path}: an earlier run was stopped while it created a provider batch "
                "job, so that job may exist without llmrelay knowing its id (check the "
                f"provider's console). Delete {state.path.name} to submit the prompts without "
                f"a result in {output} again."
            )
    missing = [key for entry in state.jobs for key in entry["ids"] if key not in by_key]
    done = recorded_outcomes(output)
    changed = [key for key in missing if key not in done]
    if changed:
        raise CLIError(
            f"{state.path}: its jobs hold prompts that are not in the prompts file any more "
            f"(id {changed[0]}): the file changed since they were submitted. Use another "
            f"--output, or delete {state.path.name} to start over."
        )


async def _submit_missing(
    client: AsyncClient, state: State, items: list[BatchItem], totals: Totals, console: Console
) -> None:
    """Submit the prompts no job of the state holds, one job per (model, params) group."""
    held = {key for entry in state.jobs for key in entry["ids"]}
    groups: dict[str, list[BatchItem]] = {}
    for item in items:
        if item.key not in held:
            groups.setdefault(_group_key(item), []).append(item)
    if groups and client.model is None:
        missing = next((i for g in groups.values() for i in g if i.model is None), None)
        if missing is not None:
            raise ConfigError(
                f"line {missing.line} names no model and there is no default: give --model, "
                'or a "model" on every line'
            )
    if groups:
        batch_wire(client.provider)  # a provider without a Batch API: say so before any file
    for group in groups.values():
        entry: dict[str, Any] = {"id": None, "ids": [item.key for item in group]}
        entry["digest"] = _digest(entry["ids"])
        state.jobs.append(entry)
        state.save()  # "creating": a crash from here on is seen by the next run
        first = group[0]
        try:
            job = await client.submit_batch(
                [cast("list[MessageDict]", item.messages) for item in group],
                model=first.model,
                **first.params,
            )
        except (ConfigError, APIStatusError):
            # Refused before or by the server: no job was made, so none is to be waited for.
            # (A dropped connection is not that sure: the entry stays, and the next run asks.)
            state.jobs.remove(entry)
            if state.jobs:
                state.save()
            else:
                state.path.unlink(missing_ok=True)
            raise
        entry["id"] = job.id
        state.save()
        totals.submitted += 1
        console.print(f"submitted {len(group)} prompts as {job.provider} batch {job.id}")


class _LiveLine:
    """The status line, rendered afresh on every refresh: the elapsed time runs between polls."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.jobs: list[BatchJob] = []

    def __rich__(self) -> Text:
        return Text(_status_line(self.jobs, time.time() - self.started) if self.jobs else "")


async def _poll(
    client: AsyncClient, state: State, console: Console, interval: float, show_progress: bool
) -> list[BatchJob]:
    """Every job's final state, polling all of them every `interval` seconds."""
    view = _LiveLine(float(state.data.get("started") or time.time()))
    jobs: list[BatchJob | None] = [None] * len(state.jobs)
    last_line = ""
    live = Live(view, console=console, refresh_per_second=2) if show_progress else None
    if live is not None:
        live.start()
    try:
        while True:
            for number, entry in enumerate(state.jobs):
                job = jobs[number]
                if job is None or not job.done:
                    jobs[number] = await client.get_batch(entry["id"])
            view.jobs = cast("list[BatchJob]", list(jobs))
            line = _status_line(view.jobs, time.time() - view.started)
            if live is not None:
                live.refresh()
            elif line.partition(" · ")[0] != last_line.partition(" · ")[0]:
                console.print(line)  # without the live line: one line per status change
            last_line = line
            if all(job is not None and job.done for job in jobs):
                break
            await anyio.sleep(interval)
    finally:
        if live is not None:
            live.stop()
    if live is None:
        console.print(last_line)
    return cast("list[BatchJob]", jobs)


def _status_line(jobs: list[BatchJob], elapsed: float) -> str:
    counts = BatchCounts(
        total=sum(job.counts.total for job in jobs),
        succeeded=sum(job.counts.succeeded for job in jobs),
        failed=sum(job.counts.failed for job in jobs),
    )
    statuses = sorted({job.status for job in jobs})
    minutes, seconds = divmod(int(elapsed), 60)
    hours, minutes = divmod(minutes, 60)
    clock = f"{hours}:{minutes:02d}:{seconds:02d}"
    return (
        f"provider batch {'/'.join(statuses)} · {counts.succeeded + counts.failed}/"
        f"{counts.total} done · {counts.succeeded} ok · {counts.failed} failed · {clock} elapsed"
    )


def _count(totals: Totals, record: dict[str, Any]) -> None:
    if record.get("ok"):
        totals.ok += 1
        usage = record.get("usage") or {}
        totals.prompt_tokens += int(usage.get("prompt_tokens") or 0)
        totals.completion_tokens += int(usage.get("completion_tokens") or 0)
    else:
        totals.failed += 1


def summarize(totals: Totals, in_file: int, already: int, elapsed: float, output: Path) -> Any:
    """The end-of-run table of a provider batch."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="provider batch summary", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("prompts in file", f"{in_file}")
    if already:
        table.add_row("already done", f"{already} (skipped)")
    table.add_row("jobs submitted", f"{totals.submitted}")
    table.add_row("ok", f"[green]{totals.ok}[/green]")
    table.add_row("failed", f"[red]{totals.failed}[/red]" if totals.failed else "0")
    tokens = totals.prompt_tokens + totals.completion_tokens
    table.add_row(
        "tokens",
        f"{tokens:,} ({totals.prompt_tokens:,} prompt + {totals.completion_tokens:,} completion)",
    )
    table.add_row("wall time", f"{elapsed:.1f} s")
    table.add_row("results", escape(str(output)))
    return table


def provider_batch_command(
    ctx: click.Context,
    config: ClientConfig,
    items: list[BatchItem],
    pending: list[BatchItem],
    output: Path,
    poll_interval: float,
    show_progress: bool,
) -> int:
    """The ``--provider-batch`` run of ``llmrelay batch``; returns how many prompts failed in
    this run (the caller checks the outcomes of the whole file)."""
    console = stderr_console()
    path = state_path(output)
    if not pending:
        path.unlink(missing_ok=True)  # a run that wrote everything but had not cleaned up
        console.print(f"nothing to send: all {len(items)} prompts have results in {output}")
        return 0
    started = time.perf_counter()
    try:
        totals = run(
            partial(
                run_provider_batch,
                config,
                pending,
                output,
                console,
                poll_interval=poll_interval,
                show_progress=show_progress,
            )
        )
    except LLMError as exc:
        if not path.exists():
            raise  # nothing was submitted: the usual error
        raise CLIError(
            f"{type(exc).__name__}: {exc}\nThe provider keeps running the job(s): run the same "
            f"command again to pick them up ({path} holds their ids)."
        ) from None
    except KeyboardInterrupt:
        console.print(
            "[yellow]interrupted[/yellow]: the provider keeps running the job(s); run the same "
            f"command again to pick them up ({path} holds their ids)"
        )
        ctx.exit(EXIT_INTERRUPTED)
    stdout_console().print(
        summarize(
            totals, len(items), len(items) - len(pending), time.perf_counter() - started, output
        )
    )
    return totals.failed


def check_options(
    ctx: click.Context,
    provider_batch: bool,
    *,
    rpm: Any,
    tpm: Any,
    prices: Any,
    max_cost: Any = None,
) -> None:
    """No option is silently dropped: the live batch's pacing and prices mean nothing to a
    provider batch, and --poll-interval nothing without one."""
    from ._common import EXIT_USAGE

    if not provider_batch:
        raise CLIError("--poll-interval goes with --provider-batch", EXIT_USAGE)
    if max_cost is not None:
        # A budget is checked before each live call; a job's cost is known only from its results.
        raise CLIError(
            "--max-cost bounds the live batch; a provider batch's cost is known only once its "
            "job has run (drop --max-cost, or --provider-batch)",
            EXIT_USAGE,
        )
    given = [flag for flag, value in (("--rpm", rpm), ("--tpm", tpm), ("--price", prices)) if value]
    if given:
        raise CLIError(
            f"{', '.join(given)} pace or price the live batch; a provider batch has neither "
            "(drop them, or --provider-batch)",
            EXIT_USAGE,
        )
