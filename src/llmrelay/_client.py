"""`AsyncClient`: the async core every other entry point (the sync `Client`, the CLI) uses."""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from contextlib import aclosing
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio

from . import _constants as C
from ._callkey import new_key
from ._config import DEFAULT_BREAKER, CircuitBreaker, RateLimit, RetryPolicy, Timeout
from ._exceptions import ClientStateError, ConfigError, LLMError, ResponseError
from ._keymask import KeyMask
from ._request import (
    ChatRequest,
    MessagesInput,
    WireRequest,
    build_params,
    encode_body,
    estimate_tokens,
    normalize_messages,
)
from ._types import ChatResponse, EmbeddingResponse, ModelInfo, StreamChunk
from ._usage import Prices, UsageTotals
from .providers import Provider
from .senders._engines import Sender, build_engine_sender
from .senders._httpx import build_sender
from .stages._base import Call
from .stages._breaker import Breaker
from .stages._compose import build_chain, wrap_chain

if TYPE_CHECKING:
    import ssl
    from typing import Literal, Unpack  # Unpack in 3.11's typing: checkers apply PEP 692

    import httpx

    from ._batch import ChatOptions
    from ._batch_job import BatchJob
    from ._hooks import Hooks
    from ._routes import Budget, Route
    from ._settings import ClientConfig
    from ._stream import ChatStream
    from ._structured import OutputSpec
    from .providers._base import StreamParser
    from .stages._base import Stage

__all__ = ["AsyncClient", "ClientStateError"]


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


def _with_api(config: ClientConfig, api: str | None) -> ClientConfig:
    """`config` with its provider speaking `api`: ``"chat"`` (Chat Completions, the default)
    or ``"responses"`` (OpenAI's Responses API, `providers.openai_responses`)."""
    if api is None or api == "chat":
        return config
    if api != "responses":
        raise ConfigError(f"api must be 'chat' or 'responses', got {api!r}")
    from .providers.openai_responses import with_responses_api

    return dataclasses.replace(config, provider=with_responses_api(config.provider))


def _chat_params(response_format: Any, **sampling: Any) -> tuple[dict[str, Any], OutputSpec | None]:
    """A chat's checked parameters, and the spec its reply is parsed with when
    `response_format` is a type or schema (what is sent for it goes in the parameters)."""
    output = None
    if response_format is not None:
        from ._structured import split_response_format

        output, response_format = split_response_format(response_format)
    return build_params(response_format=response_format, **sampling), output


class AsyncClient:
    """An async client for one provider. Use it as an async context manager::

        async with llmrelay.AsyncClient(provider="openai") as client:
            reply = await client.chat("Hello", model="gpt-4o-mini")
            print(reply.text)

    The key is read from the preset's env var (e.g. `OPENAI_API_KEY`) when the client is built.
    Every call goes through the same pipeline: at most `max_concurrency` requests in flight, an
    optional `rate_limit`, and retries with jittered backoff that honour `Retry-After`. A
    `circuit_breaker` (on by default; `None` turns it off) makes calls fail fast with
    `CircuitOpenError` while the server is down; `client.breaker` shows its state.
    ``api="responses"`` speaks OpenAI's Responses API (``/v1/responses``) instead of Chat
    Completions, with the same types (see docs/guides/responses-api.md).
    TLS certificates are checked against `verify`: certifi's bundle (or ``SSL_CERT_FILE`` /
    ``SSL_CERT_DIR``), ``"system"`` (the OS trust store, ``llmrelay[truststore]``), a CA bundle
    path, your own `ssl.SSLContext`, or `False` (no checks: anyone on the path can read along).
    `hooks` (`llmrelay.Hooks`, or a list of them) are told when each call starts, is retried,
    and ends.
    """

    _chain: Stage  # the stage chain every request goes down (`_build_chain`)

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
        verify: bool | Literal["system"] | str | os.PathLike[str] | ssl.SSLContext | None = None,
        api: Literal["chat", "responses"] | None = None,
        fallbacks: Sequence[Route] | None = None,
        budget: Budget | None = None,
        circuit_breaker: CircuitBreaker | None = DEFAULT_BREAKER,
        hooks: Hooks | Sequence[Hooks] | None = None,
        http: Literal["httpx", "aiohttp", "reqwest"] | None = None,
    ) -> None:
        # Loaded with the first client, so that `import llmrelay` stays quick.
        from ._settings import resolve_config

        self._setup(
            _with_api(
                resolve_config(
                    provider,
                    api_key=api_key,
                    base_url=base_url,
                    model=model,
                    timeout=timeout,
                    max_retries=max_retries,
                    retry=retry,
                    max_concurrency=max_concurrency,
                    rate_limit=rate_limit,
                    headers=headers,
                    prices=prices,
                    verify=verify,
                    fallbacks=fallbacks,
                    budget=budget,
                    circuit_breaker=circuit_breaker,
                    http=http,
                ),
                api,
            ),
            http_client,
            hooks,
        )

    @classmethod
    def from_profile(cls, name: str | None = None, **overrides: Any) -> AsyncClient:
        """A client from profile `name` of ``llmrelay.toml`` or ``llmrelay.yaml`` (default:
        ``$LLMRELAY_PROFILE``, then the file's ``default_profile``). Precedence: `overrides`
        (any `AsyncClient` argument) > environment (``LLMRELAY_PROVIDER``, ``LLMRELAY_MODEL``,
        the preset's key and URL variables) > the profile > the preset's defaults.
        ``config_path=`` names the file (TOML, or YAML by a ``.yaml``/``.yml`` name)::

            client = llmrelay.AsyncClient.from_profile("work", model="gpt-4o")
            client = llmrelay.AsyncClient.from_profile(config_path="config.yaml")
        """
        from ._settings import resolve_profile_config

        http_client = overrides.pop("http_client", None)
        api = overrides.pop("api", None)
        hooks = overrides.pop("hooks", None)
        return cls._from_config(
            _with_api(resolve_profile_config(name, **overrides), api), http_client, hooks
        )

    @classmethod
    def _from_config(
        cls,
        config: ClientConfig,
        http_client: httpx.AsyncClient | None = None,
        hooks: Hooks | Sequence[Hooks] | None = None,
    ) -> AsyncClient:
        """A client for settings resolved already (by `from_profile` or the CLI)."""
        client = cls.__new__(cls)
        client._setup(config, http_client, hooks)
        return client

    def _setup(
        self,
        config: ClientConfig,
        http_client: httpx.AsyncClient | None,
        hooks: Hooks | Sequence[Hooks] | None = None,
    ) -> None:
        """Build the client from its resolved settings: `__init__` and `_from_config` meet here,
        and nothing below reads anything but `config`."""
        if http_client is not None:
            import httpx

            if not isinstance(http_client, httpx.AsyncClient):
                raise ConfigError(
                    f"http_client must be an httpx.AsyncClient, got {type(http_client).__name__}"
                )
        if os.environ.get("LLMRELAY_LOG"):
            from ._logging import configure_from_env

            configure_from_env()
        self._config = config
        self.provider = p = config.provider
        self.model = config.model
        self.timeout = config.timeout
        self.retry = config.retry
        self.max_concurrency = config.max_concurrency
        self.base_url = config.base_url
        self._headers = dict(config.headers)  # lowercase names: a caller's replace ours
        self._base = config.base_url.rstrip("/") + "/"
        self._urls: dict[str, str] = {}  # full URL by path (see `_call`)
        self._route_clients = [
            AsyncClient(route.provider, model=route.model, **route.options)
            for route in config.fallbacks
        ]
        prices: dict[str, Any] = {}
        for route_client in self._route_clients:  # each route's own prices count here too
            prices.update(route_client._config.prices)
        self._usage = UsageTotals({**prices, **config.prices})
        for route_client in self._route_clients:  # one price table for every route's totals
            route_client._usage.table = self._usage.table
        self._mask = KeyMask(*config.secrets)  # the key, credential headers, URL password
        if http_client is not None and config.sources.get("verify") == "argument":
            raise ConfigError(
                "verify= is for llmrelay's own connections: set it on your http_client"
            )
        self._sender: Sender
        if config.http != "httpx" and http_client is None and p.transport_factory is None:
            self._sender = build_engine_sender(config, self._mask)  # imports the extra now
        else:
            if (
                http_client is not None
                and config.http != "httpx"
                and config.sources.get("http") == "argument"
            ):
                raise ConfigError(f"http={config.http!r} cannot send through your http_client")
            self._sender = self._httpx_sender(config, http_client)
        self._routes: list[Any] = []  # RouteEntry, with fallbacks
        self.breaker = (  # fallbacks may skip a client whose breaker is open (`breaker.is_open`)
            None
            if config.circuit_breaker is None
            else Breaker(config.circuit_breaker, provider=p.name)
        )
        from ._hooks import (  # first client: `import llmrelay` stays quick
            coerce_hooks,
            global_hooks,
        )

        self._hooks: tuple[Hooks, ...] = (*global_hooks(), *coerce_hooks(hooks))
        for route_client in self._route_clients:
            # A route is a part of this client: its calls are this client's, told to this
            # client's hooks once (not again by the route's own copy of the global hooks).
            route_client._hooks = ()
            route_client._chain = route_client._build_chain()
        self._chain = self._build_chain()
        adapter = p.adapter  # a plugin's adapter may leave out what it does not support
        self._parse_chat: Callable[[Any, str | None], Any] = lambda data, request_id: (
            adapter.parse_chat(p, data, request_id)
        )
        self._closed = False
        self._loop: object | None = None
        self._retry_overrides: dict[int, RetryPolicy] = {}

    def _httpx_sender(self, config: ClientConfig, http_client: httpx.AsyncClient | None) -> Sender:
        return build_sender(
            provider=config.provider,
            http_client=http_client,
            proxy=config.proxy,
            max_concurrency=config.max_concurrency,
            mask=self._mask,
            verify=config.verify,
        )

    def _build_chain(self) -> Stage:
        config = self._config
        self._closers: list[Callable[[], Awaitable[None]]] = []
        # With fallbacks the primary is one route among others, with totals of its own;
        # `self._usage` then sums every route's replies.
        usage = (
            UsageTotals(config.prices, table=self._usage.table) if config.fallbacks else self._usage
        )
        chain = build_chain(
            self._sender,
            provider=self.provider,
            mask=self._mask,
            usage=usage,
            max_concurrency=self.max_concurrency,
            rate_limit=config.rate_limit,
            breaker=self.breaker,
            closers=self._closers,
        )
        if not config.fallbacks and config.budget is None:
            return self._with_hooks(chain)
        routes = None
        if config.fallbacks:
            from .stages._fallback import RouteEntry

            labels: list[str] = []
            routes = []
            for client, primary in [(self, True)] + [(c, False) for c in self._route_clients]:
                label = f"{client.provider.name}:{client.model or '(asked model)'}"
                if label in labels:  # the same provider and model twice (two keys, two URLs)
                    label += f"#{labels.count(label) + 1}"
                labels.append(label)
                routes.append(
                    RouteEntry(
                        client,
                        label,
                        chain=chain if primary else client._chain,
                        usage=usage if primary else client._usage,
                        primary=primary,
                    )
                )
        self._routes = routes or []
        return self._with_hooks(
            wrap_chain(
                chain,
                usage=self._usage,
                table=self._usage.table,
                routes=routes,
                budget=config.budget,
            )
        )

    def _with_hooks(self, chain: Stage) -> Stage:
        if not self._hooks:
            return chain  # no hooks, no hooks stage: nothing to pay per call
        from .stages._compose import with_hooks

        return with_hooks(chain, self._hooks, provider=self.provider, mask=self._mask)

    def _add_hooks(self, *hooks: Hooks) -> None:
        """Tell `hooks` about this client's calls from now on (`llmrelay.instrument(client)`,
        the CLI's batch summary); calls in flight keep their slots."""
        from .stages._compose import with_hooks

        self._chain = with_hooks(self._chain, hooks, provider=self.provider, mask=self._mask)

    def __repr__(self) -> str:
        from ._logging import redact_url  # a base URL may carry user:password@

        return (
            f"AsyncClient(provider={self.provider.name!r}, "
            f"base_url={redact_url(self.base_url)!r}, model={self.model!r})"
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
        if self._loop is not None and _loop_identity() is not self._loop:
            # Its connections belong to the other loop: closing them here would fail half-way
            # and leave sockets open.
            raise ClientStateError(
                "this AsyncClient belongs to another event loop; close it from that loop"
            )
        self._closed = True
        # Every closer runs even when one before it fails (a Redis that went away must not
        # leave the connection pool open); the first failure is raised after all have run.
        closers = [*self._closers, self._sender.aclose, *(r.aclose for r in self._route_clients)]
        failure: BaseException | None = None
        with anyio.CancelScope(shield=True):
            for close in closers:
                try:
                    await close()
                except Exception as exc:
                    failure = failure or exc
        if failure is not None:
            raise failure

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
        """Running totals: requests, failures, retries, tokens, and cost by model (every
        route's replies, with `fallbacks`; see `route_usage` for each route's own)."""
        return self._usage

    @property
    def route_usage(self) -> dict[str, UsageTotals]:
        """Each route's own totals, by route (``"provider:model"``), the primary first; for a
        client without `fallbacks`, its one route's are `usage`."""
        routes = self._routes
        if not routes:
            return {f"{self.provider.name}:{self.model or '(asked model)'}": self._usage}
        return {route.label: route.usage for route in routes}

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

    def _call(
        self,
        wire: WireRequest,
        *,
        parse: Callable[[Any, str | None], Any],
        timeout: Timeout | float | None,
        max_retries: int | None,
        extra_headers: Mapping[str, str] | None = None,
        estimated_tokens: int = 1,
        model: str | None = None,
        stream: bool = False,
        new_parser: Callable[[], StreamParser] | None = None,
        operation: str = "chat",
    ) -> Call:
        if extra_headers:  # checked as the client's own: h11 and httpcore's log quote a bad one
            from ._settings import Place, check_setting

            extra_headers = check_setting("headers", extra_headers, Place("extra_headers"))
        headers = dict(self._headers)
        for more in (wire.headers, extra_headers):
            if more:
                headers.update({k.lower(): v for k, v in more.items()})
        if wire.method != "GET":
            # The same key on every attempt lets the server drop duplicates of a retried call.
            headers.setdefault("idempotency-key", new_key())
        path = wire.path
        url = self._urls.get(path)
        if url is None:  # one string per path, not one per call (each in-flight call holds it)
            url = path if path.startswith(("http://", "https://")) else self._base + path
            if len(self._urls) < C.URL_CACHE_SIZE:
                self._urls[path] = url
        call = Call(
            method=wire.method,
            url=url,
            headers=headers,
            json=wire.json,
            params=wire.params,
            timeout=self._timeout(timeout),
            retry=self._retry_policy(max_retries),
            parse=parse,
            stream=stream,
            new_parser=new_parser,
            estimated_tokens=estimated_tokens,
            model=model,
            operation=operation,
        )
        if wire.json is not None:
            # Encoded here, once: a body JSON cannot carry (NaN, a set) is a ConfigError before
            # the call takes a slot or a retry; the sender sends these bytes on every attempt.
            call.content = encode_body(wire.json, self.provider.name)
            headers["content-type"] = "application/json"
        return call

    def _timeout(self, timeout: Timeout | float | None) -> Timeout:
        return self.timeout if timeout is None else Timeout.coerce(timeout)

    def _chat_call(
        self,
        messages: MessagesInput,
        model: str | None,
        params: dict[str, Any],
        extra_body: Mapping[str, Any] | None,
        extra_headers: Mapping[str, str] | None,
        timeout: Timeout | float | None,
        max_retries: int | None,
        *,
        stream: bool,
        output: OutputSpec | None = None,
    ) -> Call:
        """The `Call` of a `chat()` or `stream()`: everything checked before anything is sent."""
        request = ChatRequest(
            model=self._model(model),
            messages=normalize_messages(messages),
            params=params,
            extra_body=extra_body,
            extra_headers=extra_headers,
            stream=stream,
            output=output,
        )
        p = self.provider
        estimated = 1
        if self._config.rate_limit is not None:  # only the rate limiter reads the estimate
            estimated = estimate_tokens(request.messages, C.CHARS_PER_TOKEN_ESTIMATE)
            estimated += params.get("max_tokens", 0) * params.get("n", 1)  # per choice
        call = self._call(
            p.adapter.build_chat(p, request),
            parse=self._parse_chat,
            timeout=timeout,
            max_retries=max_retries,
            extra_headers=extra_headers,
            estimated_tokens=estimated,
            model=request.model,
            stream=stream,
            new_parser=partial(p.adapter.new_stream_parser, p, request) if stream else None,
        )
        call.request = request  # a fallback route rebuilds the call from it; a budget reads it
        return call

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
        tools: Sequence[Mapping[str, Any] | Callable[..., Any]] | None = None,
        tool_choice: Any = None,
        response_format: Any = None,
        seed: int | None = None,
        n: int | None = None,
        logprobs: bool | None = None,
        top_logprobs: int | None = None,
        extra_body: Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | None = None,
    ) -> ChatResponse:
        """Send a conversation (or one user prompt as a str) and return the complete reply.

        ``n=3`` asks for three choices: `reply.choices` holds them all, and `reply.text` (with
        the other per-choice fields) is the first's. Anthropic has no `n` (a `ConfigError`);
        Gemini takes it as ``candidateCount``.

        ``logprobs=True`` (OpenAI, Gemini) fills `reply.logprobs` with a `TokenLogprob` per
        token; ``top_logprobs=5`` adds the five likeliest tokens at each position.

        ``response_format=`` a pydantic model, a dataclass, a TypedDict or a JSON Schema dict
        asks for structured output: `reply.parsed` is its value (see
        docs/recipes/structured-output.md). ``tools=`` takes tool dicts or plain functions.
        """
        self._check()
        params, output = _chat_params(
            temperature=temperature,
            max_tokens=max_tokens,
            top_p=top_p,
            stop=stop,
            tools=tools,
            tool_choice=tool_choice,
            response_format=response_format,
            seed=seed,
            n=n,
            logprobs=logprobs,
            top_logprobs=top_logprobs,
        )
        call = self._chat_call(
            messages,
            model,
            params,
            extra_body,
            extra_headers,
            timeout,
            max_retries,
            stream=False,
            output=output,
        )
        reply: ChatResponse = (await self._chain.send(call)).value
        self._usage.record(reply.model, reply.usage, call.model)
        if output is not None:
            from ._structured import finish_reply

            reply = finish_reply(reply, output)
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
        tools: Sequence[Mapping[str, Any] | Callable[..., Any]] | None = None,
        tool_choice: Any = None,
        response_format: Any = None,
        seed: int | None = None,
        n: int | None = None,
        logprobs: bool | None = None,
        top_logprobs: int | None = None,
        extra_body: Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | None = None,
        on_text: Callable[[str], Any] | None = None,
        on_chunk: Callable[[StreamChunk], Any] | None = None,
        on_complete: Callable[[ChatResponse], Any] | None = None,
        on_error: Callable[[LLMError], Any] | None = None,
    ) -> ChatStream:
        """Stream a reply as `StreamChunk`s. Iterate it, or use it as an async context manager::

            async with client.stream("Tell me a story") as stream:
                async for chunk in stream:
                    print(chunk.text, end="")
                reply = await stream.final()

        Arguments are checked now; the request is sent on the first iteration. With ``n``,
        every choice's chunks arrive in the one stream, each with its `index`; `stream.text`
        and `on_text` follow choice 0, `final().choices` holds them all. With a typed
        ``response_format``, `final().parsed` is the value (`on_complete` gets the reply
        before parsing).
        """
        from ._stream import ChatStream  # loaded on first use, to keep `import llmrelay` quick

        self._check()
        params, output = _chat_params(
            temperature=temperature,
            max_tokens=max_tokens,
            top_p=top_p,
            stop=stop,
            tools=tools,
            tool_choice=tool_choice,
            response_format=response_format,
            seed=seed,
            n=n,
            logprobs=logprobs,
            top_logprobs=top_logprobs,
        )
        call = self._chat_call(
            messages,
            model,
            params,
            extra_body,
            extra_headers,
            timeout,
            max_retries,
            stream=True,
            output=output,
        )
        stream = ChatStream(
            chain=self._chain,
            call=call,
            provider=self.provider.name,
            mask=self._mask,
            record=self._usage.record,
            on_text=on_text,
            on_chunk=on_chunk,
            on_complete=on_complete,
            on_error=on_error,
        )
        if output is not None:
            from ._structured import finisher

            stream._finish = finisher(output)
        return stream

    async def batch(
        self,
        prompts: Sequence[MessagesInput],
        *,
        return_exceptions: bool = False,
        **options: Unpack[ChatOptions],
    ) -> list[Any]:
        """`chat()` for each prompt, concurrently; results in input order. `prompts` is a list
        (or tuple) of prompts, each a str or a list of messages; a bare str is a `TypeError`,
        not one prompt per character. `options` are `chat()`'s keyword arguments (`model`,
        `temperature`...), the same for every prompt.

        With `return_exceptions=True` a failed prompt's slot holds its typed error, so there is
        exactly one outcome per input. Otherwise the first error cancels the rest and is raised.
        A client's `budget` that refuses a call stops the sending: every prompt not sent gets
        that `BudgetExceededError` as its outcome, calls in flight finish; without
        `return_exceptions` the error is raised with `.results` (one outcome per input).
        """
        from ._batch import check_options, check_prompts, run_batch

        check_options("AsyncClient.batch", options)
        check_prompts("AsyncClient.batch", prompts)
        self._check()
        return await run_batch(
            partial(self.chat, **options),
            prompts,
            return_exceptions=return_exceptions,
            workers=self.max_concurrency * 2,
        )

    async def as_completed(
        self, prompts: Sequence[MessagesInput], **options: Unpack[ChatOptions]
    ) -> AsyncGenerator[tuple[int, ChatResponse | LLMError], None]:
        """Yield `(index, reply or typed error)` as each prompt finishes; `options` as for
        `batch()`. Consume it fully, or wrap it in `contextlib.aclosing(...)` when you may stop
        early."""
        from ._batch import check_options, check_prompts, run_as_completed

        check_options("AsyncClient.as_completed", options)
        check_prompts("AsyncClient.as_completed", prompts)
        self._check()
        # Closed explicitly: left to the garbage collector, the inner generator would be
        # finalised in another task, and its task group (with workers still running) with it.
        async with aclosing(
            run_as_completed(
                partial(self.chat, **options), prompts, workers=self.max_concurrency * 2
            )
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

        def parse(data: Any, request_id: str | None) -> EmbeddingResponse:
            result = p.adapter.parse_embed(p, data, request_id)
            if len(result.vectors) != len(texts):  # a silent mismatch would misalign the rows
                raise ResponseError(
                    f"{p.name} returned {len(result.vectors)} embeddings for {len(texts)} inputs",
                    provider=p.name,
                    request_id=request_id,
                )
            return result

        call = self._call(
            p.adapter.build_embed(p, chosen, texts, extra_body),
            parse=parse,
            timeout=timeout,
            max_retries=max_retries,
            extra_headers=extra_headers,
            estimated_tokens=sum(len(t) for t in texts) // C.CHARS_PER_TOKEN_ESTIMATE + 1,
            model=chosen,
            operation="embed",
        )
        result: EmbeddingResponse = (await self._chain.send(call)).value
        self._usage.record(result.model, result.usage, chosen)
        return result

    async def models(self, *, timeout: Timeout | float | None = None) -> list[ModelInfo]:
        """The provider's model list."""
        self._check()
        p = self.provider
        call = self._call(
            p.adapter.build_models(p),
            parse=lambda data, request_id: p.adapter.parse_models(p, data),
            timeout=timeout,
            max_retries=None,
            operation="models",
        )
        models: list[ModelInfo] = (await self._chain.send(call)).value
        return models

    # -- provider Batch APIs (the logic is in _provider_batch.py) -----------------------------

    async def submit_batch(
        self, prompts: Sequence[MessagesInput], **options: Unpack[ChatOptions]
    ) -> BatchJob:
        """Submit `prompts` as one job to the provider's Batch API (OpenAI, Anthropic, Gemini;
        half the price, results within the provider's window, typically 24 h). `options` are
        `chat()`'s keyword arguments, the same for every prompt. An input over the provider's
        limits is split into several jobs, shown as one `BatchJob` (see `BatchJob`).
        Another provider: a `ConfigError` naming those that have one."""
        from . import _provider_batch
        from ._batch import check_options, check_prompts

        check_options("AsyncClient.submit_batch", options)
        check_prompts("AsyncClient.submit_batch", prompts)
        self._check()
        return await _provider_batch.submit(self, prompts, dict(options))

    async def get_batch(self, batch_id: str) -> BatchJob:
        """The job's current state: `status`, `counts`..."""
        from . import _provider_batch

        self._check()
        return await _provider_batch.get(self, batch_id)

    async def wait_batch(
        self,
        batch_id: str,
        *,
        poll_interval: float = C.BATCH_POLL_INTERVAL,
        timeout: float | None = None,
        on_progress: Callable[[BatchJob], Any] | None = None,
    ) -> BatchJob:
        """Poll the job every `poll_interval` seconds until it has ended and return it;
        `on_progress(job)` sees every state. `timeout` (seconds) raises `TimeoutError`."""
        from . import _provider_batch

        self._check()
        return await _provider_batch.wait(
            self, batch_id, poll_interval=poll_interval, timeout=timeout, on_progress=on_progress
        )

    async def batch_results(self, batch_id: str) -> list[ChatResponse | LLMError]:
        """One outcome per prompt of an ended job, in input order: the `ChatResponse`, or the
        typed error of that prompt (a `BatchItemError` for one that never ran: expired,
        cancelled, or the job failed). A job still running: `BatchNotReadyError`."""
        from . import _provider_batch

        self._check()
        return await _provider_batch.results(self, batch_id)

    async def cancel_batch(self, batch_id: str) -> BatchJob:
        """Ask the provider to cancel the job; what finished before stays in its results."""
        from . import _provider_batch

        self._check()
        return await _provider_batch.cancel(self, batch_id)
