"""Provider Batch APIs behind `AsyncClient.submit_batch/get_batch/batch_results/cancel_batch/
wait_batch`: one job for many prompts, run by the provider within its window at its batch
price, instead of one request per prompt.

Every HTTP call goes through the client's stage chain (retries, rate limit, typed errors), as
`chat()`'s do. The wire formats live in ``providers/_{openai,anthropic,gemini}_batch.py``.

An input larger than one job may hold (``_constants``: requests and bytes per job) is split
into consecutive parts, each its own provider job, shown to the user as one `BatchJob` whose
id is ``"split:<id>@<offset>,<id>@<offset>..."`` (`offset`: the index of the part's first
input). Every request's custom id is its index within its part.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import anyio

from . import _constants as C
from ._batch_job import FINAL_STATUSES, BatchCounts, BatchJob, BatchStatus
from ._exceptions import BatchItemError, BatchNotReadyError, ConfigError, LLMError
from ._request import ChatRequest, MessagesInput, WireRequest, build_params, normalize_messages

if TYPE_CHECKING:
    from ._client import AsyncClient
    from ._config import Timeout
    from ._types import ChatResponse
    from .providers._base import Provider
    from .providers._batch_common import BatchCall, BatchWire, Send

# Presets whose service has a Batch API llmrelay speaks, by wire family. A provider object
# (a plugin, or an OpenAI-compatible service that has one) opts in with
# ``options={"batch_api": "openai"}``.
_FAMILY_OF_PRESET = {
    "openai": "openai",
    "mock": "openai",
    "anthropic": "anthropic",
    "gemini": "gemini",
}
SPLIT_PREFIX = "split:"
_PROVIDER_ID = re.compile(r"[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)?")


def batch_wire(provider: Provider) -> BatchWire:
    """The Batch API adapter of `provider`'s family; a `ConfigError` naming the providers that
    have one when it has none."""
    family = provider.options.get("batch_api") or _FAMILY_OF_PRESET.get(provider.name)
    if family == "openai":
        from .providers._openai_batch import OpenAIBatch

        return OpenAIBatch()
    if family == "anthropic":
        from .providers._anthropic_batch import AnthropicBatch

        return AnthropicBatch()
    if family == "gemini":
        from .providers._gemini_batch import GeminiBatch

        return GeminiBatch()
    names = ", ".join(sorted(_FAMILY_OF_PRESET))
    raise ConfigError(
        f"provider {provider.name!r} has no Batch API that llmrelay speaks; provider batches "
        f"work with: {names} (an OpenAI-compatible service with one: "
        "Provider(..., options={'batch_api': 'openai'}))"
    )


def make_send(
    client: AsyncClient,
    *,
    timeout: Timeout | float | None = None,
    max_retries: int | None = None,
    extra_headers: Mapping[str, str] | None = None,
) -> Send:
    """A `Send` over `client`'s stage chain."""

    async def send(request: BatchCall) -> Any:
        wire = WireRequest(
            method=request.method, path=request.path, json=request.json, params=request.params
        )
        call = client._call(
            wire,
            parse=request.parse,
            timeout=timeout,
            max_retries=max_retries,
            extra_headers=extra_headers,
            operation="batch",  # not a chat: a budget lets it through, hooks see it as such
        )
        if request.content is not None:
            call.content = request.content
            call.headers["content-type"] = request.content_type or "application/octet-stream"
        call.raw = request.raw
        return (await client._chain.send(call)).value

    return send


def encode_items(
    client: AsyncClient,
    wire: BatchWire,
    prompts: Sequence[MessagesInput],
    model: str,
    params: dict[str, Any],
    extra_body: Mapping[str, Any] | None,
) -> tuple[list[bytes], dict[str, str]]:
    """Every prompt as its job line (checked as `chat()` checks it, before anything is sent),
    and the headers the provider wants with such requests (they go on the job's creation)."""
    p = client.provider
    items: list[bytes] = []
    headers: dict[str, str] = {}
    for index, prompt in enumerate(prompts):
        request = ChatRequest(
            model=model,
            messages=normalize_messages(prompt),
            params=params,
            extra_body=extra_body,
        )
        built = p.adapter.build_chat(p, request)
        headers.update(built.headers or {})
        items.append(wire.item(p, index, built.path, built.json))
    return items, headers


def split(items: list[bytes], max_requests: int, max_bytes: int) -> list[tuple[int, int]]:
    """Consecutive (start, end) ranges of `items`, each within the job limits."""
    budget = max_bytes - C.BATCH_ENVELOPE_BYTES
    ranges: list[tuple[int, int]] = []
    start = size = 0
    for index, item in enumerate(items):
        if len(item) > budget:
            raise ConfigError(
                f"prompt {index} is {len(item)} bytes as a batch request, more than one job "
                f"may hold ({budget} bytes)"
            )
        if index > start and (index - start >= max_requests or size + len(item) > budget):
            ranges.append((start, index))
            start, size = index, 0
        size += len(item)
    if start < len(items):
        ranges.append((start, len(items)))
    return ranges


async def submit(
    client: AsyncClient, prompts: Sequence[MessagesInput], options: dict[str, Any]
) -> BatchJob:
    """`options` are `chat()`'s keyword arguments (checked by the caller)."""
    p = client.provider
    wire = batch_wire(p)  # first: a provider without one is the error to show
    options = dict(options)
    model = client._model(options.pop("model", None))
    extra_body = options.pop("extra_body", None)
    extra_headers = options.pop("extra_headers", None)
    timeout = options.pop("timeout", None)
    max_retries = options.pop("max_retries", None)
    named = ("temperature", "max_tokens", "top_p", "stop", "tools", "tool_choice")
    params = build_params(
        **{name: options.pop(name, None) for name in named},
        response_format=options.pop("response_format", None),
        seed=options.pop("seed", None),
        n=options.pop("n", None),
    )
    if not prompts:
        raise ConfigError("submit_batch() needs at least one prompt")
    items, headers = encode_items(client, wire, prompts, model, params, extra_body)
    ranges = split(items, *wire.limits())
    send = make_send(
        client,
        timeout=timeout,
        max_retries=max_retries,
        extra_headers={**headers, **(extra_headers or {})},
    )
    if len(ranges) == 1:
        return await wire.create(send, p, model, items)
    del items[ranges[0][1] :]  # only the first part's encoding is kept
    parts: list[tuple[int, BatchJob]] = []
    try:
        for start, end in ranges:
            # Custom ids count from 0 in every job: a later part's prompts are encoded again.
            part = (
                encode_items(client, wire, prompts[start:end], model, params, extra_body)[0]
                if start
                else items[start:end]
            )
            parts.append((start, await wire.create(send, p, model, part)))
    except BaseException:
        # The parts made so far would run (and be billed) with nobody to collect them.
        with anyio.move_on_after(C.BATCH_CLEANUP_SECONDS, shield=True):
            for _, job in parts:
                with contextlib.suppress(LLMError):
                    await wire.cancel(send, p, job.id)
        raise
    return combine(p, parts)


def parse_id(job_id: str) -> list[tuple[int, str]]:
    """[(offset, provider job id)] of a `BatchJob.id`."""
    if not isinstance(job_id, str) or not job_id.strip():
        raise ConfigError(f"a batch id must be a non-empty string, got {job_id!r}")
    if not job_id.startswith(SPLIT_PREFIX):
        parts = [(0, job_id)]
    else:
        parts = []
        for entry in job_id[len(SPLIT_PREFIX) :].split(","):
            part, sep, offset = entry.rpartition("@")
            if not sep or not part or not offset.isdigit():
                raise ConfigError(f"malformed split batch id {job_id!r}")
            parts.append((int(offset), part))
    for _, part in parts:
        # Ids go into URL paths: "../files" must not reach another endpoint.
        if not _PROVIDER_ID.fullmatch(part):
            raise ConfigError(f"{part!r} is not a batch id (e.g. batch_abc, batches/abc)")
    return parts


def combine(provider: Provider, parts: list[tuple[int, BatchJob]]) -> BatchJob:
    """One `BatchJob` for the parts of a split submission."""
    if len(parts) == 1 and parts[0][0] == 0:
        return parts[0][1]
    jobs = [job for _, job in parts]
    statuses = {job.status for job in jobs}
    status: BatchStatus
    if statuses <= FINAL_STATUSES:
        status = next((s for s in ("failed", "expired", "cancelled") if s in statuses), "completed")
    elif "cancelling" in statuses:
        status = "cancelling"
    elif statuses == {"pending"}:
        status = "pending"
    else:
        status = "in_progress"
    created = [job.created_at for job in jobs if job.created_at is not None]
    ended = [job.ended_at for job in jobs if job.ended_at is not None]
    return BatchJob(
        id=SPLIT_PREFIX + ",".join(f"{job.id}@{offset}" for offset, job in parts),
        provider=provider.name,
        status=status,
        counts=BatchCounts(
            total=sum(job.counts.total for job in jobs),
            succeeded=sum(job.counts.succeeded for job in jobs),
            failed=sum(job.counts.failed for job in jobs),
        ),
        created_at=min(created) if created else None,
        ended_at=max(ended) if ended and status in FINAL_STATUSES else None,
        model=next((job.model for job in jobs if job.model), None),
        provider_status=",".join(job.provider_status for job in jobs),
        parts=tuple(job.id for job in jobs),
        errors=tuple(error for job in jobs for error in job.errors),
        raw=tuple(job.raw for job in jobs),
    )


async def _parts(client: AsyncClient, job_id: str) -> list[tuple[int, BatchJob]]:
    p = client.provider
    wire = batch_wire(p)
    send = make_send(client)
    return [(offset, await wire.get(send, p, part)) for offset, part in parse_id(job_id)]


async def get(client: AsyncClient, job_id: str) -> BatchJob:
    return combine(client.provider, await _parts(client, job_id))


async def cancel(client: AsyncClient, job_id: str) -> BatchJob:
    p = client.provider
    wire = batch_wire(p)
    send = make_send(client)
    parts: list[tuple[int, BatchJob]] = []
    for offset, part in parse_id(job_id):
        job = await wire.get(send, p, part)
        if not job.done:
            job = await wire.cancel(send, p, part)
        parts.append((offset, job))
    return combine(p, parts)


async def results(client: AsyncClient, job_id: str) -> list[ChatResponse | LLMError]:
    p = client.provider
    wire = batch_wire(p)
    send = make_send(client)
    parts = await _parts(client, job_id)
    whole = combine(p, parts)
    if not whole.done:
        raise BatchNotReadyError(
            f"{p.name} batch {job_id} has not ended yet (status {whole.status}, "
            f"{whole.counts.succeeded + whole.counts.failed} of {whole.counts.total} done): "
            "wait_batch() waits for it",
            job=whole,
        )
    outcomes: list[ChatResponse | LLMError] = []
    for number, (offset, job) in enumerate(parts):
        if offset != len(outcomes):
            raise ConfigError(f"split batch id {job_id!r}: part {number} starts at {offset}")
        found = await wire.results(send, p, job)
        for value in found.values():
            if isinstance(value, LLMError):  # a server may echo what it was sent, key and all
                client._mask.error(value)
        size = max(found, default=-1) + 1
        if number + 1 < len(parts):
            size = parts[number + 1][0] - offset
        elif job.counts.total:
            # The job's own count: a custom id beyond it names none of its prompts (and a huge
            # one must not make a list of that many "missing" outcomes).
            size = job.counts.total
        for index in range(size):
            outcome = found.get(index)
            if outcome is None:
                outcome = BatchItemError(
                    f"{p.name} batch {job.id}: request {index} has no result",
                    reason="missing",
                    provider=p.name,
                    batch_id=job.id,
                    index=offset + index,
                )
            elif isinstance(outcome, BatchItemError):
                outcome.index = offset + index
            outcomes.append(outcome)
    return outcomes


async def wait(
    client: AsyncClient,
    job_id: str,
    *,
    poll_interval: float,
    timeout: float | None,
    on_progress: Callable[[BatchJob], Any] | None,
) -> BatchJob:
    if not (math.isfinite(poll_interval) and poll_interval > 0):
        raise ConfigError(f"poll_interval must be a number of seconds > 0, got {poll_interval!r}")
    with anyio.fail_after(timeout):
        while True:
            job = await get(client, job_id)
            if on_progress is not None:
                on_progress(job)
            if job.done:
                return job
            await anyio.sleep(poll_interval)
