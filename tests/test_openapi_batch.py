"""What `submit_batch()` and friends send to OpenAI's Batch API, and what the mock answers,
against OpenAI's own spec (tests/fixtures/openapi/openai-batch.json): the multipart upload to
``/files`` (CreateFileRequest, with a JSONL whose lines name the batch endpoint), the job at
``/batches`` (CreateBatchRequest), and the file and batch objects (OpenAIFile, Batch)."""

from __future__ import annotations

import email.parser
import email.policy
import json
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from llmrelay import AsyncClient
from llmrelay.mock import MockEngine, MockTransport

pytestmark = pytest.mark.anyio

SPEC = json.loads(
    (Path(__file__).parent / "fixtures" / "openapi" / "openai-batch.json").read_text()
)


def validator(name: str) -> jsonschema.protocols.Validator:
    schema = {"$ref": f"#/components/schemas/{name}", "components": SPEC["components"]}
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


class Capture(httpx.AsyncBaseTransport):
    """The mock transport, keeping each request and its answer."""

    def __init__(self, engine: MockEngine) -> None:
        self.inner = MockTransport(engine)
        self.exchanges: list[tuple[httpx.Request, bytes, httpx.Response, bytes]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        sent = await request.aread()
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        self.exchanges.append((request, sent, response, body))
        return httpx.Response(response.status_code, headers=response.headers, content=body)


def form_fields(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """The fields of a multipart body, read by the standard library's MIME parser."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    assert message.is_multipart()
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        assert isinstance(name, str) and isinstance(payload, bytes)
        fields[name] = (part.get_filename(), payload)
    return fields


async def run_job(**options: Any) -> Capture:
    capture = Capture(MockEngine(batch_delay=0))
    async with AsyncClient(
        provider="openai",
        base_url="http://mock.test/v1",
        api_key="sk-test-openapi-batch",
        http_client=httpx.AsyncClient(transport=capture),
    ) as client:
        job = await client.submit_batch(["first", "second"], model="mock-echo", **options)
        await client.wait_batch(job.id, poll_interval=0.01)
        await client.batch_results(job.id)
        await client.cancel_batch(job.id)  # an ended job: nothing is sent to cancel
    return capture


@pytest.mark.parametrize(
    "options",
    [{}, {"temperature": 0.2, "max_tokens": 20, "stop": ["x"], "seed": 3}],
    ids=["plain", "params"],
)
async def test_the_requests_sent_validate_against_the_spec(options: dict[str, Any]) -> None:
    capture = await run_job(**options)
    by_path = {(r.method, r.url.path): (r, sent) for r, sent, _, _ in capture.exchanges}
    upload, sent = by_path["POST", "/v1/files"]
    content_type = upload.headers["content-type"]
    assert content_type.startswith("multipart/form-data; boundary=")
    fields = form_fields(content_type, sent)
    filename, data = fields["file"]
    form = {"purpose": fields["purpose"][1].decode(), "file": data.decode()}
    validator("CreateFileRequest").validate(form)
    assert form["purpose"] == "batch" and filename and filename.endswith(".jsonl")
    _, sent = by_path["POST", "/v1/batches"]
    body = json.loads(sent)
    validator("CreateBatchRequest").validate(body)
    lines = [json.loads(line) for line in data.splitlines()]
    assert [line["custom_id"] for line in lines] == ["0", "1"]
    for line in lines:
        assert line["method"] == "POST" and line["url"] == body["endpoint"]
        assert line["body"]["model"] == "mock-echo"
        for name, value in options.items():  # OpenAI's newer name for max_tokens
            wire_name = "max_completion_tokens" if name == "max_tokens" else name
            assert line["body"][wire_name] == value


async def test_the_mock_answers_validate_against_the_spec() -> None:
    capture = await run_job()
    schemas = {"files": "OpenAIFile", "batches": "Batch"}
    checked = set()
    for request, _, response, body in capture.exchanges:
        assert response.status_code == 200, body
        kind = request.url.path.split("/")[2]
        if request.url.path.endswith("/content"):
            assert all(json.loads(line)["custom_id"] for line in body.splitlines())
            continue
        validator(schemas[kind]).validate(json.loads(body))
        checked.add(kind)
    assert checked == {"files", "batches"}


def test_a_failed_job_validates_too() -> None:
    from llmrelay.mock._batches import BatchStore

    engine = MockEngine(batch_delay=0)
    store: BatchStore = engine.batches
    file = store._store_file(b'{"not": "a request"}\n', "bad.jsonl", "batch")
    status, job = store._openai_create(
        "/v1/batches",
        {},
        json.dumps(
            {"input_file_id": file["id"], "endpoint": "/v1/chat/completions",
             "completion_window": "24h"}
        ).encode(),
    )  # fmt: skip
    assert status == 200
    status, job = store._get(job["id"], "openai")
    assert job["status"] == "failed" and job["errors"]["data"][0]["line"] == 1
    validator("Batch").validate(job)
