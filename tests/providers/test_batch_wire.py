"""The Batch API adapters on the providers' own documented shapes (not the mock's): job objects
with nulls and RFC 3339 times, and result lines of every kind, read through a fake `Send`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from llmrelay import (
    BadRequestError,
    BatchItemError,
    ChatResponse,
    OverloadedError,
    RateLimitError,
    ResponseError,
)
from llmrelay.providers import get_provider
from llmrelay.providers._anthropic_batch import AnthropicBatch
from llmrelay.providers._batch_common import BatchCall, rfc3339
from llmrelay.providers._gemini_batch import GeminiBatch
from llmrelay.providers._openai_batch import OpenAIBatch, multipart

pytestmark = pytest.mark.anyio

OPENAI_JOB = {  # the spec's example of a finished batch, nulls included
    "id": "batch_abc123",
    "object": "batch",
    "endpoint": "/v1/chat/completions",
    "errors": None,
    "input_file_id": "file-abc123",
    "completion_window": "24h",
    "status": "completed",
    "output_file_id": "file-cvaTdG",
    "error_file_id": "file-HOWS94",
    "created_at": 1711471533,
    "in_progress_at": 1711471538,
    "expires_at": 1711557933,
    "finalizing_at": 1711493133,
    "completed_at": 1711493163,
    "failed_at": None,
    "expired_at": None,
    "cancelling_at": None,
    "cancelled_at": None,
    "request_counts": {"total": 3, "completed": 1, "failed": 2},
    "metadata": None,
}
CHAT = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}


def fake_send(files: dict[str, bytes]) -> Any:
    async def send(call: BatchCall) -> Any:
        assert call.method == "GET" and call.raw
        return call.parse(files[call.path], None)

    return send


def lines(*records: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


async def test_openai_job_and_results_in_the_documented_shapes() -> None:
    provider = get_provider("openai", {"OPENAI_API_KEY": "sk-x"})
    wire = OpenAIBatch()
    job = wire.job(provider, OPENAI_JOB)
    assert (job.status, job.provider_status, job.errors) == ("completed", "completed", ())
    assert job.created_at == datetime(2024, 3, 26, 16, 45, 33, tzinfo=UTC)
    assert job.ended_at == datetime.fromtimestamp(1711493163, UTC)
    assert (job.counts.total, job.counts.succeeded, job.counts.failed) == (3, 1, 2)
    output = lines(
        {"id": "r1", "custom_id": "0", "error": None,
         "response": {"status_code": 200, "request_id": "req_1", "body": CHAT}},
    )  # fmt: skip
    errors = lines(
        {"id": "r2", "custom_id": "2", "error": None,
         "response": {"status_code": 429, "request_id": "req_2",
                      "body": {"error": {"message": "slow down", "type": "requests",
                                         "code": "rate_limit_exceeded"}}}},
        {"id": "r3", "custom_id": "1", "response": None,
         "error": {"code": "batch_expired", "message": "This request could not be executed"}},
    )  # fmt: skip
    send = fake_send({"files/file-cvaTdG/content": output, "files/file-HOWS94/content": errors})
    found = await wire.results(send, provider, job)
    assert isinstance(found[0], ChatResponse) and found[0].text == "hi"
    assert found[0].request_id == "req_1"
    assert isinstance(found[1], BatchItemError) and found[1].reason == "expired"
    assert isinstance(found[2], RateLimitError) and found[2].request_id == "req_2"


@pytest.mark.parametrize(
    ("status", "unified"),
    [("validating", "pending"), ("finalizing", "in_progress"), ("cancelling", "cancelling"),
     ("failed", "failed"), ("expired", "expired"), ("cancelled", "cancelled")],
)  # fmt: skip
def test_openai_statuses(status: str, unified: str) -> None:
    job = OpenAIBatch().job(get_provider("mock"), {**OPENAI_JOB, "status": status})
    assert job.status == unified and job.provider_status == status


@pytest.mark.parametrize(
    "data", [None, [], {"status": "completed"}, {**OPENAI_JOB, "status": "weird"}]
)
def test_an_unreadable_job_object_is_a_response_error(data: Any) -> None:
    with pytest.raises(ResponseError):
        OpenAIBatch().job(get_provider("mock"), data)


async def test_a_results_file_line_that_is_not_json_is_a_response_error() -> None:
    provider = get_provider("mock")
    wire = OpenAIBatch()
    job = wire.job(provider, {**OPENAI_JOB, "error_file_id": None})
    with pytest.raises(ResponseError, match="line 2"):
        await wire.results(
            fake_send({"files/file-cvaTdG/content": b'{"custom_id": "0"}\nnot json\n'}),
            provider,
            job,
        )


ANTHROPIC_JOB = {  # Anthropic's documented example, ended
    "id": "msgbatch_013Zva2CMHLNnXjNJJKqJ2EF",
    "type": "message_batch",
    "processing_status": "ended",
    "request_counts": {"processing": 0, "succeeded": 1, "errored": 2, "canceled": 0, "expired": 1},
    "ended_at": "2024-09-24T19:37:24.100435Z",
    "created_at": "2024-09-24T18:37:24.100435Z",
    "expires_at": "2024-09-25T18:37:24.100435Z",
    "cancel_initiated_at": None,
    "results_url": "https://api.anthropic.com/v1/messages/batches/msgbatch_013Zva2CMHLNnXjNJJKqJ2EF/results",
}
MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5",
    "content": [{"type": "text", "text": "hello"}],
    "stop_reason": "end_turn",
    "usage": {"input_tokens": 3, "output_tokens": 1},
}


async def test_anthropic_job_and_results_in_the_documented_shapes() -> None:
    provider = get_provider("anthropic", {"ANTHROPIC_API_KEY": "sk-ant-x"})
    wire = AnthropicBatch()
    job = wire.job(provider, ANTHROPIC_JOB)
    assert job.status == "expired"  # ended with an expired request
    assert job.created_at == datetime(2024, 9, 24, 18, 37, 24, 100435, tzinfo=UTC)
    assert (job.counts.total, job.counts.succeeded, job.counts.failed) == (4, 1, 3)
    results = lines(
        {"custom_id": "3", "result": {"type": "expired"}},
        {"custom_id": "0", "result": {"type": "succeeded", "message": MESSAGE}},
        {"custom_id": "1", "result": {"type": "errored", "error": {"type": "error",
         "error": {"type": "invalid_request_error", "message": "bad"}}}},
        {"custom_id": "2", "result": {"type": "errored", "error": {"type": "error",
         "error": {"type": "overloaded_error", "message": "busy"}}}},
    )  # fmt: skip
    path = "messages/batches/msgbatch_013Zva2CMHLNnXjNJJKqJ2EF/results"
    found = await wire.results(fake_send({ANTHROPIC_JOB["results_url"]: results}), provider, job)
    assert isinstance(found[0], ChatResponse) and found[0].text == "hello"
    assert isinstance(found[1], BadRequestError) and "bad" in str(found[1])
    assert isinstance(found[2], OverloadedError)
    assert isinstance(found[3], BatchItemError) and found[3].reason == "expired"
    # A results URL on another host is not followed (the key would go with it).
    elsewhere = {**ANTHROPIC_JOB, "results_url": "https://evil.example/results"}
    found = await wire.results(fake_send({path: results}), provider, wire.job(provider, elsewhere))
    assert len(found) == 4


@pytest.mark.parametrize(
    ("changes", "unified"),
    [({"processing_status": "in_progress"}, "in_progress"),
     ({"processing_status": "canceling"}, "cancelling"),
     ({"cancel_initiated_at": "2024-09-24T18:40:00Z"}, "cancelled"),
     ({"request_counts": {"succeeded": 2}}, "completed")],
)  # fmt: skip
def test_anthropic_statuses(changes: dict[str, Any], unified: str) -> None:
    job = AnthropicBatch().job(get_provider("anthropic", {}), {**ANTHROPIC_JOB, **changes})
    assert job.status == unified


GEMINI_OPERATION = {
    "name": "batches/123456",
    "metadata": {
        "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentBatch",
        "model": "models/gemini-2.5-flash",
        "displayName": "llmrelay-batch",
        "createTime": "2025-07-01T10:00:00.123456789Z",
        "endTime": "2025-07-01T10:05:00Z",
        "state": "BATCH_STATE_SUCCEEDED",
        "batchStats": {"requestCount": "2", "successfulRequestCount": "1",
                       "failedRequestCount": "1"},
    },
    "done": True,
    "response": {
        "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentBatchOutput",
        "inlinedResponses": {"inlinedResponses": [
            {"response": {"candidates": [{"content": {"role": "model", "parts": [{"text": "yo"}]},
                                          "finishReason": "STOP"}],
                          "modelVersion": "gemini-2.5-flash"},
             "metadata": {"key": "0"}},
            {"error": {"code": 8, "message": "quota"}, "metadata": {"key": "1"}},
        ]},
    },
}  # fmt: skip


async def test_gemini_operation_and_inline_results() -> None:
    provider = get_provider("gemini", {"GEMINI_API_KEY": "k"})
    wire = GeminiBatch()
    job = wire.job(provider, GEMINI_OPERATION)
    assert (job.id, job.status, job.model) == ("batches/123456", "completed", "gemini-2.5-flash")
    assert job.created_at == datetime(2025, 7, 1, 10, 0, 0, 123456, tzinfo=UTC)
    assert (job.counts.total, job.counts.succeeded, job.counts.failed) == (2, 1, 1)
    found = await wire.results(fake_send({}), provider, job)
    assert isinstance(found[0], ChatResponse) and found[0].text == "yo"
    assert isinstance(found[1], RateLimitError) and "quota" in str(found[1])
    running = {**GEMINI_OPERATION, "metadata": {"state": "JOB_STATE_RUNNING"}, "done": False}
    assert wire.job(provider, running).status == "in_progress"


def test_rfc3339_times() -> None:
    assert rfc3339("2014-10-02T15:01:23+05:30") == datetime.fromisoformat(
        "2014-10-02T15:01:23+05:30"
    )
    assert rfc3339("2014-10-02T15:01:23.045123456Z") == datetime(
        2014, 10, 2, 15, 1, 23, 45123, tzinfo=UTC
    )
    assert rfc3339("not a time") is None and rfc3339(None) is None


def test_the_multipart_boundary_never_occurs_in_the_data() -> None:
    data = b"--llmrelay-" * 100
    body, content_type = multipart([("purpose", "batch")], "f.jsonl", data)
    boundary = content_type.partition("boundary=")[2]
    assert body.count(boundary.encode()) == 3 and data in body


@pytest.mark.parametrize(
    "changes",
    [
        {"created_at": 1e300},  # beyond datetime's years
        {"created_at": -1e13},
        {"completed_at": float("nan")},
        {"status": "failed", "errors": [{"message": "bad line", "line": 1}]},  # a bare list
        {"status": "failed", "errors": "broken"},
    ],
)
async def test_odd_fields_of_an_openai_job_are_read_or_left_out(changes: dict[str, Any]) -> None:
    # Through the client over loopback: never a raw OverflowError/ValueError/AttributeError.
    import llmrelay
    from _loopback import json_response, loopback

    body = {**OPENAI_JOB, **changes}
    async with (
        loopback(lambda request: json_response(body)) as server,
        llmrelay.AsyncClient("openai", api_key="k", base_url=server.base_url) as client,
    ):
        job = await client.get_batch("batch_abc123")
    assert job.status == body["status"]
    assert job.created_at is None or job.created_at.year == 2024
    assert job.errors in ((), ("line 1: bad line",))


async def test_gemini_inline_responses_as_a_bare_list_are_read() -> None:
    provider = get_provider("gemini", {"GEMINI_API_KEY": "k"})
    wire = GeminiBatch()
    listed = GEMINI_OPERATION["response"]["inlinedResponses"]["inlinedResponses"]
    for inlined in (listed, "broken"):
        operation = {**GEMINI_OPERATION, "response": {"inlinedResponses": inlined}}
        found = await wire.results(fake_send({}), provider, wire.job(provider, operation))
        assert isinstance(found[0], ChatResponse if inlined is listed else BatchItemError)


async def test_a_result_for_a_request_the_job_never_had_is_left_out() -> None:
    # An Anthropic job of 2 requests whose results file also names request 10**6: the user
    # gets the job's 2 outcomes (not a million "missing" ones), over the real client.
    import llmrelay
    from _loopback import Request, Response, json_response, loopback

    job = {**ANTHROPIC_JOB, "results_url": None,
           "request_counts": {**ANTHROPIC_JOB["request_counts"], "succeeded": 2, "errored": 0,
                              "expired": 0, "canceled": 0}}  # fmt: skip
    results = lines(
        {"custom_id": "0", "result": {"type": "succeeded", "message": MESSAGE}},
        {"custom_id": "1", "result": {"type": "succeeded", "message": MESSAGE}},
        {"custom_id": str(10**6), "result": {"type": "succeeded", "message": MESSAGE}},
    )

    def answer(request: Request) -> Response:
        if request.path.endswith("/results"):
            return Response([results], content_type="application/x-jsonl", chunked=False)
        return json_response(job)

    async with (
        loopback(answer) as server,
        llmrelay.AsyncClient("anthropic", api_key="k", base_url=server.base_url) as client,
    ):
        found = await client.batch_results(str(job["id"]))
    assert [r.text for r in found] == ["hello", "hello"]  # type: ignore[union-attr]
