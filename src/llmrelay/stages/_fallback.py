"""The fallback stage: the layer above the per-route chains.

A client with ``fallbacks=[Route(...), ...]`` has one route per provider/model, the primary
first, each a client of its own (built once, with its own key, base URL, retry policy,
concurrency slots and rate limit): so each route keeps its whole chain (retry → slot → rate
limit → opener → sender), and this stage sits above them, choosing which chain a call goes down.
A `Call` is in one provider's wire format, so moving to another route rebuilds it from the
provider-neutral request it carries (`Call.request`), with the route's model.

Rules, in order, for each route (the primary first):

1. A route whose circuit breaker is open (it failed `BREAKER_FAILURES` calls in a row) is
   skipped until its cool-down ends (INFO log). If every route is cooling down, the call goes to
   the primary anyway: a try is better than a certain failure.
2. The route gets the time left of the call's one total deadline (``timeout.total``): the
   deadline covers every route, not each.
3. A provider-side failure after the route's own retries (connection error, timeout, 408, 429,
   5xx, 529/overloaded, a Retry-After beyond the cap or the deadline, the Redis of its shared
   rate limit down) moves on to the next route (INFO log). A stream moves on only before its
   first content chunk: the opener reads up to it inside the route's chain, so anything later
   is the stream's own error.
4. A caller error (400, 401, 403, 404, 422, `ConfigError`, an unreadable 2xx body) stops:
   raised as it is when it came from the first route tried, else as the combined error.
5. Every route failed: one error, `AllRoutesFailedError`, built as a subclass of the last
   route's error class (so ``except RateLimitError`` still catches it), with `.errors` listing
   each route's error.

Embeddings and model lists stay with the primary: another provider's vectors are not
interchangeable. A call's credential headers (``extra_headers={"Authorization": ...}``) are the
primary's: a route sends its own key, and the call's other headers.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio

from .. import _constants as C
from .._exceptions import (
    AllRoutesFailedError,
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    LLMError,
    OverloadedError,
    RateLimitBackendError,
)
from .._request import ChatRequest, estimate_tokens
from ._base import Call, Reply
from ._route_breaker import RouteBreaker

if TYPE_CHECKING:
    from .._client import AsyncClient
    from .._usage import UsageTotals
    from ._base import Stage

logger = logging.getLogger("llmrelay")


def falls_back(error: LLMError) -> bool:
    """Whether the next route may succeed where this error's route failed."""
    if isinstance(error, APIConnectionError | RateLimitBackendError):  # timeouts included
        return True  # (a route whose shared limit's Redis is down could send nothing)
    if isinstance(error, APIStatusError):
        code = error.status_code
        return code >= 500 or code in C.FALLBACK_STATUS_CODES or isinstance(error, OverloadedError)
    return False


class RouteEntry:
    """One route: its client's settings, the chain a call goes down, its own usage totals
    (counted by its retry stage and here), a label for logs and errors, and its breaker."""

    __slots__ = ("breaker", "chain", "client", "label", "primary", "usage")

    def __init__(
        self,
        client: AsyncClient,
        label: str,
        *,
        chain: Stage,
        usage: UsageTotals,
        primary: bool = False,
    ) -> None:
        self.client = client
        self.chain = chain
        self.usage = usage
        self.label = label
        self.primary = primary
        self.breaker = RouteBreaker()

    def call_for(self, call: Call, total: float | None) -> Call:
        """`call` for this route: the primary's own, or rebuilt in this route's wire format
        from the provider-neutral request, with `total` seconds left of the deadline."""
        client = self.client
        if self.primary:
            # The call as the client built it (a per-call timeout kept): the primary is
            # always the first route tried, so its own total is the time left.
            return call
        timeout = client.timeout
        if total is not None:
            own = timeout.total
            timeout = dataclasses.replace(timeout, total=total if own is None else min(total, own))
        asked: ChatRequest = call.request
        headers = asked.extra_headers
        if headers:
            # A credential the caller gave for this call (``Authorization``, ``x-api-key``...)
            # is the primary's: it must not reach another provider. The route sends its own.
            from .._logging import is_sensitive_header

            headers = {k: v for k, v in headers.items() if not is_sensitive_header(k)} or None
        request = ChatRequest(
            model=client.model or asked.model,
            messages=asked.messages,
            params=asked.params,
            extra_body=asked.extra_body,
            extra_headers=headers,
            stream=asked.stream,
            output=asked.output,  # a typed response_format: each family sends it its own way
        )
        estimated = 1
        if client._config.rate_limit is not None:
            estimated = estimate_tokens(request.messages, C.CHARS_PER_TOKEN_ESTIMATE)
            estimated += request.params.get("max_tokens", 0) * request.params.get("n", 1)
        p = client.provider
        routed = client._call(
            p.adapter.build_chat(p, request),
            parse=client._parse_chat,
            timeout=timeout,
            max_retries=None,
            extra_headers=request.extra_headers,
            estimated_tokens=estimated,
            model=request.model,
            stream=request.stream,
            new_parser=partial(p.adapter.new_stream_parser, p, request) if request.stream else None,
        )
        routed.request = request
        return routed


class FallbackStage:
    def __init__(self, routes: list[RouteEntry], *, usage: UsageTotals) -> None:
        self.routes = routes
        self._usage = usage  # the client's combined totals

    async def send(self, call: Call) -> Reply:
        routes = self.routes
        if call.request is None:  # embeddings, model lists: the primary's business only
            return await routes[0].chain.send(call)
        total = call.timeout.total
        deadline = None if total is None else anyio.current_time() + total
        errors: list[tuple[str, LLMError]] = []
        routed: Call | None = None
        done = 0  # attempts sent on the routes tried before this one
        for route in self._candidates():
            if errors and logger.isEnabledFor(logging.INFO):
                label, error = errors[-1]
                logger.info(
                    "route %s failed with %s after %d retries; falling back to %s",
                    label,
                    type(error).__name__,
                    0 if routed is None else routed.attempt,
                    route.label,
                )
            left = None if deadline is None else deadline - anyio.current_time()
            if left is not None and left <= 0:
                timeout = APITimeoutError("the total timeout ran out before this route")
                errors.append((route.label, timeout))
                break
            routed = None
            try:
                routed = route.call_for(call, left)
                if routed is not call:
                    routed.parent = call
                    call.attempt = done  # the hooks number a route's retries after these
                reply = await route.chain.send(routed)
            except LLMError as error:
                self._usage.retries += 0 if routed is None else routed.attempt
                done = _sum_up(call, routed, done)
                if not falls_back(error):
                    if not errors:
                        self._usage.failures += 1
                        raise
                    errors.append((route.label, error))
                    break
                route.breaker.record_failure()
                errors.append((route.label, error))
                continue
            route.breaker.record_success()
            self._usage.retries += routed.attempt
            _sum_up(call, routed, done)
            self._answered(call, routed, route, reply)
            return reply
        self._usage.failures += 1
        combined = all_routes_failed(errors)
        if routed is not None and errors[-1][1] is routed.body_error:
            call.body_error = combined  # failed in a stream's body: the stream says so
        raise combined from errors[-1][1]

    def _candidates(self) -> Iterator[RouteEntry]:
        """The routes to try, in order, each asked when it is reached (asking may start a
        cooling route's probe); the primary when every route is cooling down."""
        given = False
        for route in self.routes:
            if self._allowed(route):
                given = True
                yield route
        if not given:
            yield self.routes[0]

    def _allowed(self, route: RouteEntry) -> bool:
        # The route's client has its own circuit breaker (per attempt: its server is down);
        # an open one means the route would fail at once, so it is skipped like a cooling one.
        circuit = route.client.breaker
        if circuit is not None and circuit.is_open:
            if logger.isEnabledFor(logging.INFO):
                logger.info(
                    "route %s skipped: its circuit is open (server down), next probe in %.1f s",
                    route.label,
                    circuit.retry_in,
                )
            return False
        if route.breaker.allow():
            return True
        if logger.isEnabledFor(logging.INFO):
            logger.info(
                "route %s skipped: %d failures in a row, cooling down for %.1f s more",
                route.label,
                route.breaker.failures,
                route.breaker.remaining(),
            )
        return False

    def _answered(self, call: Call, routed: Call, route: RouteEntry, reply: Reply) -> None:
        """Tell the caller's call who answered, and count the reply in the route's totals."""
        call.route = route.client.provider.name
        call.request_id = routed.request_id
        if routed is not call:
            call.model = routed.model
        usage = route.usage
        value: Any = reply.value
        model = getattr(value, "model", None)
        if model is None and getattr(value, "chunks", None):
            model = value.chunks[0].model  # a stream's first chunk names the model
        requested = routed.model

        def count(used: Any, error: LLMError | None) -> None:
            if error is None:
                usage.record(model, used, requested)

        reply.on_finish(count)


def _sum_up(call: Call, routed: Call | None, done: int) -> int:
    """After a route: the attempts sent so far, and the caller's call told them (its `attempt`
    counts every route's; its `first_sent` is the first attempt's, on whichever route), for
    what the hooks report."""
    if routed is None:  # the call could not be built for this route: nothing was sent
        call.attempt = max(done - 1, 0)
        return done
    if routed is not call:
        if call.first_sent is None:
            call.first_sent = routed.first_sent
        if routed.request_id is not None:
            call.request_id = routed.request_id
    done += routed.attempt + 1
    call.attempt = done - 1
    return done


_COMBINED: dict[type[LLMError], type[AllRoutesFailedError]] = {}


def all_routes_failed(errors: list[tuple[str, LLMError]]) -> AllRoutesFailedError:
    """One error for a call whose every route failed: an `AllRoutesFailedError` that is also an
    instance of the last route's error class, with that error's attributes."""
    last = errors[-1][1]
    base = type(last)
    cls = _COMBINED.get(base)
    if cls is None:
        cls = _COMBINED[base] = type(
            "AllRoutesFailedError",
            (AllRoutesFailedError, base),
            {"__module__": AllRoutesFailedError.__module__},
        )
    parts = [f"{label}: {type(error).__name__}: {error}" for label, error in errors]
    message = f"every route failed ({len(errors)} tried): " + "; ".join(parts)
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(last.__dict__)
    error.message = message
    error.errors = list(errors)
    return error
