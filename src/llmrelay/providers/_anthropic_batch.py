"""Anthropic's Message Batches API: ``POST /messages/batches`` with every request inline
(``{custom_id, params}``), polled at ``/messages/batches/{id}``, its outcomes a JSONL file at
the job's ``results_url`` (one ``{custom_id, result}`` line per request, in any order).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .. import _constants as C
from .._batch_job import BatchCounts, BatchJob, BatchStatus
from .._exceptions import LLMError
from ._batch_common import (
    MISSING,
    NOT_RUN,
    Send,
    as_int,
    bad_job,
    custom_index,
    download,
    dumps,
    fill_missing,
    item_outcome,
    jsonl,
    not_done,
    obj,
    rfc3339,
    send_for_job,
)

if TYPE_CHECKING:
    from .._types import ChatResponse
    from ._base import Provider

# An errored request's error type, as the status the same error has on /messages.
_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


class AnthropicBatch:
    name = "anthropic"

    def limits(self) -> tuple[int, int]:
        return C.ANTHROPIC_BATCH_MAX_REQUESTS, C.ANTHROPIC_BATCH_MAX_BYTES

    def item(self, provider: Provider, index: int, path: str, body: Any) -> bytes:
        return dumps({"custom_id": str(index), "params": body})

    async def create(
        self, send: Send, provider: Provider, model: str, items: Sequence[bytes]
    ) -> BatchJob:
        content = b'{"requests":[' + b",".join(items) + b"]}"
        return await send_for_job(
            send,
            "POST",
            "messages/batches",
            lambda d: self.job(provider, d),
            content=content,
            content_type="application/json",
        )

    async def get(self, send: Send, provider: Provider, job_id: str) -> BatchJob:
        return await send_for_job(
            send, "GET", f"messages/batches/{job_id}", lambda d: self.job(provider, d)
        )

    async def cancel(self, send: Send, provider: Provider, job_id: str) -> BatchJob:
        return await send_for_job(
            send, "POST", f"messages/batches/{job_id}/cancel", lambda d: self.job(provider, d)
        )

    def job(self, provider: Provider, data: Any) -> BatchJob:
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            raise bad_job(provider, "the message batch object has no 'id'", data)
        raw_status = str(data.get("processing_status") or "")
        counts = obj(data.get("request_counts"))
        n = {key: as_int(counts.get(key)) for key in _COUNT_KEYS}
        status: BatchStatus
        if raw_status == "in_progress":
            status = "in_progress"
        elif raw_status == "canceling":
            status = "cancelling"
        elif raw_status == "ended":
            if data.get("cancel_initiated_at"):
                status = "cancelled"
            elif n["expired"]:
                status = "expired"
            else:
                status = "completed"
        else:
            raise bad_job(provider, f"unknown processing_status {raw_status!r}", data)
        return BatchJob(
            id=data["id"],
            provider=provider.name,
            status=status,
            counts=BatchCounts(
                total=sum(n.values()),
                succeeded=n["succeeded"],
                failed=n["errored"] + n["canceled"] + n["expired"],
            ),
            created_at=rfc3339(data.get("created_at")),
            ended_at=rfc3339(data.get("ended_at")),
            provider_status=raw_status,
            raw=data,
        )

    async def results(
        self, send: Send, provider: Provider, job: BatchJob
    ) -> dict[int, ChatResponse | LLMError]:
        data = job.raw if isinstance(job.raw, dict) else {}
        content = await download(send, _results_path(provider, job.id, data.get("results_url")))
        outcomes: dict[int, ChatResponse | LLMError] = {}
        for record in jsonl(provider, content, f"results of batch {job.id}"):
            index = custom_index(record.get("custom_id"))
            if index is not None:
                outcomes[index] = _outcome(provider, job.id, index, record.get("result"))
        # Each request's line says how it ended (cancelled, expired): a line left out is missing.
        return fill_missing(provider, job, outcomes, job.counts.total, MISSING)


_COUNT_KEYS = ("processing", "succeeded", "errored", "canceled", "expired")


def _results_path(provider: Provider, job_id: str, url: Any) -> str:
    """The job's ``results_url`` when it is on the API's own host (the key goes with the
    request: never to another host), else the documented path under the base URL."""
    fallback = f"messages/batches/{job_id}/results"
    if not isinstance(url, str) or not url:
        return fallback
    there, base = urlsplit(url), urlsplit(provider.base_url)
    if (there.scheme, there.netloc) != (base.scheme, base.netloc):
        return fallback
    return url


def _outcome(provider: Provider, job_id: str, index: int, result: Any) -> ChatResponse | LLMError:
    kind = result.get("type") if isinstance(result, dict) else None
    if kind == "succeeded" and isinstance(result, dict):
        return item_outcome(provider, 200, result.get("message"), None)
    if kind == "errored" and isinstance(result, dict):
        body = result.get("error")
        inner = body.get("error") if isinstance(body, dict) else None
        error_type = inner.get("type") if isinstance(inner, dict) else None
        status = _ERROR_STATUS.get(str(error_type), 500)
        return item_outcome(provider, status, body, None)
    if kind == "canceled":
        return not_done(provider, job_id, index, *NOT_RUN["cancelled"])
    if kind == "expired":
        return not_done(provider, job_id, index, *NOT_RUN["expired"])
    return not_done(provider, job_id, index, "missing", f"has an unknown result type {kind!r}")
