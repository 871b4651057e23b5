"""The mock's Batch APIs over real loopback HTTP, driven by the official SDKs (openai,
anthropic, google-genai) as their users would; and the mock's own rules: job delay and counts,
whole-job and per-request faults, validation, unknown ids."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from llmrelay.mock import MockEngine, serve
from llmrelay.mock._batches import BatchFault, BatchStore


@pytest.fixture(scope="module")
def engine() -> MockEngine:
    return MockEngine(batch_delay=0)


@pytest.fixture(scope="module")
def url(engine: MockEngine) -> Iterator[str]:
    with serve(engine) as base:
        yield base


def chat_line(custom_id: str, text: str, model: str = "mock-echo") -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": model, "messages": [{"role": "user", "content": text}]},
    }


def test_the_openai_sdk_runs_a_batch(url: str) -> None:
    client = openai.OpenAI(base_url=url + "/v1", api_key="sk-test", max_retries=0)
    lines = [chat_line("a", "one"), chat_line("b", "two", "mock-echo+fault=400")]
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    uploaded = client.files.create(file=("input.jsonl", data), purpose="batch")
    assert uploaded.purpose == "batch" and uploaded.bytes == len(data)
    assert client.files.content(uploaded.id).content == data
    job = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    job = client.batches.retrieve(job.id)
    assert job.status == "completed"
    assert (job.request_counts.total, job.request_counts.completed) == (2, 1)
    assert job.request_counts.failed == 1
    assert job.output_file_id and job.error_file_id
    output = [json.loads(x) for x in client.files.content(job.output_file_id).text.splitlines()]
    errors = [json.loads(x) for x in client.files.content(job.error_file_id).text.splitlines()]
    assert output[0]["custom_id"] == "a"
    reply = output[0]["response"]["body"]["choices"][0]["message"]["content"]
    assert reply == "echo: one"
    assert errors[0]["custom_id"] == "b" and errors[0]["response"]["status_code"] == 400
    with pytest.raises(openai.ConflictError):
        client.batches.cancel(job.id)  # it has ended


def test_the_openai_sdk_sees_a_bad_input_file_fail_the_job(url: str) -> None:
    client = openai.OpenAI(base_url=url + "/v1", api_key="sk-test", max_retries=0)
    data = json.dumps(chat_line("a", "x")) + "\n" + "not json\n"
    uploaded = client.files.create(file=("input.jsonl", data.encode()), purpose="batch")
    job = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    job = client.batches.retrieve(job.id)
    assert job.status == "failed" and job.errors and job.errors.data
    assert job.errors.data[0].line == 2
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch_unknown")


def test_the_anthropic_sdk_runs_a_batch(url: str) -> None:
    client = anthropic.Anthropic(base_url=url, api_key="sk-ant-test", max_retries=0)
    requests: Any = [
        {
            "custom_id": f"r{i}",
            "params": {
                "model": "mock-echo",
                "max_tokens": 50,
                "messages": [{"role": "user", "content": f"hi {i}"}],
            },
        }
        for i in range(3)
    ]
    job = client.messages.batches.create(requests=requests)
    job = client.messages.batches.retrieve(job.id)
    assert job.processing_status == "ended" and job.request_counts.succeeded == 3
    assert job.results_url and job.results_url.startswith(url)
    results = {r.custom_id: r.result for r in client.messages.batches.results(job.id)}
    assert sorted(results) == ["r0", "r1", "r2"]
    first = results["r0"]
    assert first.type == "succeeded" and first.message.content[0].type == "text"
    assert first.message.content[0].text == "echo: hi 0"


def test_the_anthropic_sdk_cancels_a_running_batch() -> None:
    with serve(MockEngine(batch_delay=60)) as base:
        client = anthropic.Anthropic(base_url=base, api_key="sk-ant-test", max_retries=0)
        requests: Any = [
            {
                "custom_id": "only",
                "params": {
                    "model": "mock-echo",
                    "max_tokens": 5,
                    "messages": [{"role": "user", "content": "x"}],
                },
            }
        ]
        job = client.messages.batches.create(requests=requests)
        assert job.processing_status == "in_progress"
        assert client.messages.batches.cancel(job.id).processing_status == "canceling"
        job = client.messages.batches.retrieve(job.id)
        assert job.processing_status == "ended" and job.cancel_initiated_at is not None
        (result,) = list(client.messages.batches.results(job.id))
        assert result.result.type == "canceled"


def test_the_google_genai_sdk_runs_an_inline_batch(url: str) -> None:
    from google import genai

    client = genai.Client(api_key="test-key", http_options={"base_url": url})
    job = client.batches.create(
        model="mock-echo",
        src=[{"contents": [{"parts": [{"text": f"q{i}"}], "role": "user"}]} for i in range(2)],
    )
    assert job.name and job.name.startswith("batches/")
    job = client.batches.get(name=job.name)
    assert job.state is not None and job.state.name == "JOB_STATE_SUCCEEDED"
    assert job.dest is not None and job.dest.inlined_responses is not None
    replies = [r.response.text for r in job.dest.inlined_responses if r.response]
    assert replies == ["echo: q0", "echo: q1"]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_job_runs_for_its_delay_and_counts_grow() -> None:
    engine = MockEngine()
    clock = Clock()
    engine.batches = BatchStore(engine.handle, delay=10, clock=clock)
    body = {"requests": [{"custom_id": f"c{i}", "params": {"model": "mock-echo", "max_tokens": 5,
            "messages": [{"role": "user", "content": "x"}]}} for i in range(4)]}  # fmt: skip
    headers = {"anthropic-version": "2023-06-01"}
    made = engine.handle("POST", "/v1/messages/batches", {}, headers, json.dumps(body).encode())
    job_id = made.json()["id"]
    seen = []
    for now in (0.0, 2.6, 5.0, 9.9, 10.0):
        clock.now = now
        job = engine.handle("GET", f"/v1/messages/batches/{job_id}", {}, headers, b"").json()
        seen.append((job["processing_status"], job["request_counts"]["succeeded"]))
    assert seen == [("in_progress", 0), ("in_progress", 1), ("in_progress", 2),
                    ("in_progress", 3), ("ended", 4)]  # fmt: skip
    assert engine.batches.created == 1


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("expire;done=2", BatchFault(kind="expire", done=2)),
        ("fail", BatchFault(kind="fail")),
        (
            "fail-items=0,3;item-status=503",
            BatchFault(fail_items=frozenset({0, 3}), item_status=503),
        ),
        ("delay=2.5", BatchFault(delay=2.5)),
        ("", BatchFault()),
    ],
)
def test_batch_fault_specs(spec: str, expected: BatchFault) -> None:
    assert BatchFault.parse(spec) == expected


@pytest.mark.parametrize("spec", ["explode", "done=x", "item-status=200", "delay=-1"])
def test_a_bad_batch_fault_is_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="x-mock-batch"):
        MockEngine(batch_fault=spec)
    response = MockEngine().handle(
        "POST",
        "/v1/messages/batches",
        {},
        {"x-mock-batch": spec, "anthropic-version": "2023-06-01"},
        b'{"requests": [{"custom_id": "a", "params": {}}]}',
    )
    assert response.status == 400 and "x-mock-batch" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("content_type", "body", "message"),
    [
        ("application/json", b"{}", "multipart/form-data"),
        ("multipart/form-data; boundary=b", b'--b\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n--b--\r\n', "'file'"),
        ("multipart/form-data; boundary=b", b'--b\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n\r\nx\r\n--b--\r\n', "purpose"),
    ],
)  # fmt: skip
def test_a_bad_upload_is_a_400(content_type: str, body: bytes, message: str) -> None:
    response = MockEngine().handle("POST", "/v1/files", {}, {"content-type": content_type}, body)
    assert response.status == 400 and message in response.json()["error"]["message"]


def test_status_faults_apply_to_batch_endpoints_too() -> None:
    engine = MockEngine()
    headers = {"x-mock-fault": "429;retry-after=1", "x-goog-api-key": "k"}
    response = engine.handle("GET", "/v1beta/batches/x", {}, headers, b"")
    assert response.status == 429 and response.header("retry-after") == "1"
    assert response.json()["error"]["status"] == "RESOURCE_EXHAUSTED"


def test_the_loopback_server_and_httpx_see_jsonl_files(url: str) -> None:
    with httpx.Client(base_url=url) as http:
        files = {"file": ("in.jsonl", b'{"a": 1}\n', "application/jsonl")}
        made = http.post("/v1/files", data={"purpose": "batch"}, files=files)
        assert made.status_code == 200, made.text
        content = http.get(f"/v1/files/{made.json()['id']}/content")
        assert content.content == b'{"a": 1}\n'
        assert http.get("/v1/files/file-nope/content").status_code == 404
