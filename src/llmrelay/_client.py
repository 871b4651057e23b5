"""`AsyncClient`: the async core every other entry point (the sync `Client`, the CLI) uses."""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import AsyncGenerator, Mapping, Sequence
from contextlib import aclosing
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
import httpx

from . import _constants as C
from ._config import RateLimit, RetryPolicy, Timeout
from ._exceptions import ConfigError, LLMError
from ._pipeline import Pipeline
from ._request import ChatRequest, MessagesInput, build_params, estimate_tokens, normalize_messages
from ._types import ChatResponse, EmbeddingResponse, ModelInfo
from ._usage import Prices, UsageTotals
from .providers import Provider, get_provider

if TYPE_CHECKING:
    from ._stream import ChatStream


class ClientStateError(LLMError, RuntimeError):
    """The client was used after it was closed, or from another event loop than its own."""


def _loop_identity() -> object:
    # asyncio is looked up, not imported: if nothing imported it, we are not on its loop.
    asyncio = sys.modules.get("asyncio")
    if asyncio is not None:
        try:
            return asyncio.get_running_loop()
        except RuntimeError:
            pass
    import anyio.lowlevel  # another anyio backend (trio)

    return anyio.lowlevel.current_token().native_token


class AsyncClient:
    """An async client for one provider. Use it as an async context manager::

        async with llmrelay.AsyncClient(provider="openai") as client:
            reply = await client.chat("Hello", model="gpt-4o-mini")
            print(reply.text)

    The key is read from the preset's env var (e.g. `OPENAI_API_KEY`) when the client is built.
    Every call goes through the same pipeline: at most `max_concurrency` requests in flight, an
    optional `rate_limit`, and retries with jittered backoff that honour `Retry-After`.
    """

    def __init__(
        self,
        provider: str | Provider = "openai",
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        model: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        max_concurrency: int = C.DEFAULT_MAX_CONCURRENCY,
        rate_limit: RateLimit | None = None,
        headers: Mapping[str, str] | None = None,
        http_client: httpx.AsyncClient | None = None,
        prices: Prices | None = None,
    ) -> None:
        if os.environ.get("LLMRELAY_LOG"):
            from ._logging import configure_from_env

            configure_from_env()
        self.provider = provider if isinstance(provider, Provider) else _preset(provider)
        p = self.provider
        self.model = model or p.default_model
        self.timeout = Timeout.coerce(timeout)
        if retry is not None and max_retries is not None:
            raise ConfigError("give either max_retries or retry, not both")
        self.retry = retry or RetryPolicy(
            max_retries=C.DEFAULT_MAX_RETRIES if max_retries is None else max_retries
        )
        if (
            isinstance(max_concurrency, bool)
            or not isinstance(max_concurrency, int)
            or max_concurrency < 1
        ):
            raise ConfigError(f"max_concurrency must be a positive int, got {max_concurrency!r}")
        self.max_concurrency = max_concurrency
        key = api_key if api_key is not None else _first_env(p.api_key_env)
        if p.key_required and not key:
            where = " or ".join(p.api_key_env) or "api_key="
            raise ConfigError(
                f"no API key for provider {p.name!r}: set {where} in the environment "
                f"or pass api_key=... (provider='mock' needs no key)"
            )
        self.base_url = base_url or _first_env(p.base_url_env) or p.base_url
        if not self.base_url:
            where = " or ".join(p.base_url_env) or "base_url="
            raise ConfigError(
                f"no base URL for provider {p.name!r}: set {where} in the environment "
                f"or pass base_url=..."
            )
        if self.base_url != p.base_url:  # adapters read the URL their paths are joined to
            self.provider = p = dataclasses.replace(p, base_url=self.base_url)
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"base_url must start with http:// or https://, got {self.base_url!r}"
            )
        all_headers = {"user-agent": "llmrelay/0.1", "accept-encoding": "gzip, deflate"}
        all_headers.update(p.default_headers)
        all_headers.update(p.adapter.auth_headers(p, key))
        if headers:
            all_headers.update(headers)
        self._owns_http = http_client is None
        own_transport = None
        if http_client is None and p.transport_factory is None and _env_proxy_for(self.base_url):
            http_client = _proxied_http_client(max_concurrency)
        elif http_client is None:
            own_transport = _default_transport(p)
            http_client = httpx.AsyncClient(transport=own_transport, follow_redirects=False)
        self._http = http_client
        self._usage = UsageTotals(prices)
        self._pipeline = Pipeline(
            http=self._http,
            # Requests go straight to our transport; through httpx's send() when there is none
            # (a given client, or env proxies: send() picks httpx's proxy transport per URL).
            transport=own_transport,
            provider=p,
            base_url=self.base_url,
            headers=all_headers,
            api_key=key,
            max_concurrency=max_concurrency,
            rate_limit=rate_limit,
            usage=self._usage,
        )
        self._closed = False
        self._loop: object | None = None
        self._retry_overrides: dict[int, RetryPolicy] = {}

    @classmethod
    def from_profile(cls, name: str | None = None, **overrides: Any) -> AsyncClient:
        """A client from profile `name` of ``llmrelay.toml`` (default: its ``default_profile``).
        Precedence: `overrides` > environment > the file > defaults."""
        from ._profiles import client_kwargs_from_profile

        return cls(**client_kwargs_from_profile(name, **overrides))

    def __repr__(self) -> str:
        return (
            f"AsyncClient(provider={self.provider.name!r}, base_url={self.base_url!r}, "
            f"model={self.model!r})"
        )

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> AsyncClient:
        self._check()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections this client opened (a passed-in `http_client` stays open)."""
        if self._closed:
            return
        self._closed = True
        if self._owns_http:
            with anyio.CancelScope(shield=True):
                await self._http.aclose()

    def _check(self) -> None:
        if self._closed:
            raise ClientStateError("this AsyncClient is closed; create a new one")
        loop = _loop_identity()
        if self._loop is None:
            self._loop = loop
        elif loop is not self._loop:
            raise ClientStateError(
                "this AsyncClient belongs to another event loop; create one client per loop "
                "(or use llmrelay.Client from sync code)"
            )

    @property
    def usage(self) -> UsageTotals:
        """Running totals: requests, failures, retries, tokens, and cost by model."""
        return self._usage

    # -- helpers -----------------------------------------------------------------------------

    def _model(self, model: str | None) -> str:
        chosen = model or self.model
        if not chosen:
            raise ConfigError(
                f"no model given: pass model=... to the call or to AsyncClient(...) "
                f"(provider {self.provider.name!r} has no default model)"
            )
        return chosen

    def _retry_policy(self, max_retries: int | None) -> RetryPolicy:
        if max_retries is None:
            return self.retry
        policy = self._retry_overrides.get(max_retries)
        if policy is None:
            policy = dataclasses.replace(self.retry, max_retries=max_retries)
            self._retry_overrides[max_retries] = policy
        return policy

    def _scrub_error(self, error: LLMError) -> None:
        """Adapters quote the server (e.g. an error payload in a 200 body), which may echo the
        key; they do not know it, so mask it here before the error reaches the caller."""
        scrub = self._pipeline._scrub
        error.message = scrub(error.message)
        error.args = tuple(scrub(a) if isinstance(a, str) else a for a in error.args)

    def _timeout(self, timeout: Timeout | float | None) -> Timeout:
        return self.timeout if timeout is None else Timeout.coerce(timeout)

    def _chat_request(
        self,
        messages: MessagesInput,
        model: str | None,
        params: dict[str, Any],
        extra_body: Mapping[str, Any] | None,
        extra_headers: Mapping[str, str] | None,
        stream: bool,
    ) -> ChatRequest:
        return ChatRequest(
            model=self._model(model),
            messages=normalize_messages(messages),
            params=params,
            extra_body=extra_body,
            extra_headers=extra_headers,
            stream=stream,
        )

    # -- calls -------------------------------------------------------------------------------

    async def chat(
        self,
        messages: MessagesInput,
        *,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        top_p: float | None = None,
        stop: str | Sequence[str] | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: Any = None,
        response_format: Any = None,
        seed: int | None = None,
        extra_body: Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | None = None,
    ) -> ChatResponse:
        """Send a conversation (or one user prompt as a str) and return the complete reply."""
        self._check()
        params = build_params(
            temperature=temperature,
            max_tokens=max_tokens,
            top_p=top_p,
            stop=stop,
            tools=tools,
            tool_choice=tool_choice,
            response_format=response_format,
            seed=seed,
        )
        request = self._chat_request(messages, model, params, extra_body, extra_headers, False)
        p = self.provider
        wire = p.adapter.build_chat(p, request)
        estimated = estimate_tokens(request.messages, C.CHARS_PER_TOKEN_ESTIMATE) + (
            max_tokens or 0
        )
        data, request_id = await self._pipeline.request_json(
            wire,
            timeout=self._timeout(timeout),
            retry=self._retry_policy(max_retries),
            extra_headers=extra_headers,
            estimated_tokens=estimated,
        )
        try:
            reply = p.adapter.parse_chat(p, data, request_id)
        except LLMError as exc:
            self._scrub_error(exc)
            raise
        self._usage.record(reply.model or request.model, reply.usage)
        self._pipeline.settle_tokens(estimated, reply.usage)
        return reply

    def stream(
        self,
        messages: MessagesInput,
        *,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        top_p: float | None = None,
        stop: str | Sequence[str] | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: Any = None,
        response_format: Any = None,
        seed: int | None = None,
        extra_body: Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | None = None,
        on_text: Any = None,
        on_chunk: Any = None,
        on_complete: Any = None,
        on_error: Any = None,
    ) -> ChatStream:
        """Stream a reply as `StreamChunk`s. Iterate it, or use it as an async context manager::

            async with client.stream("Tell me a story") as stream:
                async for chunk in stream:
                    print(chunk.text, end="")
                reply = await stream.final()

        Arguments are checked now; the request is sent on the first iteration.
        """
        from ._stream import ChatStream  # loaded on first use, to keep `import llmrelay` quick

        self._check()
        params = build_params(
            temperature=temperature,
            max_tokens=max_tokens,
            top_p=top_p,
            stop=stop,
            tools=tools,
            tool_choice=tool_choice,
            response_format=response_format,
            seed=seed,
        )
        request = self._chat_request(messages, model, params, extra_body, extra_headers, True)
        return ChatStream(
            pipeline=self._pipeline,
            provider=self.provider,
            request=request,
            timeout=self._timeout(timeout),
            retry=self._retry_policy(max_retries),
            estimated_tokens=estimate_tokens(request.messages, C.CHARS_PER_TOKEN_ESTIMATE)
            + (max_tokens or 0),
            on_text=on_text,
            on_chunk=on_chunk,
            on_complete=on_complete,
            on_error=on_error,
        )

    async def batch(
        self,
        prompts: Sequence[MessagesInput],
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[Any]:
        """`chat()` for each prompt, concurrently; results in input order.

        With `return_exceptions=True` a failed prompt's slot holds its typed error, so there is
        exactly one outcome per input. Otherwise the first error cancels the rest and is raised.
        """
        from ._batch import run_batch

        self._check()
        return await run_batch(
            self.chat,
            prompts,
            kwargs,
            return_exceptions=return_exceptions,
            workers=self.max_concurrency * 2,
        )

    async def as_completed(
        self, prompts: Sequence[MessagesInput], **kwargs: Any
    ) -> AsyncGenerator[tuple[int, ChatResponse | LLMError], None]:
        """Yield `(index, reply or typed error)` as each prompt finishes. Consume it fully, or
        wrap it in `contextlib.aclosing(...)` when you may stop early."""
        from ._batch import run_as_completed

        self._check()
        # Closed explicitly: left to the garbage collector, the inner generator would be
        # finalised in another task, and its task group (with workers still running) with it.
        async with aclosing(
            run_as_completed(self.chat, prompts, kwargs, workers=self.max_concurrency * 2)
        ) as items:
            async for item in items:
                yield item

    async def embed(
        self,
        inputs: str | Sequence[str],
        *,
        model: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | None = None,
    ) -> EmbeddingResponse:
        """Embed one text or a list of texts; `.vectors` keeps the input order."""
        self._check()
        texts = [inputs] if isinstance(inputs, str) else list(inputs)
        if not texts or not all(isinstance(t, str) for t in texts):
            raise ConfigError("embed() takes a string or a non-empty list of strings")
        p = self.provider
        chosen = self._model(model)
        wire = p.adapter.build_embed(p, chosen, texts, extra_body)
        data, request_id = await self._pipeline.request_json(
            wire,
            timeout=self._timeout(timeout),
            retry=self._retry_policy(max_retries),
            extra_headers=extra_headers,
            estimated_tokens=sum(len(t) for t in texts) // C.CHARS_PER_TOKEN_ESTIMATE + 1,
        )
        try:
            result = p.adapter.parse_embed(p, data, request_id)
        except LLMError as exc:
            self._scrub_error(exc)
            raise
        self._usage.record(result.model or chosen, result.usage)
        return result

    async def models(self, *, timeout: Timeout | float | None = None) -> list[ModelInfo]:
        """The provider's model list."""
        self._check()
        p = self.provider
        data, _ = await self._pipeline.request_json(
            p.adapter.build_models(p), timeout=self._timeout(timeout), retry=self.retry
        )
        try:
            return p.adapter.parse_models(p, data)
        except LLMError as exc:
            self._scrub_error(exc)
            raise


def _preset(name: str) -> Provider:
    if not isinstance(name, str):
        raise ConfigError(f"provider must be a preset name or a Provider, got {name!r}")
    return get_provider(name)


def _first_env(names: Sequence[str]) -> str | None:
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


def _env_proxy_for(base_url: str) -> bool:
    """Whether HTTP(S)_PROXY or ALL_PROXY (either case) names a proxy for `base_url` that
    NO_PROXY does not exempt. urllib reads them as httpx does; otherwise our own pool is used."""
    from urllib.request import getproxies, proxy_bypass

    proxies = getproxies()
    url = httpx.URL(base_url)
    if not (proxies.get(url.scheme) or proxies.get("all")):
        return False
    return not proxy_bypass(f"{url.host}:{url.port}" if url.port else url.host)


def _proxied_http_client(max_concurrency: int) -> httpx.AsyncClient:
    """httpx's own pools, which mount the env proxies: it ignores them when given a transport.
    Like our pool, it never makes a request wait for a connection (the semaphore bounds them)."""
    from ._transport import default_ssl_context

    limits = httpx.Limits(
        max_connections=None,
        max_keepalive_connections=max_concurrency,
        keepalive_expiry=C.KEEPALIVE_EXPIRY,
    )
    # httpx builds the proxy transports here: a SOCKS proxy without socksio installed, or an
    # unknown scheme, fails now (its messages hide a password in the URL).
    try:
        return httpx.AsyncClient(
            trust_env=True, verify=default_ssl_context(), limits=limits, follow_redirects=False
        )
    except (ImportError, ValueError, httpx.InvalidURL) as exc:
        raise ConfigError(f"the proxy set in the environment cannot be used: {exc}") from exc


def _default_transport(provider: Provider) -> httpx.AsyncBaseTransport:
    from ._transport import SlotTransport

    return provider.transport_factory() if provider.transport_factory else SlotTransport()
