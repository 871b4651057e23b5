"""One road for every request: concurrency slot → rate limit → send, inside a retry loop with
a deadline, backoff and Retry-After.

The pipeline knows HTTP and JSON, never a provider's wire format: it asks the adapter to read
error bodies. Time is read from the event loop (`anyio.current_time`), so tests can run it on
a fake clock.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import anyio
import httpx

from ._config import RateLimit, RetryPolicy, Timeout
from ._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    LLMError,
    ResponseError,
    make_status_error,
)
from ._request import WireRequest
from ._transport import httpx_timeout, mapped_transport_errors
from ._types import Usage
from ._usage import UsageTotals
from .providers._base import Provider

if TYPE_CHECKING:
    from ._limits import RateLimiter

logger = logging.getLogger("llmrelay")


class OpenStream:
    """A streaming response that holds a concurrency slot until `aclose()`."""

    __slots__ = ("_release", "deadline", "request_id", "response")

    def __init__(
        self,
        response: httpx.Response,
        request_id: str | None,
        deadline: float | None,
        release: Callable[[], None],
    ) -> None:
        self.response = response
        self.request_id = request_id
        self.deadline = deadline
        self._release: Callable[[], None] | None = release

    async def aclose(self) -> None:
        try:
            with anyio.CancelScope(shield=True):
                await self.response.aclose()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()


class _AttemptFailed(Exception):
    """Internal: one attempt failed in a way the retry rules should judge."""

    def __init__(
        self,
        error: LLMError,
        status_code: int | None,
        headers: Mapping[str, str] | None,
        hint: float | None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(str(error))
        self.error = error
        self.status_code = status_code
        self.headers = headers
        self.hint = hint
        self.retryable = retryable


class Pipeline:
    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        transport: httpx.AsyncBaseTransport | None = None,
        provider: Provider,
        base_url: str,
        headers: dict[str, str],
        api_key: str | None,
        max_concurrency: int,
        rate_limit: RateLimit | None,
        usage: UsageTotals,
    ) -> None:
        self._http = http
        # With a transport of our own, requests skip httpx.AsyncClient.send (auth flows,
        # redirects, cookie jars, event hooks: none of which an API call here uses) and go
        # straight to it. A user's http_client keeps its full behaviour.
        self._transport = transport
        self._provider = provider
        self._name = provider.name
        self._base = base_url.rstrip("/") + "/"
        # Header names are case-insensitive: keep them lowercase so a caller's "Authorization"
        # or "Idempotency-Key" replaces ours instead of being sent next to it.
        self._headers = {k.lower(): v for k, v in headers.items()}
        self._api_key = api_key
        self._key_bytes = api_key.encode() if api_key else None
        self._semaphore = anyio.Semaphore(max_concurrency)
        self._limiter: RateLimiter | None = None
        if rate_limit is not None:
            from ._limits import RateLimiter

            self._limiter = RateLimiter(rate_limit, clock=anyio.current_time, sleep=anyio.sleep)
        self._request_id_header = provider.adapter.request_id_header
        self._rand = random.Random()
        self.usage = usage

    def settle_tokens(self, estimated: int, usage: Usage | None) -> None:
        """Correct the token budget with the count a reply reports (the estimate was a guess)."""
        if self._limiter is not None and usage is not None and usage.total_tokens:
            self._limiter.refund(estimated, usage.total_tokens)

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self._base + path

    def _scrub(self, text: str) -> str:
        key = self._api_key
        return text.replace(key, "***") if key and key in text else text

    def _scrub_bytes(self, content: bytes) -> bytes:
        """Mask the key in a raw body before anything cuts it short (a cut could split it)."""
        key = self._key_bytes
        return content.replace(key, b"***") if key and key in content else content

    def _build(
        self, wire: WireRequest, timeout: Timeout, extra_headers: Mapping[str, str] | None
    ) -> httpx.Request:
        headers = dict(self._headers)
        if wire.headers:
            headers.update({k.lower(): v for k, v in wire.headers.items()})
        if extra_headers:
            headers.update({k.lower(): v for k, v in extra_headers.items()})
        if wire.method != "GET":
            # The same key on every attempt lets the server drop duplicates of a retried call.
            headers.setdefault("idempotency-key", os.urandom(16).hex())
        if self._transport is None:
            return self._http.build_request(
                wire.method,
                self.url(wire.path),
                json=wire.json,
                params=wire.params,
                headers=headers,
                timeout=httpx_timeout(timeout),
            )
        content = None
        if wire.json is not None:
            content = json.dumps(wire.json, ensure_ascii=False, separators=(",", ":")).encode()
            headers["content-type"] = "application/json"
        return httpx.Request(
            wire.method,
            self.url(wire.path),
            params=wire.params,
            headers=headers,
            content=content,
            extensions={"timeout": httpx_timeout(timeout).as_dict()},  # read by httpcore
        )

    async def request_json(
        self,
        wire: WireRequest,
        *,
        timeout: Timeout,
        retry: RetryPolicy,
        extra_headers: Mapping[str, str] | None = None,
        estimated_tokens: int = 1,
    ) -> tuple[Any, str | None]:
        """Send and return (parsed JSON body, request id)."""
        request = self._build(wire, timeout, extra_headers)
        response = await self._with_retries(request, timeout, retry, estimated_tokens, stream=False)
        assert isinstance(response, tuple)
        return response

    async def open_stream(
        self,
        wire: WireRequest,
        *,
        timeout: Timeout,
        retry: RetryPolicy,
        extra_headers: Mapping[str, str] | None = None,
        estimated_tokens: int = 1,
        prime: Callable[[OpenStream], Awaitable[None]] | None = None,
    ) -> OpenStream:
        """Send and return the open response once its status is OK and `prime` (which reads
        up to the first chunk) succeeded: failures up to then are retried."""
        request = self._build(wire, timeout, extra_headers)
        opened = await self._with_retries(
            request, timeout, retry, estimated_tokens, stream=True, prime=prime
        )
        assert isinstance(opened, OpenStream)
        return opened

    async def _with_retries(
        self,
        request: httpx.Request,
        timeout: Timeout,
        retry: RetryPolicy,
        tokens: int,
        *,
        stream: bool,
        prime: Callable[[OpenStream], Awaitable[None]] | None = None,
    ) -> tuple[Any, str | None] | OpenStream:
        deadline = anyio.current_time() + timeout.total if timeout.total is not None else None
        retries = 0
        while True:
            remaining = None if deadline is None else deadline - anyio.current_time()
            try:
                result = await self._attempt(request, tokens, remaining, deadline, stream, retries)
                if prime is not None and isinstance(result, OpenStream):
                    await self._prime(result, prime)
                return result
            except _AttemptFailed as failed:
                from ._retry import decide  # only failures need the retry rules

                remaining = None if deadline is None else deadline - anyio.current_time()
                decision = decide(
                    policy=retry,
                    retries_done=retries,
                    status_code=failed.status_code,
                    headers=failed.headers,
                    remaining=remaining,
                    rand=self._rand.random(),
                    now_epoch=time.time(),
                    retry_after_hint=failed.hint,
                    retryable_hint=failed.retryable,
                )
                error = failed.error
                if isinstance(error, APIStatusError) and decision.retry_after is not None:
                    error.retry_after = decision.retry_after
                if not decision.retry:
                    self.usage.failures += 1
                    if logger.isEnabledFor(logging.INFO):
                        logger.info(
                            "giving up on %s %s after %d retries: %s",
                            request.method,
                            request.url.path,
                            retries,
                            decision.reason,
                        )
                    # Raised from outside this handler: the internal _AttemptFailed (whose
                    # cause is `error` itself) must not become its context, a cycle.
                    final_error = error
                    break
                if logger.isEnabledFor(logging.INFO):
                    logger.info(
                        "retrying %s %s after %s: %s",
                        request.method,
                        request.url.path,
                        type(error).__name__,
                        decision.reason,
                    )
                self.usage.retries += 1
                retries += 1
                await anyio.sleep(decision.delay)
        raise final_error from final_error.__cause__

    async def _attempt(
        self,
        request: httpx.Request,
        tokens: int,
        remaining: float | None,
        deadline: float | None,
        stream: bool,
        attempt: int,
    ) -> tuple[Any, str | None] | OpenStream:
        if remaining is not None and remaining <= 0:
            self.usage.failures += 1
            raise APITimeoutError(f"{self._name}: the total timeout ran out", provider=self._name)
        acquired = handed_off = False
        try:
            # The deadline also covers waiting for a concurrency slot and the rate limiter.
            with anyio.fail_after(remaining) if remaining is not None else _NO_SCOPE:
                await self._semaphore.acquire()
                acquired = True
                if self._limiter is not None:
                    await self._limiter.acquire(tokens)
                started = time.perf_counter()
                try:
                    with mapped_transport_errors(self._name):
                        if self._transport is not None:
                            response = await self._transport.handle_async_request(request)
                            response.request = request
                        else:
                            response = await self._http.send(request, stream=True)
                        try:
                            status = response.status_code
                            if status >= 400 or not stream:
                                content = await response.aread()
                        except BaseException:
                            with anyio.CancelScope(shield=True):
                                await response.aclose()
                            raise
                except LLMError as exc:  # connection problems and timeouts: retryable
                    if logger.isEnabledFor(logging.DEBUG):
                        logger.debug(
                            "%s %s -> %s in %.3fs (attempt %d, no response)",
                            request.method,
                            request.url.path,
                            type(exc).__name__,
                            time.perf_counter() - started,
                            attempt + 1,
                        )
                    raise _AttemptFailed(exc, None, None, None) from exc
            request_id = response.headers.get(self._request_id_header)
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug(
                    "%s %s -> %d in %.3fs (attempt %d, request id %s)",
                    request.method,
                    request.url.path,
                    status,
                    time.perf_counter() - started,
                    attempt + 1,
                    request_id,
                )
            if status >= 400:
                raise self._status_failure(response, content, request_id)
            if stream:
                handed_off = True
                return OpenStream(response, request_id, deadline, self._semaphore.release)
            try:
                return json.loads(content), request_id
            except ValueError:
                raise ResponseError(
                    f"{self._name} returned status {status} with a body that is not JSON: "
                    f"{self._scrub_bytes(content)[:200].decode('utf-8', 'replace')!r}",
                    provider=self._name,
                    request_id=request_id,
                ) from None
        except TimeoutError:
            self.usage.failures += 1
            raise APITimeoutError(
                f"{self._name}: the total timeout ran out", provider=self._name
            ) from None
        finally:
            if acquired and not handed_off:
                self._semaphore.release()

    async def _prime(
        self, opened: OpenStream, prime: Callable[[OpenStream], Awaitable[None]]
    ) -> None:
        """Run a stream's first read inside the retry loop. Connection trouble and error
        events are judged like a failed request; anything else (an unreadable event) is not."""
        try:
            await prime(opened)
        except (APIConnectionError, APIStatusError) as exc:
            await opened.aclose()
            if isinstance(exc, APIStatusError):
                raise _AttemptFailed(exc, exc.status_code, None, exc.retry_after) from exc
            raise _AttemptFailed(exc, None, None, None) from exc
        except BaseException:
            await opened.aclose()
            raise

    def _status_failure(
        self, response: httpx.Response, content: bytes, request_id: str | None
    ) -> _AttemptFailed:
        content = self._scrub_bytes(content)
        try:
            body: Any = json.loads(content) if content else None
        except ValueError:
            body = content.decode("utf-8", "replace")[:2000]
        info = self._provider.adapter.parse_error(self._provider, response.status_code, body)
        error = make_status_error(
            info.status_code or response.status_code,
            self._scrub(info.message),
            provider=self._name,
            request_id=request_id or info.request_id,
            body=body,
            retry_after=info.retry_after,
            code=info.code,
        )
        return _AttemptFailed(
            error, response.status_code, response.headers, info.retry_after, info.retryable
        )


class _NoScope:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_NO_SCOPE = _NoScope()
