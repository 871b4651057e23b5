"""The public API contract of DESIGN.md: names, value types, errors and signatures."""

from __future__ import annotations

import dataclasses
import inspect
import subprocess
import sys

import pytest

import llmrelay

PUBLIC_NAMES = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AllRoutesFailedError",
    "AssistantMessage",
    "AsyncClient",
    "AudioPart",
    "AuthenticationError",
    "BadRequestError",
    "BatchCounts",
    "BatchItemError",
    "BatchJob",
    "BatchNotReadyError",
    "BatchStatus",
    "Budget",
    "BudgetExceededError",
    "ChatResponse",
    "ChatStream",
    "Choice",
    "CircuitBreaker",
    "CircuitOpenError",
    "Client",
    "ClientStateError",
    "ConfigError",
    "ConflictError",
    "ContentPart",
    "DeveloperMessage",
    "EmbeddingResponse",
    "ErrorEvent",
    "Hooks",
    "ImagePart",
    "ImageURL",
    "InputAudio",
    "InternalServerError",
    "LLMError",
    "Message",
    "MessageDict",
    "ModelInfo",
    "ModelTotals",
    "NotFoundError",
    "OutputValidationError",
    "OverloadedError",
    "PermissionDeniedError",
    "Price",
    "Provider",
    "RateLimit",
    "RateLimitBackendError",
    "RateLimitError",
    "ReasoningBlock",
    "ReasoningBlockDict",
    "RequestEvent",
    "ResponseError",
    "ResponseEvent",
    "RetryEvent",
    "RetryPolicy",
    "Route",
    "StreamChunk",
    "StreamError",
    "SyncStream",
    "SystemMessage",
    "TextPart",
    "Timeout",
    "TokenLogprob",
    "ToolCall",
    "ToolCallDelta",
    "ToolCallDict",
    "ToolCallFunction",
    "ToolMessage",
    "UnprocessableEntityError",
    "Usage",
    "UsageTotals",
    "UserMessage",
    "__version__",
    "function_tool",
    "instrument",
    "run_tool_calls",
    "run_tool_calls_sync",
    "uninstrument",
]

VALUE_TYPES = [
    "Message",
    "ChatResponse",
    "Choice",
    "StreamChunk",
    "ReasoningBlock",
    "Usage",
    "ToolCall",
    "ToolCallDelta",
    "TokenLogprob",
    "EmbeddingResponse",
    "ModelInfo",
    "Timeout",
    "RetryPolicy",
    "RateLimit",
    "BatchJob",
    "BatchCounts",
]

# DESIGN.md §2: (name, parent)
ERROR_TREE = [
    ("LLMError", Exception),
    ("ConfigError", "LLMError"),
    ("APIConnectionError", "LLMError"),
    ("APITimeoutError", "APIConnectionError"),
    ("APIStatusError", "LLMError"),
    ("BadRequestError", "APIStatusError"),
    ("AuthenticationError", "APIStatusError"),
    ("PermissionDeniedError", "APIStatusError"),
    ("NotFoundError", "APIStatusError"),
    ("ConflictError", "APIStatusError"),
    ("UnprocessableEntityError", "APIStatusError"),
    ("RateLimitError", "APIStatusError"),
    ("InternalServerError", "APIStatusError"),
    ("OverloadedError", "InternalServerError"),
    ("ResponseError", "LLMError"),
    ("OutputValidationError", "ResponseError"),
    ("StreamError", "LLMError"),
    ("ClientStateError", "LLMError"),
    ("BatchItemError", "LLMError"),
    ("BatchNotReadyError", "LLMError"),
]


def test_all_is_pinned() -> None:
    assert sorted(PUBLIC_NAMES) == PUBLIC_NAMES
    assert sorted(llmrelay.__all__) == PUBLIC_NAMES
    assert len(set(llmrelay.__all__)) == len(llmrelay.__all__)


@pytest.mark.parametrize("name", PUBLIC_NAMES)
def test_every_public_name_is_importable(name: str) -> None:
    assert hasattr(llmrelay, name)
    namespace: dict[str, object] = {}
    exec(f"from llmrelay import {name}", namespace)
    assert namespace[name] is getattr(llmrelay, name)


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from llmrelay import *", namespace)
    assert sorted(k for k in namespace if k != "__builtins__") == PUBLIC_NAMES


def test_version() -> None:
    assert isinstance(llmrelay.__version__, str)
    assert llmrelay.__version__.count(".") >= 2


@pytest.mark.parametrize("name", VALUE_TYPES)
def test_value_types_are_frozen_slotted_dataclasses(name: str) -> None:
    cls = getattr(llmrelay, name)
    assert dataclasses.is_dataclass(cls)
    params = cls.__dataclass_params__
    assert params.frozen, f"{name} is not frozen"
    assert "__slots__" in cls.__dict__, f"{name} is not slotted"
    instance = _example(cls)
    assert not hasattr(instance, "__dict__")
    first = dataclasses.fields(cls)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(instance, first, getattr(instance, first))
    with pytest.raises((AttributeError, TypeError)):
        instance.not_a_field = 1  # type: ignore[attr-defined]


def _example(cls: type) -> object:
    required = {
        llmrelay.Message: {"role": "user", "content": "hi"},
        llmrelay.ChatResponse: {"text": "hi"},
        llmrelay.Choice: {"index": 0, "text": "hi"},
        llmrelay.ToolCall: {"id": "call_1", "name": "f"},
        llmrelay.ToolCallDelta: {"index": 0},
        llmrelay.TokenLogprob: {"token": "hi", "logprob": -0.1},
        llmrelay.EmbeddingResponse: {"vectors": [[0.0]]},
        llmrelay.ModelInfo: {"id": "m"},
        llmrelay.BatchJob: {
            "id": "batch_1",
            "provider": "openai",
            "status": "completed",
            "counts": llmrelay.BatchCounts(total=1, succeeded=1),
        },
        llmrelay.BatchCounts: {"total": 1},
    }
    return cls(**required.get(cls, {}))


def test_value_types_are_hashable_and_comparable() -> None:
    a = llmrelay.Usage(prompt_tokens=1, completion_tokens=2, total_tokens=3)
    b = llmrelay.Usage(prompt_tokens=1, completion_tokens=2, total_tokens=3)
    assert a == b
    assert hash(a) == hash(b)
    assert llmrelay.Timeout() == llmrelay.Timeout(connect=5.0, read=600.0, total=None)


@pytest.mark.parametrize(("name", "parent"), ERROR_TREE)
def test_error_hierarchy(name: str, parent: type | str) -> None:
    cls = getattr(llmrelay, name)
    base = getattr(llmrelay, parent) if isinstance(parent, str) else parent
    assert issubclass(cls, base)
    assert issubclass(cls, llmrelay.LLMError)


def test_status_error_attributes() -> None:
    error = llmrelay.RateLimitError(
        "openai returned 429: slow down",
        status_code=429,
        provider="openai",
        request_id="req_1",
        body={"error": {}},
        retry_after=2.0,
    )
    assert (error.status_code, error.request_id, error.provider, error.retry_after) == (
        429,
        "req_1",
        "openai",
        2.0,
    )
    assert error.body == {"error": {}}
    assert str(error) == "openai returned 429: slow down"


def test_stream_error_attributes() -> None:
    error = llmrelay.StreamError("cut", partial="Hel", retryable=True)
    assert error.partial == "Hel"
    assert error.retryable is True


def test_config_error_is_also_a_value_error() -> None:
    assert issubclass(llmrelay.ConfigError, ValueError)


CLIENT_PARAMS = [
    "provider",
    "api_key",
    "base_url",
    "model",
    "timeout",
    "max_retries",
    "retry",
    "max_concurrency",
    "rate_limit",
    "headers",
    "http_client",
]
CALL_PARAMS = [
    "model",
    "temperature",
    "max_tokens",
    "top_p",
    "stop",
    "tools",
    "tool_choice",
    "response_format",
    "seed",
    "n",
    "extra_body",
    "extra_headers",
    "timeout",
    "max_retries",
]


def test_async_client_signature() -> None:
    params = inspect.signature(llmrelay.AsyncClient).parameters
    for name in CLIENT_PARAMS:
        assert name in params, name
    assert params["provider"].default == "openai"
    assert params["max_concurrency"].default == 16
    for name in CLIENT_PARAMS[1:]:
        if name != "max_concurrency":
            assert params[name].default is None, name


@pytest.mark.parametrize("method", ["chat", "stream"])
def test_call_signatures(method: str) -> None:
    params = inspect.signature(getattr(llmrelay.AsyncClient, method)).parameters
    assert list(params)[:2] == ["self", "messages"]
    for name in CALL_PARAMS:
        assert name in params, name
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY


def test_both_clients_have_the_same_methods() -> None:
    for name in ["chat", "stream", "batch", "as_completed", "embed", "models", "usage"]:
        assert hasattr(llmrelay.AsyncClient, name)
        assert hasattr(llmrelay.Client, name)
    assert inspect.iscoroutinefunction(llmrelay.AsyncClient.chat)
    assert not inspect.iscoroutinefunction(llmrelay.Client.chat)


def test_importing_is_light_and_reads_no_key() -> None:
    code = (
        "import os, sys\n"
        "os.environ.pop('OPENAI_API_KEY', None)\n"
        "import llmrelay\n"
        # (click and rich are left out: httpx itself imports them when they are installed)
        # asyncio too: anyio and httpx do not load it, and neither may we (trio users).
        # Hooks, provider batches, fallbacks, structured output and OpenTelemetry load with
        # their first use.
        "heavy = [m for m in ('llmrelay.mock', 'llmrelay.cli', 'uvicorn', 'redis', 'h2',"
        " 'asyncio', 'llmrelay._hooks', 'llmrelay.stages._hooks', 'llmrelay._batch_job',"
        " 'llmrelay._routes', 'llmrelay._structured', 'llmrelay._otel', 'opentelemetry',"
        " 'pydantic')"
        " if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
