"""`Hooks`: your own functions, told about every call a client makes, and the events they get.

    def log_reply(event: llmrelay.ResponseEvent) -> None:
        print(event.request.model, event.duration, event.usage)

    client = llmrelay.AsyncClient(provider="mock", hooks=llmrelay.Hooks(on_response=log_reply))

Each hook is a plain function or a coroutine function taking one event:

- `on_request(RequestEvent)`: a call starts (before it waits for a slot or the rate limiter);
- `on_retry(RetryEvent)`: an attempt failed and another follows after a backoff;
- `on_response(ResponseEvent)`: the call produced its result (a stream: once it is complete);
- `on_error(ErrorEvent)`: the call ended without one: a typed error, or `error=None` when it
  was cancelled or its stream was closed before its end.

Every call that fires `on_request` ends with exactly one `on_response` or `on_error`, whose
`.request` is the very `RequestEvent` object (use it as a dict key to follow one call). A hook
that raises is logged (logger ``llmrelay``) and the call goes on as if it had not been there.
Events carry no headers and no URL query: the key is never in them, and the error messages and
bodies in them are masked like the errors a call raises.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._exceptions import ConfigError

if TYPE_CHECKING:
    from ._exceptions import LLMError
    from ._keymask import KeyMask
    from ._types import ChatResponse, EmbeddingResponse, ModelInfo, Usage

__all__ = ["ErrorEvent", "Hooks", "RequestEvent", "ResponseEvent", "RetryEvent"]


class RequestEvent:
    """A call as it starts. `operation` is ``"chat"``, ``"stream"``, ``"embed"``,
    ``"models"`` or ``"batch"`` (a provider Batch API request: an upload, a job's creation, a
    poll, its results; `model` is then `None`); `model` the model asked for; `server_address`/`server_port` where it goes.
    `body` is the JSON body sent to the provider (your messages are in it), in the provider's
    own wire format, with the client's credentials masked; `None` for a GET."""

    __slots__ = (
        "_body",
        "_mask",
        "model",
        "operation",
        "provider",
        "server_address",
        "server_port",
    )

    def __init__(
        self,
        *,
        operation: str,
        provider: str,
        model: str | None,
        server_address: str | None,
        server_port: int | None,
        body: Any = None,
        mask: KeyMask | None = None,
    ) -> None:
        self.operation = operation
        self.provider = provider
        self.model = model
        self.server_address = server_address
        self.server_port = server_port
        self._body = body
        self._mask = mask

    @property
    def body(self) -> Any:
        # Masked when read, not when the call starts: most hooks never look at it.
        if self._mask is None or self._body is None:
            return self._body
        return self._mask._value(self._body)

    def __repr__(self) -> str:
        return (
            f"RequestEvent(operation={self.operation!r}, provider={self.provider!r}, "
            f"model={self.model!r}, server_address={self.server_address!r})"
        )


@dataclass(frozen=True, slots=True)
class RetryEvent:
    """Attempt number `attempt` (1 for the first) failed with `error`; the next is sent after
    `delay` seconds."""

    request: RequestEvent
    attempt: int
    error: LLMError
    delay: float


@dataclass(frozen=True, slots=True)
class ResponseEvent:
    """The call's result: a `ChatResponse` (a stream's assembled reply too), an
    `EmbeddingResponse`, or the model list. Times are in seconds: `duration` from the start of
    the call to its result (a stream: to its end), `queued` of it spent before the first attempt
    was sent (waiting for a concurrency slot or the rate limiter), `time_to_first_chunk` for a
    stream (from the start of the call), else `None`. `attempts` counts retries too."""

    request: RequestEvent
    result: ChatResponse | EmbeddingResponse | list[ModelInfo]
    usage: Usage | None
    request_id: str | None
    duration: float
    queued: float
    attempts: int
    time_to_first_chunk: float | None = None


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    """The call ended without a result: `error` is the typed error it raised, or `None` when it
    was cancelled or its stream was closed before its end (`time_to_first_chunk` tells whether
    a stream had started). A stream whose body failed before its first chunk raises a
    `StreamError` whose cause is `error`. Times as in `ResponseEvent`."""

    request: RequestEvent
    error: LLMError | None
    request_id: str | None
    duration: float
    queued: float
    attempts: int
    time_to_first_chunk: float | None = None


Hook = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class Hooks:
    """Functions (plain or async) a client calls at each step of every call; see the module
    docs. Pass one or several: ``AsyncClient(..., hooks=Hooks(...))`` or ``hooks=[a, b]``."""

    on_request: Callable[[RequestEvent], Any] | None = None
    on_response: Callable[[ResponseEvent], Any] | None = None
    on_retry: Callable[[RetryEvent], Any] | None = None
    on_error: Callable[[ErrorEvent], Any] | None = None

    def __post_init__(self) -> None:
        for name in ("on_request", "on_response", "on_retry", "on_error"):
            value = getattr(self, name)
            if value is not None and not callable(value):
                raise ConfigError(
                    f"Hooks({name}=...) takes a function or None, not {type(value).__name__}"
                )


_global: list[Hooks] = []


def global_hooks() -> tuple[Hooks, ...]:
    """The hooks every new client gets (`llmrelay.instrument()` adds its own here)."""
    return tuple(_global)


def add_global_hooks(hooks: Hooks) -> None:
    _global.append(hooks)


def remove_global_hooks(hooks: Hooks) -> None:
    if hooks in _global:
        _global.remove(hooks)


def coerce_hooks(hooks: Hooks | Sequence[Hooks] | None) -> tuple[Hooks, ...]:
    """`hooks=` as given to a client: one `Hooks`, a list or tuple of them, or None."""
    if hooks is None:
        return ()
    items = (hooks,) if isinstance(hooks, Hooks) else hooks
    if not isinstance(items, list | tuple) or not all(isinstance(h, Hooks) for h in items):
        raise ConfigError("hooks= takes llmrelay.Hooks(...) or a list of them")
    return tuple(items)
