"""The mock's provider Batch APIs: OpenAI (``/files`` + ``/batches``), Anthropic
(``/messages/batches``) and Gemini (``models/{m}:batchGenerateContent``, ``batches/{id}``).

Unlike the rest of the engine this part has state (uploaded files, jobs) and a clock: a job
runs for its delay (``MockEngine(batch_delay=...)``, or the ``x-mock-batch`` header on the
request that creates it), its counts growing with the time passed, and then ends. Each request
of a job is answered by the engine itself when the job ends, exactly as the same request sent
alone would be: so fault injection applies per request (``fault_rate``, a ``+fault=`` model).
A create or upload repeated with the same ``idempotency-key`` (a client's retry after a lost
answer) gets the job or file the first one made.

Whole-job and per-request faults: the header ``x-mock-batch`` on the creating request (or
``MockEngine(batch_fault=...)``), ``[KIND][;OPTION=VALUE]...``:

- ``expire`` (option ``done=N``, default 0): the job expires after its delay with only its
  first N requests answered; the others are reported expired.
- ``fail``: the job fails validation (OpenAI ``failed`` with ``errors``, Gemini
  ``BATCH_STATE_FAILED``; Anthropic validates when the job is made: a 400 at once).
- ``delay=S``: this job's delay in seconds.
- ``fail-items=0,3``: those requests (by position) fail with ``item-status=500`` (any 400-599).
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._batch_fault import BatchFault
from ._batch_io import answer_body, iso, json_object, multipart
from ._common import RequestError, dumps
from ._types import MockResponse

Process = Callable[[str, str, Mapping[str, str], Mapping[str, str], bytes], MockResponse]

OPENAI_MAX_REQUESTS = 50_000
OPENAI_MAX_FILE_BYTES = 200 * 1024 * 1024
ANTHROPIC_MAX_REQUESTS = 100_000
DEFAULT_BATCH_DELAY = 0.2  # seconds: long enough to see a job run, short for examples
_WINDOW = 24 * 3600  # OpenAI's completion window and Anthropic's expiry, in seconds

_ANTHROPIC = re.compile(r"/messages/batches(?:/([^/]+)(?:/(cancel|results))?)?/?$")
_GEMINI_CREATE = re.compile(r"/(models/[^/:]+):batchGenerateContent$")
_GEMINI_CANCEL = re.compile(r"/(batches/[^/:]+):cancel$")
_BATCHES = re.compile(r"/batches(?:/([^/:]+)(?:/(cancel))?)?/?$")
_FILES = re.compile(r"/files(?:/([^/]+)(?:/(content))?)?/?$")
# HTTP status of a request's error, as the google.rpc.Code Gemini reports it inline.
_RPC_CODE = {400: 3, 401: 16, 403: 7, 404: 5, 409: 10, 429: 8, 500: 13, 503: 14, 504: 4}


@dataclass(frozen=True, slots=True)
class _Answer:
    """How the engine answered one request of a job (its body decoded once)."""

    status: int
    body: Any
    request_id: str


@dataclass(slots=True)
class _Request:
    custom_id: str
    path: str  # the single-request endpoint it would go to
    body: bytes


@dataclass(slots=True)
class _Job:
    id: str
    family: str  # "openai", "anthropic", "gemini"
    model: str | None
    requests: list[_Request]
    fault: BatchFault
    delay: float
    started: float  # monotonic
    created: float  # wall clock
    headers: dict[str, str]
    input_file_id: str | None = None
    invalid: list[dict[str, Any]] = field(default_factory=list)  # validation errors
    cancel_at: float | None = None  # monotonic time of a cancel
    cancel_reported: bool = False  # the cancel's own answer says "cancelling", later ones not
    ended: float | None = None  # wall clock
    outcomes: list[tuple[str, _Answer | str]] | None = None  # (custom id, answer|reason)
    output_file_id: str | None = None
    error_file_id: str | None = None
    results_host: str = ""


class BatchStore:
    """The mock's uploaded files and batch jobs, with their clock."""

    def __init__(
        self,
        process: Process,
        *,
        delay: float = DEFAULT_BATCH_DELAY,
        fault: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if not (math.isfinite(delay) and delay >= 0):
            raise ValueError(f"batch_delay must be a finite number >= 0, got {delay!r}")
        self._process = process
        self.delay = delay
        try:
            self.fault = BatchFault.parse(fault)
        except RequestError as exc:  # a bad spec fails now
            raise ValueError(exc.message) from None
        self._clock = clock
        self._wall = wall
        self._files: dict[str, tuple[dict[str, Any], bytes]] = {}
        self._jobs: dict[str, _Job] = {}
        # Idempotency keys of creates and uploads: a retry gets what the first attempt made.
        self._by_key: dict[str, str] = {}
        self._sequence = 0
        self._lock = threading.RLock()
        self.created = 0  # jobs made so far (tests count submissions with it)

    # -- routing -------------------------------------------------------------------------

    def route(self, method: str, path: str, hinted: str) -> tuple[str, Callable[..., Any]] | None:
        """(family, handler) of a batch endpoint, or None. `hinted` is the family the
        request's headers point to (it tells Gemini's ``batches/{id}`` from OpenAI's)."""
        path = path.rstrip("/")
        if m := _ANTHROPIC.search(path):
            job_id, action = m.groups()
            if job_id is None:
                return ("anthropic", self._anthropic_create) if method == "POST" else None
            if method == "GET" and action == "results":
                return "anthropic", lambda *a: self._anthropic_results(job_id)
            if method == "POST" and action == "cancel":
                return "anthropic", lambda *a: self._cancel(job_id, "anthropic")
            if method == "GET" and action is None:
                return "anthropic", lambda *a: self._get(job_id, "anthropic")
            return None
        if method == "POST" and (m := _GEMINI_CREATE.search(path)):
            model = m.group(1)
            return "gemini", lambda *a: self._gemini_create(model, *a)
        if method == "POST" and (m := _GEMINI_CANCEL.search(path)):
            name = m.group(1)
            return "gemini", lambda *a: self._cancel(name, "gemini")
        if m := _BATCHES.search(path):
            job_id, action = m.groups()
            gemini = hinted == "gemini" or f"batches/{job_id}" in self._jobs
            if job_id is not None and gemini and method == "GET" and action is None:
                name = f"batches/{job_id}"
                return "gemini", lambda *a: self._get(name, "gemini")
            if job_id is None:
                return ("openai", self._openai_create) if method == "POST" else None
            if method == "POST" and action == "cancel":
                return "openai", lambda *a: self._cancel(job_id, "openai")
            if method == "GET" and action is None:
                return "openai", lambda *a: self._get(job_id, "openai")
            return None
        if m := _FILES.search(path):
            file_id, action = m.groups()
            if file_id is None and method == "POST":
                return "openai", self._upload
            if file_id is not None and method == "GET":
                return "openai", lambda *a: self._file(file_id, action == "content")
        return None

    def _next_id(self, prefix: str) -> str:
        with self._lock:
            self._sequence += 1
            return f"{prefix}{self._sequence:08d}"

    # -- OpenAI --------------------------------------------------------------------------

    def _upload(self, path: str, headers: Mapping[str, str], body: bytes) -> Any:
        fields = multipart(headers.get("content-type", ""), body)
        purpose = fields.get("purpose", (None, b""))[1].decode("utf-8", "replace")
        if "file" not in fields:
            raise RequestError("'file' is a required property")
        if purpose not in ("assistants", "batch", "fine-tune", "vision", "user_data", "evals"):
            raise RequestError(f"'{purpose}' is not a valid purpose")
        filename, data = fields["file"]
        key = headers.get("idempotency-key")
        with self._lock:
            known = self._files.get(self._by_key.get(key, "")) if key else None
        if known is not None:  # a retried upload: the same file
            return 200, known[0]
        info = self._store_file(data, filename or "upload.jsonl", purpose)
        if key:
            with self._lock:
                self._by_key[key] = info["id"]
        return 200, info

    def _store_file(self, data: bytes, filename: str, purpose: str) -> dict[str, Any]:
        file_id = self._next_id("file-mock")
        info = {
            "id": file_id,
            "object": "file",
            "bytes": len(data),
            "created_at": int(self._wall()),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
        }
        with self._lock:
            self._files[file_id] = (info, data)
        return info

    def _file(self, file_id: str, content: bool) -> Any:
        with self._lock:
            found = self._files.get(file_id)
        if found is None:
            raise RequestError(f"No such File object: {file_id}", 404)
        return (200, found[1], "application/octet-stream") if content else (200, found[0])

    def _openai_create(self, path: str, headers: Mapping[str, str], body: bytes) -> Any:
        payload = json_object(body)
        file_id = payload.get("input_file_id")
        if payload.get("completion_window") != "24h":
            raise RequestError("completion_window must be '24h'")
        endpoint = payload.get("endpoint")
        if endpoint not in ("/v1/chat/completions", "/v1/embeddings"):
            raise RequestError(f"endpoint {endpoint!r} is not supported by the mock")
        with self._lock:
            found = self._files.get(str(file_id))
        if found is None:
            raise RequestError(f"No such File object: {file_id}", 404)
        requests, invalid = _openai_lines(found[1], endpoint)
        job = self._new_job(
            "batch_mock", "openai", None, requests, headers, input_file_id=str(file_id)
        )
        job.invalid = invalid
        return 200, self._openai_view(job)

    def _openai_view(self, job: _Job) -> dict[str, Any]:
        status, done = self._state(job)
        view: dict[str, Any] = {
            "id": job.id,
            "object": "batch",
            "endpoint": "/v1/chat/completions",
            "input_file_id": job.input_file_id,
            "completion_window": "24h",
            "status": status,
            "created_at": int(job.created),
            "expires_at": int(job.created) + _WINDOW,
        }
        if job.model:
            view["model"] = job.model
        total = 0 if status == "failed" else len(job.requests)
        ok = failed = 0
        if job.outcomes is not None:
            ok = sum(1 for _, a in job.outcomes if isinstance(a, _Answer) and a.status < 400)
            failed = sum(1 for _, a in job.outcomes if isinstance(a, _Answer)) - ok
        else:
            ok = done
        view["request_counts"] = {"total": total, "completed": ok, "failed": failed}
        if status != "validating":
            view["in_progress_at"] = int(job.created)
        stamp = {
            "completed": "completed_at",
            "failed": "failed_at",
            "expired": "expired_at",
            "cancelled": "cancelled_at",
            "cancelling": "cancelling_at",
        }.get(status)
        if stamp:
            view[stamp] = int(job.ended or self._wall())
        if job.invalid and status == "failed":
            view["errors"] = {"object": "list", "data": job.invalid}
        if job.output_file_id:
            view["output_file_id"] = job.output_file_id
        if job.error_file_id:
            view["error_file_id"] = job.error_file_id
        return view

    def _openai_files(self, job: _Job) -> None:
        assert job.outcomes is not None
        output: list[bytes] = []
        errors: list[bytes] = []
        reason_codes = {"expired": "batch_expired", "cancelled": "batch_cancelled"}
        for number, (custom_id, answer) in enumerate(job.outcomes):
            line: dict[str, Any] = {"id": f"batch_req_{number:06d}", "custom_id": custom_id}
            if isinstance(answer, _Answer):
                line["response"] = {
                    "status_code": answer.status,
                    "request_id": answer.request_id,
                    "body": answer.body,
                }
                line["error"] = None
                (output if answer.status < 400 else errors).append(dumps(line))
            else:
                message = f"This request was not run: the batch {answer}."
                line["response"] = None
                line["error"] = {"code": reason_codes[answer], "message": message}
                errors.append(dumps(line))
        if output:
            name = f"{job.id}_output.jsonl"
            job.output_file_id = self._store_file(b"\n".join(output) + b"\n", name, "batch_output")[
                "id"
            ]
        if errors:
            name = f"{job.id}_error.jsonl"
            job.error_file_id = self._store_file(b"\n".join(errors) + b"\n", name, "batch_output")[
                "id"
            ]

    # -- Anthropic -----------------------------------------------------------------------

    def _anthropic_create(self, path: str, headers: Mapping[str, str], body: bytes) -> Any:
        payload = json_object(body)
        entries = payload.get("requests")
        if not isinstance(entries, list) or not entries:
            raise RequestError("requests: must be a non-empty list")
        if len(entries) > ANTHROPIC_MAX_REQUESTS:
            raise RequestError(f"requests: at most {ANTHROPIC_MAX_REQUESTS} requests")
        fault = self._fault(headers)
        if fault.kind == "fail":
            raise RequestError("requests.0.params: mock validation failure (x-mock-batch: fail)")
        requests: list[_Request] = []
        seen: set[str] = set()
        for number, entry in enumerate(entries):
            custom_id = entry.get("custom_id") if isinstance(entry, dict) else None
            params = entry.get("params") if isinstance(entry, dict) else None
            if not isinstance(custom_id, str) or not re.fullmatch(r"[\w-]{1,64}", custom_id):
                raise RequestError(
                    f"requests.{number}.custom_id: must match ^[a-zA-Z0-9_-]{{1,64}}$"
                )
            if custom_id in seen:
                raise RequestError(f"requests.{number}.custom_id: {custom_id!r} is not unique")
            if not isinstance(params, dict):
                raise RequestError(f"requests.{number}.params: must be an object")
            seen.add(custom_id)
            requests.append(
                _Request(custom_id, path.split("/messages/batches")[0] + "/messages", dumps(params))
            )
        job = self._new_job("msgbatch_mock", "anthropic", None, requests, headers)
        host = headers.get("host", "mock.llmrelay.invalid")
        job.results_host = f"http://{host}{path.split('/messages/batches')[0]}"
        return 200, self._anthropic_view(job)

    def _anthropic_view(self, job: _Job) -> dict[str, Any]:
        status, done = self._state(job)
        counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        if job.outcomes is None:
            counts["succeeded"] = done
            counts["processing"] = len(job.requests) - done
        else:
            for _, answer in job.outcomes:
                if isinstance(answer, _Answer):
                    counts["succeeded" if answer.status < 400 else "errored"] += 1
                else:
                    counts["canceled" if answer == "cancelled" else "expired"] += 1
        ended = status in ("completed", "expired", "cancelled")
        processing = {"cancelling": "canceling"}.get(status, "ended" if ended else "in_progress")
        return {
            "id": job.id,
            "type": "message_batch",
            "processing_status": processing,
            "request_counts": counts,
            "ended_at": iso(job.ended) if ended and job.ended else None,
            "created_at": iso(job.created),
            "expires_at": iso(job.created + _WINDOW),
            "archived_at": None,
            "cancel_initiated_at": iso(job.created) if job.cancel_at is not None else None,
            "results_url": f"{job.results_host}/messages/batches/{job.id}/results"
            if ended
            else None,
        }

    def _anthropic_results(self, job_id: str) -> Any:
        job = self._job(job_id, "anthropic")
        self._state(job)
        if job.outcomes is None:
            raise RequestError(f"Message Batch {job_id} has not ended yet", 404)
        lines: list[bytes] = []
        for custom_id, answer in job.outcomes:
            result: dict[str, Any]
            if isinstance(answer, _Answer):
                body = answer.body
                kind = "succeeded" if answer.status < 400 else "errored"
                result = {"type": kind, "message" if kind == "succeeded" else "error": body}
            else:
                result = {"type": "canceled" if answer == "cancelled" else "expired"}
            lines.append(dumps({"custom_id": custom_id, "result": result}))
        return 200, b"\n".join(lines) + b"\n", "application/binary"

    # -- Gemini --------------------------------------------------------------------------

    def _gemini_create(self, model: str, path: str, headers: Mapping[str, str], body: bytes) -> Any:
        payload = json_object(body)
        batch = payload.get("batch")
        config = batch.get("inputConfig") if isinstance(batch, dict) else None
        wrapped = config.get("requests") if isinstance(config, dict) else None
        entries = wrapped.get("requests") if isinstance(wrapped, dict) else None
        if not isinstance(entries, list) or not entries:
            raise RequestError("batch.inputConfig.requests.requests must be a non-empty list")
        prefix = path.split("/models/")[0]
        requests: list[_Request] = []
        for number, entry in enumerate(entries):
            request = entry.get("request") if isinstance(entry, dict) else None
            if not isinstance(request, dict):
                raise RequestError(f"requests[{number}].request must be an object")
            meta = entry.get("metadata")
            key = meta.get("key") if isinstance(meta, dict) else None
            requests.append(
                _Request(
                    str(key if key is not None else number),
                    f"{prefix}/{model}:generateContent",
                    dumps(request),
                )
            )
        job = self._new_job("batches/mock", "gemini", model, requests, headers)
        return 200, self._gemini_view(job)

    def _gemini_view(self, job: _Job) -> dict[str, Any]:
        status, done = self._state(job)
        state = {
            "validating": "BATCH_STATE_PENDING",
            "in_progress": "BATCH_STATE_RUNNING",
            "cancelling": "BATCH_STATE_RUNNING",
            "completed": "BATCH_STATE_SUCCEEDED",
            "failed": "BATCH_STATE_FAILED",
            "expired": "BATCH_STATE_EXPIRED",
            "cancelled": "BATCH_STATE_CANCELLED",
        }[status]
        ok = failed = 0
        if job.outcomes is not None:
            for _, answer in job.outcomes:
                if isinstance(answer, _Answer) and answer.status < 400:
                    ok += 1
                else:
                    failed += 1
        else:
            ok = done
        total = len(job.requests)
        meta: dict[str, Any] = {
            "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentBatch",
            "model": job.model,
            "displayName": "mock batch",
            "name": job.id,
            "state": state,
            "createTime": iso(job.created),
            "updateTime": iso(self._wall()),
            "batchStats": {
                "requestCount": str(total),
                "successfulRequestCount": str(ok),
                "failedRequestCount": str(failed),
                "pendingRequestCount": str(max(0, total - ok - failed)),
            },
        }
        view: dict[str, Any] = {"name": job.id, "metadata": meta, "done": job.ended is not None}
        if job.ended is not None:
            meta["endTime"] = iso(job.ended)
        if status == "failed":
            view["error"] = {"code": 3, "message": "mock validation failure (x-mock-batch: fail)"}
        elif job.outcomes is not None:
            responses: list[dict[str, Any]] = []
            for custom_id, answer in job.outcomes:
                entry: dict[str, Any] = {"metadata": {"key": custom_id}}
                if isinstance(answer, _Answer) and answer.status < 400:
                    entry["response"] = answer.body
                elif isinstance(answer, _Answer):
                    error = answer.body.get("error", {}) if isinstance(answer.body, dict) else {}
                    entry["error"] = {
                        "code": _RPC_CODE.get(answer.status, 2),
                        "message": str(error.get("message", "error")),
                    }
                else:
                    continue  # expired or cancelled before it ran: no entry
                responses.append(entry)
            output = {
                "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentBatchOutput",
                "inlinedResponses": {"inlinedResponses": responses},
            }
            view["response"] = output  # the operation's result, and the batch's own output
            meta["output"] = {"inlinedResponses": output["inlinedResponses"]}
        return view

    # -- every family --------------------------------------------------------------------

    def _fault(self, headers: Mapping[str, str]) -> BatchFault:
        header = headers.get("x-mock-batch")
        return BatchFault.parse(header) if header is not None else self.fault

    def _new_job(
        self,
        prefix: str,
        family: str,
        model: str | None,
        requests: list[_Request],
        headers: Mapping[str, str],
        *,
        input_file_id: str | None = None,
    ) -> _Job:
        key = headers.get("idempotency-key")
        with self._lock:
            known = self._jobs.get(self._by_key.get(key, "")) if key else None
        if known is not None:  # a retry of a create whose answer was lost: the same job
            return known
        fault = self._fault(headers)
        # The requests of the job are answered with the creating request's mock options.
        passed = {k: v for k, v in headers.items() if k.startswith(("x-mock-chunk", "anthropic-"))}
        job = _Job(
            id=self._next_id(prefix),
            family=family,
            model=model,
            requests=requests,
            fault=fault,
            delay=fault.delay if fault.delay is not None else self.delay,
            started=self._clock(),
            created=self._wall(),
            headers=passed,
            input_file_id=input_file_id,
        )
        with self._lock:
            self._jobs[job.id] = job
            self.created += 1
            if key:
                self._by_key[key] = job.id
        return job

    def _job(self, job_id: str, family: str) -> _Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None or job.family != family:
            raise RequestError(f"No batch found with id {job_id!r}", 404)
        return job

    def _get(self, job_id: str, family: str) -> Any:
        return 200, self._view(self._job(job_id, family))

    def _view(self, job: _Job) -> dict[str, Any]:
        if job.family == "openai":
            return self._openai_view(job)
        if job.family == "anthropic":
            return self._anthropic_view(job)
        return self._gemini_view(job)

    def _cancel(self, job_id: str, family: str) -> Any:
        job = self._job(job_id, family)
        status, _ = self._state(job)
        if status in ("completed", "failed", "expired", "cancelled"):
            if family == "openai":
                raise RequestError(f"Cannot cancel a batch with status {status!r}", 409)
            return 200, ({} if family == "gemini" else self._view(job))
        with self._lock:
            if job.cancel_at is None:
                job.cancel_at = self._clock()
        view = self._view(job)
        return 200, ({} if family == "gemini" else view)

    def _state(self, job: _Job) -> tuple[str, int]:
        """(OpenAI-style status, requests done so far); ends the job when its time has come."""
        with self._lock:
            n = len(job.requests)
            if job.outcomes is not None:
                return self._final(job), n
            now = self._clock()
            progress = 1.0 if job.delay <= 0 else min(1.0, (now - job.started) / job.delay)
            if job.cancel_at is not None:
                share = (job.cancel_at - job.started) / job.delay if job.delay > 0 else 1.0
                done = min(n, int(n * min(1.0, share)))
                if job.cancel_reported:  # the next look after a cancel finds it cancelled
                    self._finish(job, done, "cancelled")
                    return "cancelled", n
                job.cancel_reported = True
                return "cancelling", done
            if progress < 1.0:
                done = int(n * progress)
                return ("validating" if progress == 0 else "in_progress"), done
            if job.invalid or job.fault.kind == "fail":
                job.outcomes = []
                job.ended = self._wall()
                if not job.invalid:
                    job.invalid = [
                        {
                            "code": "invalid_request",
                            "message": "mock validation failure (x-mock-batch: fail)",
                            "line": 1,
                        }
                    ]
                return "failed", 0
            if job.fault.kind == "expire":
                self._finish(job, min(n, job.fault.done), "expired")
                return "expired", n
            self._finish(job, n, "completed")
            return "completed", n

    def _final(self, job: _Job) -> str:
        if job.invalid or job.fault.kind == "fail":
            return "failed"
        reasons = {a for _, a in job.outcomes or () if isinstance(a, str)}
        if "cancelled" in reasons or job.cancel_at is not None:
            return "cancelled"
        return "expired" if "expired" in reasons else "completed"

    def _finish(self, job: _Job, done: int, ending: str) -> None:
        """Answer the first `done` requests (the rest are reported `ending`)."""
        outcomes: list[tuple[str, _Answer | str]] = []
        for position, request in enumerate(job.requests):
            if position >= done:
                outcomes.append((request.custom_id, ending))
                continue
            headers = dict(job.headers)
            headers["idempotency-key"] = f"{job.id}/{request.custom_id}"
            if job.family == "anthropic":
                headers.setdefault("anthropic-version", "2023-06-01")
            elif job.family == "gemini":
                headers["x-goog-api-key"] = "mock"
            if position in job.fault.fail_items:
                headers["x-mock-fault"] = str(job.fault.item_status)
            answer = self._process("POST", request.path, {}, headers, request.body)
            request_id = answer.header("x-request-id") or answer.header("request-id") or ""
            outcomes.append(
                (request.custom_id, _Answer(answer.status, answer_body(answer), request_id))
            )
        job.outcomes = outcomes
        job.ended = self._wall()
        if job.family == "openai":
            self._openai_files(job)


def _openai_lines(data: bytes, endpoint: str) -> tuple[list[_Request], list[dict[str, Any]]]:
    """The requests of an OpenAI batch input file, and its validation errors (OpenAI checks
    the file once the job starts: a bad line fails the whole job)."""
    requests: list[_Request] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    if len(data) > OPENAI_MAX_FILE_BYTES:
        errors.append({"code": "file_too_large", "message": "the input file is over 200 MB"})
    lines = [line for line in data.splitlines() if line.strip()]
    if len(lines) > OPENAI_MAX_REQUESTS:
        errors.append(
            {"code": "too_many_requests", "message": f"more than {OPENAI_MAX_REQUESTS} requests"}
        )
    for number, line in enumerate(lines, 1):
        try:
            entry = json.loads(line)
        except ValueError:
            entry = None
        problem = None
        if not isinstance(entry, dict):
            problem = "this line is not a JSON object"
        elif not isinstance(entry.get("custom_id"), str) or entry["custom_id"] in seen:
            problem = "custom_id must be a string unique in the file"
        elif entry.get("method") != "POST" or entry.get("url") != endpoint:
            problem = f"method must be POST and url {endpoint!r}"
        elif not isinstance(entry.get("body"), dict):
            problem = "body must be an object"
        if problem is not None:
            errors.append({"code": "invalid_request", "message": problem, "line": number})
            continue
        assert isinstance(entry, dict)
        seen.add(entry["custom_id"])
        requests.append(_Request(entry["custom_id"], endpoint, dumps(entry["body"])))
    return requests, errors
