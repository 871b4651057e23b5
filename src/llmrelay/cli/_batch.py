"""``llmrelay batch``: a JSONL file of prompts through the client, resumably.

Concurrency, rate limits and retries are the library's (one `AsyncClient`); this module adds the
files (see `_batch_io`), a live progress bar and the summary. Each outcome is written the moment
it is known, so Ctrl-C or a kill loses nothing: running the same command again sends only the
prompts whose ids are not in the results yet.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import click
import httpx
from rich.console import Console
from rich.markup import escape

from .._client import AsyncClient
from .._config import RateLimit
from .._exceptions import (
    APIStatusError,
    AuthenticationError,
    ConfigError,
    LLMError,
    PermissionDeniedError,
)
from .._profiles import Settings
from ..providers import get_provider
from ._batch_io import (
    BatchFileError,
    BatchItem,
    ResultWriter,
    prepare_results,
    read_prompts,
    recorded_ids,
)
from ._common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    CLIError,
    State,
    run,
    shared_options,
    stderr_console,
    stdout_console,
)
from ._render import BatchStats, ProgressView, progress_bar, summary_table

IDEMPOTENCY_HEADER = "idempotency-key"


class AttemptTracker(httpx.AsyncBaseTransport):
    """A transport wrapper that counts, for the summary, the attempts of each logical request
    (by idempotency key, which stays the same across retries), the statuses the server
    answered, and the attempts that got no complete answer (timeouts, dropped connections)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner
        self.attempts: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.failures: Counter[str] = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if key:
            self.attempts[key] += 1
        with self._counting():
            response = await self._inner.handle_async_request(request)
        self.statuses[response.status_code] += 1
        body = response.stream
        assert isinstance(body, httpx.AsyncByteStream)
        response.stream = _CountedBody(body, self)
        return response

    @contextmanager
    def _counting(self) -> Iterator[None]:
        try:
            yield
        except httpx.TimeoutException:
            self.failures["timeout"] += 1
            raise
        except httpx.TransportError:
            self.failures["connection error"] += 1
            raise

    async def aclose(self) -> None:
        await self._inner.aclose()


class _CountedBody(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, tracker: AttemptTracker) -> None:
        self._inner = inner
        self._tracker = tracker

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with self._tracker._counting():
            async for chunk in self._inner:
                yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


def _http_client(settings: Settings) -> tuple[Any, AttemptTracker, httpx.AsyncClient]:
    """The provider, and an httpx client like the one `AsyncClient` builds, with a tracker."""
    from .._transport import SlotTransport

    provider = get_provider(settings.provider)
    tracker = AttemptTracker(
        provider.transport_factory() if provider.transport_factory else SlotTransport()
    )
    return provider, tracker, httpx.AsyncClient(transport=tracker, follow_redirects=False)


async def run_job(
    settings: Settings,
    items: list[BatchItem],
    output: Path,
    stats: BatchStats,
    *,
    show_progress: bool,
    run_token: str | None = None,
    extra_headers: dict[str, str] | None = None,
    client_options: dict[str, Any] | None = None,
    console: Console | None = None,
    label: str = "batch",
) -> BatchStats:
    """Send `items`, appending one result line per item to `output` as each finishes.

    An authentication or permission error stops the run at once (every later prompt would
    fail the same way); it is not written, so the next run sends that prompt again.
    """
    stats.started = time.perf_counter()
    provider, tracker, http = _http_client(settings)
    kwargs = settings.client_kwargs()
    if client_options and "retry" in client_options:
        kwargs.pop("max_retries", None)
    kwargs.update(client_options or {}, provider=provider)
    async with http, AsyncClient(**kwargs, http_client=http) as client:
        if client.model is None:
            missing = next((item for item in items if item.model is None), None)
            if missing is not None:
                raise ConfigError(
                    f"line {missing.line} names no model and there is no default: give "
                    '--model, or a "model" on every line'
                )
        job = _Job(client, tracker, run_token or os.urandom(6).hex(), extra_headers or {})
        writer = ResultWriter(output)
        try:
            with progress_bar(
                console or stderr_console(), stats, client.usage, enabled=show_progress, label=label
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

    def __init__(
        self,
        client: AsyncClient,
        tracker: AttemptTracker,
        token: str,
        extra_headers: dict[str, str],
    ) -> None:
        self.client = client
        self.tracker = tracker
        self.token = token
        self.extra_headers = extra_headers
        self.fatal: LLMError | None = None

    async def run(
        self, items: list[BatchItem], writer: ResultWriter, stats: BatchStats, bar: ProgressView
    ) -> None:
        pending = iter(items)

        async def worker(scope: anyio.CancelScope) -> None:
            for item in pending:  # one shared iterator: each item is taken once
                record = await self.one(item)
                if record is None:
                    scope.cancel()
                    return
                writer.write(record)  # no await between the outcome and its flushed line
                stats.add(record)
                stats.attempts += record["attempts"]
                bar.advance()

        async with anyio.create_task_group() as tg:
            for _ in range(min(len(items), self.client.max_concurrency * 2)):
                tg.start_soon(worker, tg.cancel_scope)

    async def one(self, item: BatchItem) -> dict[str, Any] | None:
        """The result record of one item (`None` when the whole run must stop)."""
        digest = hashlib.sha256(item.key.encode()).hexdigest()[:20]
        key = f"llmrelay-batch-{self.token}-{digest}"
        started = time.perf_counter()
        record: dict[str, Any] = {"id": item.id}
        try:
            reply = await self.client.chat(
                item.messages,
                model=item.model,
                extra_headers={**self.extra_headers, IDEMPOTENCY_HEADER: key},
                **item.params,
            )
        except (AuthenticationError, PermissionDeniedError) as exc:
            self.fatal = self.fatal or exc
            return None
        except LLMError as exc:
            status = exc.status_code if isinstance(exc, APIStatusError) else None
            record.update(
                ok=False,
                error={"type": type(exc).__name__, "message": str(exc), "status_code": status},
            )
        else:
            usage = reply.usage
            record.update(
                ok=True,
                text=reply.text,
                usage=None
                if usage is None
                else {
                    "prompt_tokens": usage.prompt_tokens,
                    "completion_tokens": usage.completion_tokens,
                    "total_tokens": usage.total_tokens,
                },
                finish_reason=reply.finish_reason,
                model=reply.model,
            )
        record["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
        record["attempts"] = self.tracker.attempts.pop(key, 0)
        return record


@click.command()
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
@click.option("--retry-failed", is_flag=True, help="Remove failed results and send them again.")
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
    retry_failed: bool,
    no_progress: bool,
    **shared: Any,
) -> None:
    """Run every prompt of a JSONL file; write one result line per prompt.

    \b
    Input lines:  {"id": 1, "prompt": "..."}  or  {"id": "a", "messages": [...]}
                  optional "model" and "params": {"temperature": 0.2, "max_tokens": 100, ...}
    Output lines: {"id", "ok": true, "text", "usage", "finish_reason", "latency_ms", "attempts"}
                  {"id", "ok": false, "error": {"type", "message", "status_code"}, ...}

    Interrupted? Run the same command again: ids already in the output are skipped.
    """
    state = State.of(ctx, shared)
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
    settings = state.settings(rate_limit=rate)
    stats = BatchStats(
        in_file=len(items), already_done=len(items) - len(pending), to_send=len(pending)
    )
    if stats.already_done:
        console.print(
            f"{stats.already_done} of {len(items)} prompts already in {shown}; "
            f"sending the other {len(pending)}"
        )
    stopped: CLIError | None = None
    if pending:
        try:
            run(_run, settings, pending, output, stats, not no_progress)
        except KeyboardInterrupt:
            stats.interrupted = True
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
    missing = {item.key for item in items} - recorded_ids(output)
    if missing:
        raise CLIError(f"{len(missing)} prompts have no result in {output}", EXIT_FAILED)
    if stats.failed:
        raise CLIError(
            f"{stats.failed} prompts failed (see {output}; --retry-failed sends them again)",
            EXIT_FAILED,
        )


async def _run(
    settings: Settings, items: list[BatchItem], output: Path, stats: BatchStats, progress: bool
) -> None:
    await run_job(settings, items, output, stats, show_progress=progress)
