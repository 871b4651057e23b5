"""llmrelay: one small, fast, typed client for LLM APIs.

import llmrelay

async with llmrelay.AsyncClient(provider="mock") as client:
    reply = await client.chat("Hello")
    print(reply.text)
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ._client import AsyncClient
from ._config import CircuitBreaker, RateLimit, RetryPolicy, Timeout
from ._exceptions import (
    AllRoutesFailedError,
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BatchItemError,
    BatchNotReadyError,
    BudgetExceededError,
    CircuitOpenError,
    ClientStateError,
    ConfigError,
    ConflictError,
    InternalServerError,
    LLMError,
    NotFoundError,
    OutputValidationError,
    OverloadedError,
    PermissionDeniedError,
    RateLimitBackendError,
    RateLimitError,
    ResponseError,
    StreamError,
    UnprocessableEntityError,
)
from ._types import (
    AssistantMessage,
    AudioPart,
    ChatResponse,
    Choice,
    ContentPart,
    DeveloperMessage,
    EmbeddingResponse,
    ImagePart,
    ImageURL,
    InputAudio,
    Message,
    MessageDict,
    ModelInfo,
    ReasoningBlock,
    ReasoningBlockDict,
    StreamChunk,
    SystemMessage,
    TextPart,
    TokenLogprob,
    ToolCall,
    ToolCallDelta,
    ToolCallDict,
    ToolCallFunction,
    ToolMessage,
    Usage,
    UserMessage,
)
from ._usage import ModelTotals, UsageTotals
from .providers import Provider

if TYPE_CHECKING:
    from ._batch_job import BatchCounts, BatchJob, BatchStatus
    from ._hooks import ErrorEvent, Hooks, RequestEvent, ResponseEvent, RetryEvent
    from ._otel import instrument, uninstrument
    from ._prices import Price
    from ._routes import Budget, Route
    from ._stream import ChatStream
    from ._sync import Client, SyncStream
    from ._tools import function_tool, run_tool_calls, run_tool_calls_sync

__version__ = "0.1.0"

# Silent unless the application configures logging (or sets LLMRELAY_LOG).
logging.getLogger("llmrelay").addHandler(logging.NullHandler())


def __getattr__(name: str) -> object:
    # The sync facade (threads, a blocking portal) and streaming load on first use.
    if name in ("Client", "SyncStream"):
        from . import _sync

        return getattr(_sync, name)
    if name in ("Budget", "Route"):  # loaded with the first use of fallbacks or budgets
        from . import _routes

        return getattr(_routes, name)
    if name in ("BatchCounts", "BatchJob", "BatchStatus"):  # provider Batch APIs: on first use
        from . import _batch_job

        return getattr(_batch_job, name)
    if name in ("ErrorEvent", "Hooks", "RequestEvent", "ResponseEvent", "RetryEvent"):
        from . import _hooks  # loaded with the first client too

        return getattr(_hooks, name)
    if name == "Price":
        from ._prices import Price

        return Price
    if name in ("instrument", "uninstrument"):  # OpenTelemetry itself loads only when called
        from . import _otel

        return getattr(_otel, name)
    if name == "ChatStream":
        from ._stream import ChatStream

        return ChatStream
    if name in ("function_tool", "run_tool_calls", "run_tool_calls_sync"):
        from . import _tools  # tools from functions: loaded with their first use

        return getattr(_tools, name)
    raise AttributeError(f"module 'llmrelay' has no attribute {name!r}")


__all__ = [
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
