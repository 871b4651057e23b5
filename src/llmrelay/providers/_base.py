"""The provider contract: a preset record plus an adapter of pure translation functions.

An adapter turns the unified request into a `WireRequest` (method, path, headers, JSON) and the
provider's JSON (or one server-sent event) back into the unified types. It does no I/O, so it is
tested with plain dicts. The pipeline knows nothing about any provider beyond this contract.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import httpx

    from .._request import ChatRequest, WireRequest
    from .._sse import ServerSentEvent
    from .._types import ChatResponse, EmbeddingResponse, ModelInfo, StreamChunk


class ErrorInfo:
    """What an adapter reads out of an error body: the message and code, a wait the body asks
    for (`retry_after`), whether the body says a retry cannot help (`retryable=False`, e.g. a
    spend limit) or will (`True`), a request id carried in the body, and `status_code` when the
    body names a truer status than the HTTP one (Gemini answers a bad key with a 400)."""

    __slots__ = ("code", "message", "request_id", "retry_after", "retryable", "status_code")

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        retry_after: float | None = None,
        retryable: bool | None = None,
        request_id: str | None = None,
        status_code: int | None = None,
    ) -> None:
        self.status_code = status_code
        self.message = message
        self.code = code
        self.retry_after = retry_after
        self.retryable = retryable
        self.request_id = request_id

    def __repr__(self) -> str:
        return (
            f"ErrorInfo({self.message!r}, code={self.code!r}, retry_after={self.retry_after!r}, "
            f"retryable={self.retryable!r}, request_id={self.request_id!r}, "
            f"status_code={self.status_code!r})"
        )


class StreamParser(Protocol):
    """Per-stream state that turns server-sent events into `StreamChunk`s.

    `parse` returns `None` for events that carry nothing for the user (pings, keep-alives) and
    raises an `APIStatusError` subclass for an error event. An event that carries several
    choices at once (a call with ``n``) gives a tuple of chunks, one per choice, each with its
    `index`. `finished()` tells, at the end of
    the byte stream, whether the provider's proper end was seen (else the stream was cut).

    A parser may also have a `done` attribute, True once the provider's terminal event was
    parsed (OpenAI's ``data: [DONE]``, Anthropic's ``message_stop``): the stream then reads
    nothing more and closes the connection, even if the server keeps it open.
    """

    done: bool
    """True once the provider's terminal event was parsed (OpenAI's ``data: [DONE]``,
    Anthropic's ``message_stop``); the stream reads nothing after it. A wire format without
    a terminal event (Gemini: the end of the body ends the stream) leaves it False."""

    def parse(self, event: ServerSentEvent) -> StreamChunk | tuple[StreamChunk, ...] | None: ...

    def finished(self) -> bool: ...


class Adapter(Protocol):
    """The functions a wire family provides (usually as a module)."""

    request_id_header: str

    def auth_headers(self, provider: Provider, api_key: str | None) -> dict[str, str]: ...

    def build_chat(self, provider: Provider, request: ChatRequest) -> WireRequest: ...

    def parse_chat(self, provider: Provider, data: Any, request_id: str | None) -> ChatResponse: ...

    def new_stream_parser(self, provider: Provider, request: ChatRequest) -> StreamParser: ...

    def build_embed(
        self,
        provider: Provider,
        model: str,
        inputs: list[str],
        extra_body: Mapping[str, Any] | None,
    ) -> WireRequest: ...

    def parse_embed(
        self, provider: Provider, data: Any, request_id: str | None
    ) -> EmbeddingResponse: ...

    def build_models(self, provider: Provider) -> WireRequest: ...

    def parse_models(self, provider: Provider, data: Any) -> list[ModelInfo]: ...

    def parse_error(self, provider: Provider, status_code: int, body: Any) -> ErrorInfo: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Provider:
    """A named preset: which adapter speaks its wire format, where it lives and how to log in.

    `options` carries family-specific settings (e.g. Anthropic's version header, Azure's
    api-version, which reasoning field a service uses). The repr hides credentials in
    `default_headers` and `base_url`.
    """

    name: str
    adapter: Adapter = field(repr=False)
    base_url: str
    api_key_env: tuple[str, ...] = ()
    base_url_env: tuple[str, ...] = ()
    key_required: bool = True
    stream_usage: bool = True  # ask for usage in streams (stream_options.include_usage)
    default_model: str | None = None
    default_headers: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    transport_factory: Callable[[], httpx.AsyncBaseTransport] | None = field(
        default=None, repr=False
    )

    def __repr__(self) -> str:
        # A plugin may carry a credential in a default header or a ``user:pass@`` URL.
        from .._logging import redact_headers, redact_url

        return (
            f"Provider(name={self.name!r}, base_url={redact_url(self.base_url)!r}, "
            f"api_key_env={self.api_key_env!r}, base_url_env={self.base_url_env!r}, "
            f"key_required={self.key_required!r}, stream_usage={self.stream_usage!r}, "
            f"default_model={self.default_model!r}, "
            f"default_headers={redact_headers(self.default_headers)!r}, "
            f"options={dict(self.options)!r})"
        )
