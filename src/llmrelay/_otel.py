"""OpenTelemetry for llmrelay: spans and metrics per the GenAI semantic conventions.

    llmrelay.instrument()          # every client built from now on
    llmrelay.instrument(client)    # one client (an AsyncClient or a Client)

Needs ``opentelemetry-api`` only (the ``[otel]`` extra), imported when `instrument` is called:
a process that never calls it never loads it, and a client that is not instrumented has no
hooks stage at all. Spans and metrics go to the tracer and meter providers the application set
up (``opentelemetry-sdk`` and an exporter); without them the API's no-op providers drop them.

It is one `Hooks` like any other:

- a CLIENT span per call, named ``"{gen_ai.operation.name} {gen_ai.request.model}"``, child of
  the span current when the call starts: the ``gen_ai.*`` request and response attributes,
  ``server.address``/``server.port``, ``error.type`` when it fails (``"cancelled"`` when it was
  cancelled or its stream closed before its end), an event ``llmrelay.retry`` per retry, and
  ``gen_ai.response.time_to_first_chunk`` for a stream;
- the histograms ``gen_ai.client.operation.duration``, ``gen_ai.client.token.usage`` and, for
  streams, ``gen_ai.client.operation.time_to_first_chunk``.

Message content (``gen_ai.input.messages``, ``gen_ai.output.messages``) is recorded only with
``capture_content=True``. Keys never are: events carry no headers, and bodies are masked.
`models()` calls are not GenAI operations and get no span.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, cast

from ._exceptions import APIStatusError, ConfigError
from ._hooks import (
    ErrorEvent,
    Hooks,
    RequestEvent,
    ResponseEvent,
    RetryEvent,
    add_global_hooks,
    remove_global_hooks,
)
from ._types import ChatResponse, EmbeddingResponse
from .stages._hooks import HooksStage

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import Span, TracerProvider

    from ._client import AsyncClient
    from ._sync import Client

__all__ = ["instrument", "uninstrument"]

SCOPE = "llmrelay"

# gen_ai.operation.name for each llmrelay operation (models() is not a GenAI operation).
OPERATIONS = {"chat": "chat", "stream": "chat", "embed": "embeddings"}

# gen_ai.provider.name: the conventions' well-known values where one exists, else the preset.
PROVIDER_NAMES = {
    "openai": "openai",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
    "azure": "azure.ai.openai",
    "deepseek": "deepseek",
    "groq": "groq",
    "mistral": "mistral_ai",
}

# Request parameters as the wire bodies name them → their gen_ai.request.* attribute.
REQUEST_PARAMS = {
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "max_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
    "seed": "gen_ai.request.seed",
    "n": "gen_ai.request.choice.count",
}

# Gemini keeps them in generationConfig, by other names.
GEMINI_PARAMS = {
    "temperature": "gen_ai.request.temperature",
    "topP": "gen_ai.request.top_p",
    "maxOutputTokens": "gen_ai.request.max_tokens",
    "seed": "gen_ai.request.seed",
    "candidateCount": "gen_ai.request.choice.count",
}

# The conventions' advised bucket boundaries.
TOKEN_BUCKETS = [4**i for i in range(14)]  # 1, 4, 16, ... 67108864
SECONDS_BUCKETS = [0.01 * 2**i for i in range(14)]  # 0.01, 0.02, ... 81.92

_global: Hooks | None = None


def instrument(
    client: AsyncClient | Client | None = None,
    *,
    capture_content: bool = False,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> None:
    """Trace and measure `client`'s calls, or (without one) those of every client built from
    now on. `capture_content=True` records messages and replies on the spans too. The global
    providers are used unless `tracer_provider`/`meter_provider` are given. Instrumenting
    again replaces the earlier settings (a client's own call wins over the global one)."""
    global _global
    try:
        from opentelemetry import metrics, trace
    except ImportError:
        raise ConfigError(
            "llmrelay.instrument() needs OpenTelemetry: pip install 'llmrelay[otel]'"
        ) from None
    telemetry = _Telemetry(
        trace.get_tracer(SCOPE, tracer_provider=tracer_provider),
        metrics.get_meter(SCOPE, meter_provider=meter_provider),
        capture_content=capture_content,
    )
    hooks = telemetry.hooks()
    if client is None:
        if _global is not None:
            remove_global_hooks(_global)
        _global = hooks
        add_global_hooks(hooks)
        return
    # The sync Client drives an AsyncClient.
    target = cast("AsyncClient", getattr(client, "_async", client))
    if not hasattr(target, "_add_hooks"):
        raise ConfigError(f"instrument() takes an llmrelay client, not {type(client).__name__}")
    stage = target._chain
    if isinstance(stage, HooksStage):  # instrumented already (or by instrument()): replace it
        stage.hooks = tuple(h for h in stage.hooks if not _is_telemetry(h))
    target._add_hooks(hooks)


def uninstrument() -> None:
    """Undo `instrument()` (without a client) for clients built from now on."""
    global _global
    if _global is not None:
        remove_global_hooks(_global)
        _global = None


class _Telemetry:
    def __init__(self, tracer: Any, meter: Any, *, capture_content: bool) -> None:
        self._tracer = tracer
        self._capture = capture_content
        self._spans: dict[RequestEvent, tuple[Span, dict[str, Any]]] = {}
        self._duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration",
            explicit_bucket_boundaries_advisory=SECONDS_BUCKETS,
        )
        self._tokens = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
        )
        self._first_chunk = meter.create_histogram(
            "gen_ai.client.operation.time_to_first_chunk",
            unit="s",
            description="Time to receive the first chunk of a streamed response",
            explicit_bucket_boundaries_advisory=SECONDS_BUCKETS,
        )

    def hooks(self) -> Hooks:
        return Hooks(
            on_request=self.started,
            on_retry=self.retried,
            on_response=self.responded,
            on_error=self.failed,
        )

    def started(self, event: RequestEvent) -> None:
        from opentelemetry.trace import SpanKind

        operation = OPERATIONS.get(event.operation)
        if operation is None:
            return
        common: dict[str, Any] = {
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": PROVIDER_NAMES.get(event.provider, event.provider),
        }
        if event.model:
            common["gen_ai.request.model"] = event.model
        if event.server_address:
            common["server.address"] = event.server_address
            if event.server_port is not None:
                common["server.port"] = event.server_port
        attributes = dict(common)
        body = event._body  # unmasked is fine for numbers; content goes through `.body`
        if isinstance(body, dict):
            _request_params(body, REQUEST_PARAMS, attributes)
            if isinstance(body.get("generationConfig"), dict):
                _request_params(body["generationConfig"], GEMINI_PARAMS, attributes)
        span = self._tracer.start_span(
            f"{operation} {event.model}" if event.model else operation,
            kind=SpanKind.CLIENT,
            attributes=attributes,
        )
        if self._capture and span.is_recording():
            span.set_attribute("gen_ai.input.messages", json.dumps(input_messages(event.body)))
        self._spans[event] = (span, common)

    def retried(self, event: RetryEvent) -> None:
        known = self._spans.get(event.request)
        if known is None:
            return
        attributes: dict[str, Any] = {
            "llmrelay.retry.attempt": event.attempt,
            "llmrelay.retry.delay": event.delay,
            "error.type": type(event.error).__name__,
        }
        if isinstance(event.error, APIStatusError):
            attributes["http.response.status_code"] = event.error.status_code
        known[0].add_event("llmrelay.retry", attributes)

    def responded(self, event: ResponseEvent) -> None:
        known = self._spans.pop(event.request, None)
        if known is None:
            return
        span, common = known
        result, usage = event.result, event.usage
        metric = dict(common)
        answered = getattr(result, "provider", None)
        if isinstance(answered, str) and answered:
            # A fallback route of another provider answered: its tokens are that provider's.
            name = PROVIDER_NAMES.get(answered, answered)
            if name != metric["gen_ai.provider.name"]:
                metric["gen_ai.provider.name"] = name
                span.set_attribute("gen_ai.provider.name", name)
        if isinstance(result, ChatResponse | EmbeddingResponse) and result.model:
            metric["gen_ai.response.model"] = result.model
            span.set_attribute("gen_ai.response.model", result.model)
        if isinstance(result, ChatResponse):
            if result.id:
                span.set_attribute("gen_ai.response.id", result.id)
            reasons = [c.finish_reason for c in result.choices if c.finish_reason]
            if not reasons and result.finish_reason:
                reasons = [result.finish_reason]
            if reasons:
                span.set_attribute("gen_ai.response.finish_reasons", reasons)
            if self._capture and span.is_recording():
                span.set_attribute("gen_ai.output.messages", json.dumps(output_messages(result)))
        if usage is not None:
            span.set_attribute("gen_ai.usage.input_tokens", usage.prompt_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", usage.completion_tokens)
            self._tokens.record(usage.prompt_tokens, {**metric, "gen_ai.token.type": "input"})
            self._tokens.record(usage.completion_tokens, {**metric, "gen_ai.token.type": "output"})
        self._finish(span, metric, event.duration, event.time_to_first_chunk)

    def failed(self, event: ErrorEvent) -> None:
        from opentelemetry.trace import StatusCode

        known = self._spans.pop(event.request, None)
        if known is None:
            return
        span, common = known
        error = event.error
        kind = "cancelled" if error is None else type(error).__name__
        span.set_attribute("error.type", kind)
        if error is not None:
            span.set_status(StatusCode.ERROR, str(error))
            if isinstance(error, APIStatusError):
                span.set_attribute("http.response.status_code", error.status_code)
        self._finish(
            span, {**common, "error.type": kind}, event.duration, event.time_to_first_chunk
        )

    def _finish(
        self, span: Span, metric: dict[str, Any], duration: float, first_chunk: float | None
    ) -> None:
        if first_chunk is not None:
            span.set_attribute("gen_ai.response.time_to_first_chunk", first_chunk)
            self._first_chunk.record(first_chunk, metric)
        span.end()
        self._duration.record(duration, metric)


def _request_params(body: dict[str, Any], names: dict[str, str], into: dict[str, Any]) -> None:
    for name, attribute in names.items():
        value = body.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            into[attribute] = value


def _is_telemetry(hooks: Hooks) -> bool:
    return isinstance(getattr(hooks.on_request, "__self__", None), _Telemetry)


def _parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    parts: list[dict[str, Any]] = []
    for part in content if isinstance(content, list) else []:
        if isinstance(part, dict) and isinstance(part.get("text"), str):
            parts.append({"type": "text", "content": part["text"]})
        elif isinstance(part, dict):
            parts.append({"type": str(part.get("type", "unknown"))})
    return parts


def input_messages(body: Any) -> list[dict[str, Any]]:
    """The conversation of a wire body (OpenAI, Anthropic or Gemini shapes) as the conventions'
    ``gen_ai.input.messages``: role and parts (text; other parts by their type only)."""
    if not isinstance(body, dict):
        return []
    messages: list[dict[str, Any]] = []
    system = body.get("system")  # Anthropic
    if system:
        messages.append({"role": "system", "parts": _parts(system)})
    instruction = body.get("systemInstruction")  # Gemini
    if isinstance(instruction, dict):
        messages.append({"role": "system", "parts": _parts(instruction.get("parts"))})
    for message in body.get("messages") or body.get("contents") or []:
        if isinstance(message, dict):
            content = message.get("content", message.get("parts"))
            role = message.get("role", "user")
            messages.append(
                {"role": "assistant" if role == "model" else role, "parts": _parts(content)}
            )
    if not messages and isinstance(body.get("input"), str | list):  # embeddings
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        messages = [{"role": "user", "parts": _parts(t)} for t in texts if isinstance(t, str)]
    return messages


def output_messages(reply: ChatResponse) -> list[dict[str, Any]]:
    return [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": choice.text or ""}],
            "finish_reason": choice.finish_reason or "",
        }
        for choice in reply.choices
    ]
