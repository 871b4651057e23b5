"""`llmrelay.instrument()`: spans and metrics per the OpenTelemetry GenAI conventions, read
back with the SDK's in-memory span exporter and metric reader, through the real client over
the in-process mock (and a loopback server for the key)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import llmrelay
from _loopback import Request, json_response, loopback

pytestmark = pytest.mark.anyio

FAST = llmrelay.RetryPolicy(max_retries=2, backoff_base=0.0)
KEY = "sk-SECRET-otel-0123456789"


class Telemetry:
    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def instrument(self, client: Any = None, **options: Any) -> None:
        llmrelay.instrument(
            client,
            tracer_provider=self.tracer_provider,
            meter_provider=self.meter_provider,
            **options,
        )

    @property
    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def points(self, name: str) -> list[tuple[dict[str, Any], Any]]:
        """The data points of metric `name`: (attributes, point)."""
        data = self.reader.get_metrics_data()
        found = []
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found += [(dict(p.attributes or {}), p) for p in metric.data.data_points]
        return found


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    t = Telemetry()
    yield t
    llmrelay.uninstrument()


async def test_a_chat_call_is_one_client_span_with_the_genai_attributes(
    telemetry: Telemetry,
) -> None:
    async with llmrelay.AsyncClient(provider="mock") as client:
        telemetry.instrument(client)
        reply = await client.chat("hello there", temperature=0.5, max_tokens=50)
    (span,) = telemetry.spans
    assert span.name == "chat mock-echo" and span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert reply.usage is not None
    assert dict(span.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "mock",
        "gen_ai.request.model": "mock-echo",
        "gen_ai.request.temperature": 0.5,
        "gen_ai.request.max_tokens": 50,
        "server.address": "mock.llmrelay.invalid",
        "server.port": 80,
        "gen_ai.response.model": "mock-echo",
        "gen_ai.response.id": reply.id,
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": reply.usage.prompt_tokens,
        "gen_ai.usage.output_tokens": reply.usage.completion_tokens,
    }


async def test_the_metrics_the_conventions_define(telemetry: Telemetry) -> None:
    async with llmrelay.AsyncClient(provider="mock") as client:
        telemetry.instrument(client)
        reply = await client.chat("one two three")
        async for _ in client.stream("four five six"):
            pass
    assert reply.usage is not None
    tokens = telemetry.points("gen_ai.client.token.usage")
    by_type = {(a["gen_ai.token.type"]): p for a, p in tokens if a["gen_ai.request.model"]}
    assert set(by_type) == {"input", "output"}
    assert all(p.count == 2 for p in by_type.values())  # the call and the stream
    assert all(a["gen_ai.operation.name"] == "chat" for a, _ in tokens)
    assert all(a["gen_ai.response.model"] == "mock-echo" for a, _ in tokens)
    ((attributes, duration),) = telemetry.points("gen_ai.client.operation.duration")
    assert duration.count == 2 and duration.sum > 0
    assert attributes["gen_ai.provider.name"] == "mock" and "error.type" not in attributes
    assert tuple(duration.explicit_bounds)[:3] == (0.01, 0.02, 0.04)
    ((_, first_chunk),) = telemetry.points("gen_ai.client.operation.time_to_first_chunk")
    assert first_chunk.count == 1  # streams only


async def test_a_stream_span_holds_its_time_to_first_chunk(telemetry: Telemetry) -> None:
    async with llmrelay.AsyncClient(provider="mock") as client:
        telemetry.instrument(client)
        async with client.stream("a b c d", extra_headers={"x-mock-chunk-delay": "0.01"}) as s:
            final = await s.final()
    (span,) = telemetry.spans
    attributes = dict(span.attributes or {})
    first = attributes["gen_ai.response.time_to_first_chunk"]
    assert isinstance(first, float)
    assert span.end_time is not None and span.start_time is not None
    assert 0 < first * 1e9 < span.end_time - span.start_time
    assert attributes["gen_ai.usage.output_tokens"] == final.usage.completion_tokens  # type: ignore[union-attr]


async def test_each_retry_is_an_event_on_the_span(telemetry: Telemetry) -> None:
    async with llmrelay.AsyncClient(provider="mock", retry=FAST) as client:
        telemetry.instrument(client)
        await client.chat("hi", model="mock-echo+fault=429;times=2")
    (span,) = telemetry.spans
    assert [e.name for e in span.events] == ["llmrelay.retry", "llmrelay.retry"]
    first = dict(span.events[0].attributes or {})
    assert first["llmrelay.retry.attempt"] == 1
    assert first["error.type"] == "RateLimitError"
    assert first["http.response.status_code"] == 429
    assert span.status.status_code is StatusCode.UNSET  # it succeeded in the end


@pytest.mark.parametrize(
    ("model", "error_type"),
    [
        ("mock-echo+fault=400", "BadRequestError"),
        ("mock-echo+fault=malformed", "ResponseError"),
    ],
)
async def test_a_failed_call_sets_error_type(
    telemetry: Telemetry, model: str, error_type: str
) -> None:
    async with llmrelay.AsyncClient(provider="mock", retry=FAST) as client:
        telemetry.instrument(client)
        with pytest.raises(llmrelay.LLMError):
            await client.chat("hi", model=model)
    (span,) = telemetry.spans
    assert span.attributes is not None and span.attributes["error.type"] == error_type
    assert span.status.status_code is StatusCode.ERROR
    ((attributes, _),) = telemetry.points("gen_ai.client.operation.duration")
    assert attributes["error.type"] == error_type


async def test_a_stream_closed_midway_ends_its_span_as_cancelled(telemetry: Telemetry) -> None:
    async with llmrelay.AsyncClient(provider="mock") as client:
        telemetry.instrument(client)
        async with client.stream("one two three four five") as stream:
            async for _ in stream:
                break
    (span,) = telemetry.spans
    assert span.attributes is not None and span.attributes["error.type"] == "cancelled"


async def test_content_is_recorded_only_when_asked(telemetry: Telemetry) -> None:
    async with llmrelay.AsyncClient(provider="mock") as plain:
        telemetry.instrument(plain)
        await plain.chat("a private prompt")
    async with llmrelay.AsyncClient(provider="mock") as capturing:
        telemetry.instrument(capturing, capture_content=True)
        await capturing.chat(
            [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "a shared prompt"},
            ]
        )
    without, with_content = telemetry.spans
    assert not any("private" in str(v) for v in (without.attributes or {}).values())
    attributes = with_content.attributes or {}
    assert json.loads(str(attributes["gen_ai.input.messages"])) == [
        {"role": "system", "parts": [{"type": "text", "content": "be brief"}]},
        {"role": "user", "parts": [{"type": "text", "content": "a shared prompt"}]},
    ]
    assert json.loads(str(attributes["gen_ai.output.messages"])) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": "echo: a shared prompt"}],
            "finish_reason": "stop",
        }
    ]


async def test_no_span_or_metric_holds_the_key(telemetry: Telemetry) -> None:
    def respond(request: Request) -> Any:
        auth = request.headers.get("authorization", "")
        return json_response({"error": {"message": f"rejected {auth}"}}, status=400)

    async with (
        loopback(respond) as server,
        llmrelay.AsyncClient(
            provider="openai", api_key=KEY, base_url=server.base_url, model="m"
        ) as client,
    ):
        telemetry.instrument(client, capture_content=True)
        with pytest.raises(llmrelay.BadRequestError):
            await client.chat(f"the key is {KEY}")
    (span,) = telemetry.spans
    dumped = span.to_json() + repr(telemetry.reader.get_metrics_data())
    assert KEY not in dumped
    assert "rejected" in dumped  # the error message is there, masked
    assert dict(span.attributes or {})["gen_ai.provider.name"] == "openai"


async def test_instrument_without_a_client_covers_every_client_built_after(
    telemetry: Telemetry,
) -> None:
    async with llmrelay.AsyncClient(provider="mock") as before:
        telemetry.instrument()
        async with llmrelay.AsyncClient(provider="mock") as after:
            await before.chat("not traced")
            await after.chat("traced")
            await after.embed(["a", "b"])
            await after.models()  # not a GenAI operation: no span
        llmrelay.uninstrument()
        async with llmrelay.AsyncClient(provider="mock") as later:
            await later.chat("not traced either")
    assert [s.name for s in telemetry.spans] == ["chat mock-echo", "embeddings mock-echo"]


def test_the_sync_client_can_be_instrumented(telemetry: Telemetry) -> None:
    with llmrelay.Client(provider="mock") as client:
        telemetry.instrument(client)
        client.chat("hi")
        assert [c.text for c in client.stream("a b")]
    assert [s.name for s in telemetry.spans] == ["chat mock-echo", "chat mock-echo"]


async def test_spans_are_children_of_the_current_span(telemetry: Telemetry) -> None:
    tracer = telemetry.tracer_provider.get_tracer("app")
    async with llmrelay.AsyncClient(provider="mock") as client:
        telemetry.instrument(client)
        with tracer.start_as_current_span("handle request") as parent:
            async with anyio.create_task_group() as group:
                group.start_soon(client.chat, "a")
                group.start_soon(client.chat, "b")
    children = [s for s in telemetry.spans if s.name.startswith("chat")]
    assert len(children) == 2
    assert all(s.parent is not None for s in children)
    assert {s.parent.span_id for s in children if s.parent} == {parent.get_span_context().span_id}


def test_import_llmrelay_does_not_load_opentelemetry() -> None:
    code = (
        "import sys, llmrelay\n"
        "assert not any(m.startswith('opentelemetry') for m in sys.modules), 'loaded'\n"
        "llmrelay.instrument\n"
        "assert not any(m.startswith('opentelemetry') for m in sys.modules), 'loaded'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


async def test_instrumenting_again_replaces_the_earlier_settings(telemetry: Telemetry) -> None:
    telemetry.instrument()
    async with llmrelay.AsyncClient(provider="mock") as client:
        telemetry.instrument(client, capture_content=True)
        telemetry.instrument(client, capture_content=True)
        await client.chat("once")
    (span,) = telemetry.spans
    assert "gen_ai.input.messages" in (span.attributes or {})


async def test_gemini_request_parameters_are_read_from_its_generation_config(
    telemetry: Telemetry,
) -> None:
    from llmrelay.mock import MockEngine, MockTransport

    # The mock speaks Gemini's wire format too, in process.
    async with (
        httpx.AsyncClient(transport=MockTransport(MockEngine())) as http,
        llmrelay.AsyncClient(
            provider="gemini",
            api_key="k",
            base_url="http://mock.llmrelay.invalid/v1beta",
            http_client=http,
        ) as client,
    ):
        telemetry.instrument(client)
        await client.chat("hi", model="gemini-x", temperature=0.25, max_tokens=9)
    (span,) = telemetry.spans
    attributes = dict(span.attributes or {})
    assert attributes["gen_ai.provider.name"] == "gcp.gemini"
    assert attributes["gen_ai.request.temperature"] == 0.25
    assert attributes["gen_ai.request.max_tokens"] == 9


async def test_instrumenting_a_client_in_use_keeps_its_calls_in_flight(
    telemetry: Telemetry,
) -> None:
    async with llmrelay.AsyncClient(provider="mock", max_concurrency=1) as client:
        async with client.stream("a b c d e f") as stream:
            await stream.__anext__()  # holds the one slot
            telemetry.instrument(client)
            with anyio.move_on_after(0.2) as waited:
                await client.chat("must wait for the slot")
            assert waited.cancel_called  # the stream still holds it
        with anyio.fail_after(5):
            await client.chat("now it can")
    assert [s.name for s in telemetry.spans] == ["chat mock-echo", "chat mock-echo"]


def test_instrument_takes_a_client_only() -> None:
    with pytest.raises(llmrelay.ConfigError, match="llmrelay client"):
        llmrelay.instrument("openai")  # type: ignore[arg-type]


def test_instrument_without_opentelemetry_says_what_to_install() -> None:
    code = (
        "import sys\n"
        "sys.modules['opentelemetry'] = None  # as if it were not installed\n"
        "import llmrelay\n"
        "try:\n"
        "    llmrelay.instrument()\n"
        "except llmrelay.ConfigError as exc:\n"
        "    assert \"pip install 'llmrelay[otel]'\" in str(exc), exc\n"
        "else:\n"
        "    raise SystemExit('no error')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


async def test_a_reply_from_a_fallback_route_is_that_providers(telemetry: Telemetry) -> None:
    # The primary (mock) is down; Anthropic's route answers: the span and the token counts
    # name the provider that answered, not the one asked first.
    from llmrelay.mock import serve

    with serve() as url:
        async with llmrelay.AsyncClient(
            "mock",
            model="mock-echo+fault=503",
            max_retries=0,
            fallbacks=[
                llmrelay.Route("anthropic", model="mock-echo", api_key=KEY, base_url=f"{url}/v1")
            ],
        ) as client:
            telemetry.instrument(client)
            reply = await client.chat("hello", max_tokens=20)
    assert reply.provider == "anthropic"
    (span,) = telemetry.spans
    assert (span.attributes or {})["gen_ai.provider.name"] == "anthropic"
    tokens = telemetry.points("gen_ai.client.token.usage")
    assert tokens and {a["gen_ai.provider.name"] for a, _ in tokens} == {"anthropic"}
