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
from ._config import RateLimit, RetryPolicy, Timeout
from ._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ClientStateError,
    ConfigError,
    ConflictError,
    InternalServerError,
    LLMError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    RateLimitError,
    ResponseError,
    StreamError,
    UnprocessableEntityError,
)
from ._hooks import ErrorEvent, Hooks, RequestEvent, ResponseEvent, RetryEvent
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
    from ._otel import instrument, uninstrument
    from ._stream import ChatStream
    from ._sync import Client, SyncStream

__version__ = "0.1.0"

# Silent unless the application configures logging (or sets LLMRELAY_LOG).
logging.getLogger("llmrelay").addHandler(logging.NullHandler())


def __getattr__(name: str) -> object:
    # The sync facade (threads, a blocking portal) and streaming load on first use.
    if name in ("Client", "SyncStream"):
        from . import _sync

        return getattr(_sync, name)
    if name in ("instrument", "uninstrument"):  # OpenTelemetry itself loads only when called
        from . import _otel

        return getattr(_otel, name)
    if name == "ChatStream":
        from ._stream import ChatStream

        return ChatStream
    raise AttributeError(f"module 'llmrelay' has no attribute {name!r}")


__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AssistantMessage",
    "AsyncClient",
    "AudioPart",
    "AuthenticationError",
    "BadRequestError",
    "ChatResponse",
    "ChatStream",
    "Choice",
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
    "OverloadedError",
    "PermissionDeniedError",
    "Provider",
    "RateLimit",
    "RateLimitError",
    "ReasoningBlock",
    "ReasoningBlockDict",
    "RequestEvent",
    "ResponseError",
    "ResponseEvent",
    "RetryEvent",
    "RetryPolicy",
    "StreamChunk",
    "StreamError",
    "SyncStream",
    "SystemMessage",
    "TextPart",
    "Timeout",
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
    "instrument",
    "uninstrument",
]
