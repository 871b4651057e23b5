"""Gemini's Batch Mode with inline requests: ``POST models/{model}:batchGenerateContent`` with
``batch.inputConfig.requests.requests`` (each ``{request, metadata: {key}}``) starts a
long-running operation named ``batches/{id}``; ``GET batches/{id}`` polls it (``metadata`` is
the batch: state, stats), and once done its ``response.inlinedResponses.inlinedResponses`` hold
one ``{response | error, metadata}`` per request. ``POST batches/{id}:cancel`` cancels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .. import _constants as C
from .._batch_job import BatchCounts, BatchJob, BatchStatus
from .._exceptions import LLMError
from ._batch_common import (
    BatchCall,
    Send,
    as_int,
    bad_job,
    custom_index,
    dumps,
    fill_missing,
    item_outcome,
    obj,
    rfc3339,
    send_for_job,
    unanswered,
)
from ._gemini_request import model_path

if TYPE_CHECKING:
    from .._types import ChatResponse
    from ._base import Provider

# The REST API says BATCH_STATE_*; the google-genai SDK shows the same states as JOB_STATE_*.
_STATUS: dict[str, BatchStatus] = {
    "PENDING": "pending",
    "QUEUED": "pending",
    "RUNNING": "in_progress",
    "CANCELLING": "cancelling",
    "SUCCEEDED": "completed",
    "FAILED": "failed",
    "CANCELLED": "cancelled",
    "EXPIRED": "expired",
}
# google.rpc.Code of a request's error, as the HTTP status the same error has on its own.
_RPC_STATUS = {3: 400, 4: 504, 5: 404, 7: 403, 8: 429, 9: 400, 11: 400, 13: 500, 14: 503, 16: 401}


class GeminiBatch:
    name = "gemini"

    def limits(self) -> tuple[int, int]:
        return C.GEMINI_BATCH_MAX_REQUESTS, C.GEMINI_BATCH_MAX_BYTES

    def item(self, provider: Provider, index: int, path: str, body: Any) -> bytes:
        return dumps({"request": body, "metadata": {"key": str(index)}})

    async def create(
        self, send: Send, provider: Provider, model: str, items: Sequence[bytes]
    ) -> BatchJob:
        head = b'{"batch":{"displayName":"llmrelay-batch","inputConfig":{"requests":{"requests":['
        return await send_for_job(
            send,
            "POST",
            f"{model_path(model)}:batchGenerateContent",
            lambda d: self.job(provider, d),
            content=head + b",".join(items) + b"]}}}}",
            content_type="application/json",
        )

    async def get(self, send: Send, provider: Provider, job_id: str) -> BatchJob:
        return await send_for_job(send, "GET", job_id, lambda d: self.job(provider, d))

    async def cancel(self, send: Send, provider: Provider, job_id: str) -> BatchJob:
        await send(BatchCall("POST", f"{job_id}:cancel", parse=lambda d, _r: d))
        return await self.get(send, provider, job_id)

    def job(self, provider: Provider, data: Any) -> BatchJob:
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            raise bad_job(provider, "the batch operation has no 'name'", data)
        meta = obj(data.get("metadata"))
        raw_status = str(meta.get("state") or "")
        status = _STATUS.get(raw_status.rpartition("_STATE_")[2])
        if status is None:
            if data.get("done") and data.get("error"):
                status = "failed"
            else:
                raise bad_job(provider, f"unknown batch state {raw_status!r}", data)
        stats = obj(meta.get("batchStats"))
        error = data.get("error") if isinstance(data.get("error"), dict) else None
        model = meta.get("model")
        return BatchJob(
            id=data["name"],
            provider=provider.name,
            status=status,
            counts=BatchCounts(
                total=as_int(stats.get("requestCount")),
                succeeded=as_int(stats.get("successfulRequestCount")),
                failed=as_int(stats.get("failedRequestCount")),
            ),
            created_at=rfc3339(meta.get("createTime")),
            ended_at=rfc3339(meta.get("endTime")),
            model=model.removeprefix("models/") if isinstance(model, str) else None,
            provider_status=raw_status,
            errors=(str(error.get("message") or "failed"),) if error else (),
            raw=data,
        )

    async def results(
        self, send: Send, provider: Provider, job: BatchJob
    ) -> dict[int, ChatResponse | LLMError]:
        data = job.raw if isinstance(job.raw, dict) else {}
        output = data.get("response")
        if not isinstance(output, dict):  # the batch carries its output too
            meta = obj(data.get("metadata"))
            output = obj(meta.get("output"))
        listed = output.get("inlinedResponses")
        if isinstance(listed, dict):
            listed = listed.get("inlinedResponses")
        if not isinstance(listed, list):
            listed = []
        outcomes: dict[int, ChatResponse | LLMError] = {}
        for position, entry in enumerate(listed):
            if not isinstance(entry, dict):
                continue
            meta = obj(entry.get("metadata"))
            index = custom_index(meta.get("key"))
            index = position if index is None else index
            if isinstance(entry.get("error"), dict):
                error = entry["error"]
                status = _RPC_STATUS.get(as_int(error.get("code")), 500)
                outcomes[index] = item_outcome(provider, status, {"error": error}, None)
            else:
                outcomes[index] = item_outcome(provider, 200, entry.get("response"), None)
        return fill_missing(provider, job, outcomes, job.counts.total, unanswered(job))
