"""OpenAI's Batch API: a JSONL file of requests uploaded to ``/files`` (purpose ``batch``), a
job made of it at ``/batches``, and its outcomes in two JSONL files (output and errors).

Each line names its input by ``custom_id`` (the input's index as a string): the files list
outcomes in any order, and leave out what never ran (an expired or cancelled job).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .. import _constants as C
from .._batch_job import BatchCounts, BatchJob, BatchStatus
from .._exceptions import LLMError
from ._batch_common import (
    BatchCall,
    Send,
    bad_job,
    custom_index,
    download,
    dumps,
    epoch,
    fill_missing,
    item_outcome,
    jsonl,
    not_done,
    obj,
    send_for_job,
    unanswered,
)

if TYPE_CHECKING:
    from .._types import ChatResponse
    from ._base import Provider

_STATUS: dict[str, BatchStatus] = {
    "validating": "pending",
    "in_progress": "in_progress",
    "finalizing": "in_progress",
    "cancelling": "cancelling",
    "completed": "completed",
    "failed": "failed",
    "expired": "expired",
    "cancelled": "cancelled",
}
_ENDED = ("completed_at", "failed_at", "expired_at", "cancelled_at")


def multipart(fields: Sequence[tuple[str, str]], filename: str, data: bytes) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body of text `fields` and one file (RFC 7578), and its
    content type. The boundary is random, and checked not to occur in the data."""
    while True:
        boundary = "llmrelay-" + os.urandom(12).hex()
        if boundary.encode() not in data:
            break
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/jsonl\r\n\r\n".encode()
    )
    body = b"".join(parts) + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


class OpenAIBatch:
    name = "openai"

    def limits(self) -> tuple[int, int]:
        return C.OPENAI_BATCH_MAX_REQUESTS, C.OPENAI_BATCH_MAX_BYTES

    def item(self, provider: Provider, index: int, path: str, body: Any) -> bytes:
        url = "/v1/" + path.lstrip("/")
        line = {"custom_id": str(index), "method": "POST", "url": url, "body": body}
        return dumps(line) + b"\n"

    async def create(
        self, send: Send, provider: Provider, model: str, items: Sequence[bytes]
    ) -> BatchJob:
        content, content_type = multipart(
            [("purpose", "batch")], "llmrelay-batch.jsonl", b"".join(items)
        )
        uploaded = await send(
            BatchCall(
                "POST",
                "files",
                content=content,
                content_type=content_type,
                parse=lambda data, _rid: _file_id(provider, data),
            )
        )
        endpoint = "/v1/chat/completions"
        body = {"input_file_id": uploaded, "endpoint": endpoint, "completion_window": "24h"}
        return await send_for_job(
            send, "POST", "batches", lambda d: self.job(provider, d), json=body
        )

    async def get(self, send: Send, provider: Provider, job_id: str) -> BatchJob:
        return await send_for_job(send, "GET", f"batches/{job_id}", lambda d: self.job(provider, d))

    async def cancel(self, send: Send, provider: Provider, job_id: str) -> BatchJob:
        return await send_for_job(
            send, "POST", f"batches/{job_id}/cancel", lambda d: self.job(provider, d)
        )

    def job(self, provider: Provider, data: Any) -> BatchJob:
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            raise bad_job(provider, "the batch object has no 'id'", data)
        raw_status = str(data.get("status") or "")
        status = _STATUS.get(raw_status)
        if status is None:
            raise bad_job(provider, f"unknown batch status {raw_status!r}", data)
        counts = data.get("request_counts") or {}
        errors = data.get("errors")
        errors = errors.get("data") if isinstance(errors, dict) else errors  # a list, as some send
        if not isinstance(errors, list):
            errors = []
        ended = next((data[key] for key in _ENDED if data.get(key) is not None), None)
        return BatchJob(
            id=data["id"],
            provider=provider.name,
            status=status,
            counts=BatchCounts(
                total=_count(counts, "total"),
                succeeded=_count(counts, "completed"),
                failed=_count(counts, "failed"),
            ),
            created_at=epoch(data.get("created_at")),
            ended_at=epoch(ended),
            model=data.get("model") if isinstance(data.get("model"), str) else None,
            provider_status=raw_status,
            errors=tuple(_error_text(error) for error in errors if isinstance(error, dict)),
            raw=data,
        )

    async def results(
        self, send: Send, provider: Provider, job: BatchJob
    ) -> dict[int, ChatResponse | LLMError]:
        data = job.raw if isinstance(job.raw, dict) else {}
        outcomes: dict[int, ChatResponse | LLMError] = {}
        for key in ("output_file_id", "error_file_id"):
            file_id = data.get(key)
            if not isinstance(file_id, str) or not file_id:
                continue
            content = await download(send, f"files/{file_id}/content")
            for record in jsonl(provider, content, f"batch {job.id}'s {key[:-3]} file"):
                index = custom_index(record.get("custom_id"))
                if index is not None:
                    outcomes[index] = _line_outcome(provider, job, index, record)
        total = job.counts.total
        if job.status == "failed" and not total:  # refused as a whole: count its input's lines
            total = await _input_lines(send, data.get("input_file_id"))
        return fill_missing(provider, job, outcomes, total, unanswered(job))


def _line_outcome(
    provider: Provider, job: BatchJob, index: int, record: dict[str, Any]
) -> ChatResponse | LLMError:
    response = record.get("response")
    if isinstance(response, dict) and isinstance(response.get("status_code"), int):
        request_id = response.get("request_id")
        return item_outcome(
            provider,
            response["status_code"],
            response.get("body"),
            request_id if isinstance(request_id, str) else None,
        )
    error = obj(record.get("error"))
    code = str(error.get("code") or "")
    reason = {"batch_expired": "expired", "batch_cancelled": "cancelled"}.get(code, "failed")
    message = str(error.get("message") or "no response")
    return not_done(provider, job.id, index, reason, f"got no response: {message} ({code})")


async def _input_lines(send: Send, file_id: Any) -> int:
    if not isinstance(file_id, str) or not file_id:
        return 0
    content = await download(send, f"files/{file_id}/content")
    return sum(1 for line in content.splitlines() if line.strip())


def _file_id(provider: Provider, data: Any) -> str:
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        raise bad_job(provider, "the uploaded file object has no 'id'", data)
    return str(data["id"])


def _count(counts: Any, key: str) -> int:
    value = counts.get(key) if isinstance(counts, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _error_text(error: dict[str, Any]) -> str:
    text = str(error.get("message") or error.get("code") or "error")
    line = error.get("line")
    return f"line {line}: {text}" if isinstance(line, int) else text
