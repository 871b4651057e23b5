"""The llmrelay error hierarchy.

::

    LLMError
    ├── ConfigError                 bad arguments, missing key, unknown provider (nothing was sent)
    ├── ClientStateError            a closed client, or one used from another event loop
    ├── APIConnectionError          could not connect, or the connection dropped before a response
    │   ├── APITimeoutError
    │   └── CircuitOpenError        the server is down: failing fast for a cool-down
    ├── APIStatusError              the server answered with an error status
    │   ├── BadRequestError 400, AuthenticationError 401, PermissionDeniedError 403,
    │   ├── NotFoundError 404, ConflictError 409, UnprocessableEntityError 422,
    │   ├── RateLimitError 429, InternalServerError 5xx
    │   └──                     └── OverloadedError 529 / "overloaded"
    ├── ResponseError               a 2xx body we cannot understand
    │   └── OutputValidationError   structured output that is not JSON or misses its schema
    ├── RateLimitBackendError       the shared rate limit's Redis cannot be reached or failed
    ├── StreamError                 an error inside a stream, or a stream cut short
    ├── BudgetExceededError         a call would pass the client's budget (nothing was sent)
    ├── BatchItemError              a provider batch left one input without an answer
    ├── BatchNotReadyError          `batch_results()` of a provider batch that has not ended
    └── AllRoutesFailedError        every fallback route failed; also an instance of the last
                                    route's error class (`except RateLimitError` still works)

Messages name the provider, the status and the provider's own message; they never hold a key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AllRoutesFailedError",
    "AuthenticationError",
    "BadRequestError",
    "BatchItemError",
    "BatchNotReadyError",
    "BudgetExceededError",
    "CircuitOpenError",
    "ClientStateError",
    "ConfigError",
    "ConflictError",
    "InternalServerError",
    "LLMError",
    "NotFoundError",
    "OutputValidationError",
    "OverloadedError",
    "PermissionDeniedError",
    "RateLimitBackendError",
    "RateLimitError",
    "ResponseError",
    "StreamError",
    "UnprocessableEntityError",
]


class LLMError(Exception):
    """Base class of every error llmrelay raises."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(LLMError, ValueError):
    """Bad arguments, a missing key or an unknown provider; raised before anything is sent."""


class ClientStateError(LLMError, RuntimeError):
    """The client was used after it was closed, or from another event loop than its own."""


class APIConnectionError(LLMError):
    """The request could not be sent, or the connection broke before a full response."""

    def __init__(self, message: str, *, provider: str | None = None) -> None:
        super().__init__(message)
        self.provider = provider


class APITimeoutError(APIConnectionError):
    """A connect, read or total deadline ran out."""


class CircuitOpenError(APIConnectionError):
    """The circuit breaker is open: recent attempts could not connect or got 5xx in a row, so
    this call failed at once without being sent. `.retry_in` is the time (seconds) until a
    probe call is let through; the failure that opened the circuit is `__cause__`."""

    def __init__(self, message: str, *, provider: str | None = None, retry_in: float) -> None:
        super().__init__(message, provider=provider)
        self.retry_in = retry_in


class RateLimitBackendError(LLMError):
    """The Redis behind a shared `RateLimit` could not be reached, timed out or failed; nothing
    was sent (see `RateLimit(on_redis_error="local")` for a local fallback instead)."""


class APIStatusError(LLMError):
    """The server answered with an error status (or an error payload)."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        provider: str | None = None,
        request_id: str | None = None,
        body: Any = None,
        retry_after: float | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.headers = headers  # the response's headers (None for an error event in a stream)
        # The provider's own word on whether a retry can help, when its error body gives one
        # (e.g. a spend limit: no); the retry rules weigh it after `x-should-retry`.
        self.should_retry: bool | None = None
        self.provider = provider
        self.request_id = request_id
        self.body = body
        self.retry_after = retry_after
        self.code = code


class BadRequestError(APIStatusError):
    """400: the provider rejected the request."""


class AuthenticationError(APIStatusError):
    """401: the key is missing, wrong or revoked."""


class PermissionDeniedError(APIStatusError):
    """403: the key may not use this model or resource."""


class NotFoundError(APIStatusError):
    """404: unknown model, deployment or path."""


class ConflictError(APIStatusError):
    """409."""


class UnprocessableEntityError(APIStatusError):
    """422."""


class RateLimitError(APIStatusError):
    """429: slow down; `.retry_after` holds the server's wait when it sent one."""


class InternalServerError(APIStatusError):
    """5xx: the provider failed."""


class OverloadedError(InternalServerError):
    """529, or a provider's "overloaded" error."""


class ResponseError(LLMError):
    """A successful status with a body we cannot understand (bad JSON, missing fields)."""

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        request_id: str | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.request_id = request_id
        self.body = body


class OutputValidationError(ResponseError):
    """A reply asked for as structured output (``response_format=``) or tool-call arguments
    that are not JSON, or do not match their schema. `text` is the raw output and
    `validation_message` what is wrong with it (a refusal is not this error: see
    `ChatResponse.refusal`)."""

    def __init__(
        self,
        message: str,
        *,
        text: str,
        validation_message: str,
        provider: str | None = None,
        request_id: str | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message, provider=provider, request_id=request_id, body=body)
        self.text = text
        self.validation_message = validation_message


class StreamError(LLMError):
    """A stream failed after it started: an error event, a cut connection or a missing end.

    `.partial` holds the text received before the failure and `.retryable` says whether trying
    the whole call again may help. The typed cause (e.g. `OverloadedError`) is `__cause__`.
    """

    def __init__(
        self,
        message: str,
        *,
        partial: str = "",
        retryable: bool = False,
        provider: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.partial = partial
        self.retryable = retryable
        self.provider = provider
        self.request_id = request_id


class BudgetExceededError(LLMError):
    """The call would take the client past its `Budget`; it was not sent.

    `spent_usd` / `spent_tokens` are what the client had spent (replies received), `estimate_usd`
    / `estimate_tokens` the call's estimate, `limit` names the bound that stopped it
    (``"max_cost_usd"`` or ``"max_tokens"``). A `batch()` that meets it stops sending: every
    prompt not sent gets this error as its outcome; `results` (when raised from `batch()`
    without ``return_exceptions``) holds one outcome per input.
    """

    def __init__(
        self,
        message: str,
        *,
        limit: str = "",
        spent_usd: float | None = None,
        spent_tokens: int = 0,
        estimate_usd: float | None = None,
        estimate_tokens: int = 0,
    ) -> None:
        super().__init__(message)
        self.limit = limit
        self.spent_usd = spent_usd
        self.spent_tokens = spent_tokens
        self.estimate_usd = estimate_usd
        self.estimate_tokens = estimate_tokens
        self.results: list[Any] | None = None


class AllRoutesFailedError(LLMError):
    """Every route of a client with `fallbacks` failed (or a later route failed with an error
    a fallback cannot cure). The error raised is also an instance of the last route's error
    class, with its attributes (`status_code`, `retry_after`...), so ``except RateLimitError``
    and ``except APIConnectionError`` keep working; `errors` lists ``(route, error)`` for every
    route tried, in order, and `__cause__` is the last route's error.
    """

    errors: list[tuple[str, LLMError]]


class BatchItemError(LLMError):
    """One input of a provider batch that got no answer: `reason` is "expired" (the job's
    window ran out first), "cancelled", "failed" (the whole job was refused; the message says
    why) or "missing" (the provider's results leave it out). A request that ran and failed is
    the usual typed error instead (`BadRequestError`, `RateLimitError`...)."""

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        provider: str | None = None,
        batch_id: str | None = None,
        index: int | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.provider = provider
        self.batch_id = batch_id
        self.index = index  # the input's position in the prompts given to submit_batch()


class BatchNotReadyError(LLMError):
    """`batch_results()` was asked for a job that has not ended yet; `.job` is its state
    (wait with `wait_batch()`, or poll `get_batch()` until `job.done`)."""

    def __init__(self, message: str, *, job: Any = None) -> None:
        super().__init__(message)
        self.job = job


_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
    529: OverloadedError,
}


def status_error_class(status_code: int, code: str | None = None) -> type[APIStatusError]:
    """The error class for an HTTP status (and a provider's error code, for "overloaded")."""
    if code is not None and "overloaded" in code.lower():
        return OverloadedError
    cls = _STATUS_CLASSES.get(status_code)
    if cls is not None:
        return cls
    if status_code >= 500:
        return InternalServerError
    return APIStatusError


def make_status_error(
    status_code: int,
    provider_message: str,
    *,
    provider: str | None,
    request_id: str | None = None,
    body: Any = None,
    retry_after: float | None = None,
    code: str | None = None,
) -> APIStatusError:
    """Build the typed error for a status, with a message naming provider, status and cause."""
    cls = status_error_class(status_code, code)
    parts = [f"{provider or 'provider'} returned {status_code}"]
    if code:
        parts.append(f"({code})")
    text = " ".join(parts) + f": {provider_message or 'no message'}"
    if request_id:
        text += f" [request id {request_id}]"
    return cls(
        text,
        status_code=status_code,
        provider=provider,
        request_id=request_id,
        body=body,
        retry_after=retry_after,
        code=code,
    )
