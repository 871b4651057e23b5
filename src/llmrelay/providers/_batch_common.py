"""What the provider Batch API adapters share: the request they ask the client to send, and the
readers that turn a provider's per-request outcome into a `ChatResponse` or a typed error.

An adapter (``_openai_batch``, ``_anthropic_batch``, ``_gemini_batch``) does no I/O itself: its
steps are given a `Send` (the client's stage chain: retries, rate limit, mapped errors), so
each wire format reads as the sequence of calls the provider documents.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from .._exceptions import BatchItemError, LLMError, ResponseError, make_status_error

if TYPE_CHECKING:
    from .._batch_job import BatchJob
    from .._types import ChatResponse
    from ._base import Provider


class BatchCall:
    """One HTTP call of a batch operation. `json` is sent as JSON; `content` (with its
    `content_type`) as raw bytes (an upload); `raw` hands `parse` the body's bytes instead of
    its decoded JSON (a JSONL download)."""

    __slots__ = ("content", "content_type", "json", "method", "params", "parse", "path", "raw")

    def __init__(
        self,
        method: str,
        path: str,
        *,
        parse: Callable[[Any, str | None], Any],
        json: Any = None,
        content: bytes | None = None,
        content_type: str | None = None,
        params: dict[str, str] | None = None,
        raw: bool = False,
    ) -> None:
        self.method = method
        self.path = path
        self.parse = parse
        self.json = json
        self.content = content
        self.content_type = content_type
        self.params = params
        self.raw = raw

    def __repr__(self) -> str:
        return f"BatchCall({self.method} {self.path})"


Send = Callable[[BatchCall], Awaitable[Any]]


async def send_for_job(
    send: Send, method: str, path: str, job: Callable[[Any], BatchJob], **options: Any
) -> BatchJob:
    """One call whose reply is the provider's job object, read by `job` (an adapter's reader)."""
    result: BatchJob = await send(
        BatchCall(method, path, parse=lambda data, _rid: job(data), **options)
    )
    return result


async def download(send: Send, path: str) -> bytes:
    """The raw bytes at `path` (a JSONL file of inputs or outcomes)."""
    content: bytes = await send(BatchCall("GET", path, parse=lambda body, _rid: body, raw=True))
    return content


class BatchWire(Protocol):
    """A provider family's Batch API."""

    name: str

    def limits(self) -> tuple[int, int]:
        """(requests, bytes) one job may hold: bigger inputs are split into several jobs."""

    def item(self, provider: Provider, index: int, path: str, body: Any) -> bytes:
        """One request of a job, encoded (a JSONL line or a JSON array element)."""

    async def create(
        self, send: Send, provider: Provider, model: str, items: Sequence[bytes]
    ) -> BatchJob: ...

    async def get(self, send: Send, provider: Provider, job_id: str) -> BatchJob: ...

    async def cancel(self, send: Send, provider: Provider, job_id: str) -> BatchJob: ...

    async def results(
        self, send: Send, provider: Provider, job: BatchJob
    ) -> dict[int, ChatResponse | LLMError]:
        """The outcomes the job has, by input index (relative to the job's first input)."""


def dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def item_outcome(
    provider: Provider, status: int, body: Any, request_id: str | None
) -> ChatResponse | LLMError:
    """One request's outcome from its status and JSON body, as `chat()` would have given it:
    the reply, or the typed error for its status (a body that cannot be read: `ResponseError`)."""
    if 200 <= status < 300:
        try:
            reply: ChatResponse = provider.adapter.parse_chat(provider, body, request_id)
        except LLMError as exc:
            return exc
        return reply
    info = provider.adapter.parse_error(provider, status, body)
    return make_status_error(
        info.status_code or status,
        info.message,
        provider=provider.name,
        request_id=request_id or info.request_id,
        body=body,
        code=info.code,
    )


def not_done(provider: Provider, job_id: str, index: int, reason: str, why: str) -> BatchItemError:
    return BatchItemError(
        f"{provider.name} batch {job_id}: request {index} {why}",
        reason=reason,
        provider=provider.name,
        batch_id=job_id,
        index=index,
    )


# (reason, why) of a request with no outcome: one the job never ran, by the job's status.
NOT_RUN = {
    "expired": ("expired", "expired before it ran"),
    "cancelled": ("cancelled", "was cancelled before it ran"),
}
MISSING = ("missing", "has no result")


def unanswered(job: BatchJob) -> tuple[str, str]:
    """(reason, why) of a request the outcomes leave out, from how the job ended."""
    if job.status == "failed":
        return "failed", "failed with the job: " + ("; ".join(job.errors) or "?")
    return NOT_RUN.get(job.status, MISSING)


def fill_missing(
    provider: Provider,
    job: BatchJob,
    outcomes: dict[int, ChatResponse | LLMError],
    total: int,
    reason_why: tuple[str, str],
) -> dict[int, ChatResponse | LLMError]:
    """`outcomes` with a `BatchItemError` for each of the job's `total` inputs it leaves out."""
    for index in range(total):
        if index not in outcomes:
            outcomes[index] = not_done(provider, job.id, index, *reason_why)
    return outcomes


def jsonl(provider: Provider, content: bytes, what: str) -> list[dict[str, Any]]:
    """The objects of a JSONL body; a line that is not a JSON object is a `ResponseError`."""
    records: list[dict[str, Any]] = []
    for number, line in enumerate(content.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            raise ResponseError(
                f"{provider.name}: line {number} of the {what} is not a JSON object",
                provider=provider.name,
            )
        records.append(record)
    return records


def custom_index(value: Any) -> int | None:
    """The input index llmrelay put in a request's custom id (``"17"``), or None."""
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


def epoch(value: Any) -> datetime | None:
    """A Unix timestamp in seconds as an aware UTC datetime (None when absent)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):  # NaN, or out of datetime's years
            return None
    return None


def rfc3339(value: Any) -> datetime | None:
    """An RFC 3339 time (``2024-09-24T18:37:24.100435Z``, or with nanoseconds) as a datetime."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:  # Python takes at most 6 fraction digits
        digits = "".join(c for c in rest if c.isdigit())
        text = f"{head}.{digits[:6]}{rest[len(digits) :]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def bad_job(provider: Provider, what: str, data: Any) -> ResponseError:
    return ResponseError(f"{provider.name}: {what}", provider=provider.name, body=data)


def as_int(value: Any) -> int:
    """A count as the provider sends it (Gemini's int64 counts are strings)."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return 0


def obj(value: Any) -> dict[str, Any]:
    """`value` when it is a JSON object, else an empty one (a field the provider left out)."""
    return value if isinstance(value, dict) else {}
