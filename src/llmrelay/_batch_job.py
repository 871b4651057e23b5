"""The value types of provider Batch APIs: `BatchJob` and its `BatchCounts`.

One status vocabulary for every provider (OpenAI's eight states, Anthropic's three plus its
counts, Gemini's ``BATCH_STATE_*``); the provider's own word stays in `provider_status`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeAlias

BatchStatus: TypeAlias = Literal[
    "pending",  # accepted, not started yet (OpenAI "validating", Gemini PENDING)
    "in_progress",  # running (OpenAI "in_progress"/"finalizing", Gemini RUNNING)
    "cancelling",  # a cancel was asked for; parts may still finish
    "completed",  # ended: every request has an outcome (some may be errors)
    "failed",  # the job as a whole was refused (e.g. OpenAI input validation)
    "expired",  # not finished in the provider's window: the rest is not done
    "cancelled",  # cancelled: what finished before the cancel has results
]

# The statuses a job never leaves.
FINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed", "expired", "cancelled"})


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchCounts:
    """How many of a job's requests have an outcome: `succeeded` and `failed` (errored,
    expired or cancelled requests count as failed); the rest are `pending`."""

    total: int
    succeeded: int = 0
    failed: int = 0

    @property
    def pending(self) -> int:
        return max(0, self.total - self.succeeded - self.failed)


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchJob:
    """A provider batch job, as `submit_batch()` and `get_batch()` return it.

    `id` is what `get_batch()`, `batch_results()` and `cancel_batch()` take. A job that had
    to be split to the provider's limits (e.g. OpenAI's 50,000 requests per file) is still one
    `BatchJob`: its id is ``"split:"`` followed by the parts' ids joined with ``","`` (listed in
    `parts`), its counts are the parts' sums, and its status is the least advanced of theirs
    (all parts final: "completed" only when each completed).

    `errors` holds job-level messages (why a job failed); `raw` the provider's job object (a
    tuple of them for a split job).
    """

    id: str
    provider: str
    status: BatchStatus
    counts: BatchCounts
    created_at: datetime | None = None
    ended_at: datetime | None = None
    model: str | None = None
    provider_status: str = ""
    parts: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    raw: Any = field(default=None, repr=False, compare=False)

    @property
    def done(self) -> bool:
        """True once the job has ended (completed, failed, expired or cancelled): its
        results can be fetched."""
        return self.status in FINAL_STATUSES
