"""`Client`: the blocking facade. It owns one background thread running an event loop (an anyio
blocking portal) and forwards every call to an `AsyncClient` living on that loop. No logic of
its own: whatever the async core does, this does.
"""

from __future__ import annotations

import inspect
import queue
import threading
import weakref
from collections.abc import Callable, Generator, Iterator
from contextlib import AbstractContextManager, aclosing
from functools import partial
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

from anyio.from_thread import BlockingPortal, start_blocking_portal

from ._batch_job import BatchJob
from ._client import AsyncClient, ClientStateError
from ._exceptions import LLMError
from ._stream import ChatStream
from ._types import ChatResponse, EmbeddingResponse, ModelInfo, StreamChunk
from ._usage import UsageTotals
from .stages._breaker import Breaker

P = ParamSpec("P")
S = TypeVar("S")
R = TypeVar("R")


def _params_of(
    source: Callable[Concatenate[Any, P], object],
) -> Callable[[Callable[Concatenate[S, ...], R]], Callable[Concatenate[S, P], R]]:
    """Give a facade method the parameters of the `AsyncClient` method it forwards to.

    Why a ParamSpec: checkers then see every name, type, default and kind of the async method
    (a misspelt `temprature=` is an error on `Client.chat` as on `AsyncClient.chat`), and the
    async signature stays the only one written down. The alternatives are a second copy of each
    list: spelt out here, or in a TypedDict per method for `**kwargs: Unpack[...]`. It is a
    decorator rather than `chat = forward(AsyncClient.chat)` because mypy reads a decorated
    `__init__`, but silently turns the whole class into `Any` for an assigned one.

    At run time the facade method is unchanged apart from what `help()` and `inspect` show; a
    wrong argument is the async method's own `TypeError`, raised when the portal calls it.
    """

    def apply(method: Callable[Concatenate[S, ...], R]) -> Callable[Concatenate[S, P], R]:
        returns = method.__annotations__.get("return", inspect.Signature.empty)
        method.__signature__ = inspect.signature(source).replace(  # type: ignore[attr-defined]
            return_annotation=returns
        )
        if method.__doc__ is None:
            method.__doc__ = source.__doc__
        return method

    return apply


class SyncStream:
    """A plain iterator (and context manager) over a `ChatStream` running on the portal's loop.

    Every step runs on the client's own loop thread (callbacks too). Leaving the `with` block,
    breaking out of the loop, or dropping the object closes the response and frees the slot.
    """

    def __init__(self, portal: Callable[[], BlockingPortal], stream: ChatStream) -> None:
        self._open_portal = portal  # the client's: it says ClientStateError once closed
        self._stream = stream

    def __repr__(self) -> str:
        return repr(self._stream).replace("ChatStream", "SyncStream", 1)

    def __iter__(self) -> Iterator[StreamChunk]:
        return self

    def __next__(self) -> StreamChunk:
        future = self._open_portal().start_task_soon(self._stream.__anext__)
        try:
            return future.result()
        except StopAsyncIteration:
            raise StopIteration from None
        except BaseException:
            # E.g. Ctrl-C while waiting: stop the read on the loop too, so that close() does
            # not find the stream still being read.
            future.cancel()
            raise

    def __enter__(self) -> SyncStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def text(self) -> str:
        """The text received so far."""
        return self._stream.text

    @property
    def request_id(self) -> str | None:
        return self._stream.request_id

    def final(self) -> ChatResponse:
        """Read whatever is left and return the complete reply (raises the stream's error)."""
        return self._open_portal().call(self._stream.final)

    def close(self) -> None:
        """Close the response and free the concurrency slot (safe to call more than once, and
        after the client was closed, which closed its streams with it)."""
        try:
            portal = self._open_portal()
        except ClientStateError:
            return
        portal.call(self._stream.aclose)


class Client:
    """The same API as `AsyncClient`, blocking::

    with llmrelay.Client(provider="mock") as client:
        print(client.chat("Hello").text)
        for chunk in client.stream("Hi"):
            print(chunk.text, end="")
    """

    _portal_cm: AbstractContextManager[BlockingPortal]
    _portal: BlockingPortal
    _async: AsyncClient
    _closed: bool

    @_params_of(AsyncClient.__init__)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._start(partial(AsyncClient, *args, **kwargs))

    @classmethod
    def from_profile(cls, name: str | None = None, **overrides: Any) -> Client:
        """A client from profile `name` of ``llmrelay.toml`` or ``llmrelay.yaml`` (or
        ``config_path=``), as `AsyncClient.from_profile`."""
        client = cls.__new__(cls)
        client._start(partial(AsyncClient.from_profile, name, **overrides))
        return client

    def _start(self, build: Callable[[], AsyncClient]) -> None:
        self._portal_cm = start_blocking_portal("asyncio")
        self._portal = self._portal_cm.__enter__()
        try:
            # Built on the loop thread, so its connections belong to that loop.
            self._async = self._portal.call(build)
        except BaseException:
            self._portal_cm.__exit__(None, None, None)
            raise
        self._closed = False
        _close_at_exit(self)

    def __repr__(self) -> str:
        return repr(self._async).replace("AsyncClient", "Client", 1)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections and stop the background thread."""
        if self._closed:
            return
        self._closed = True
        try:
            self._portal.call(self._async.aclose)
        finally:
            self._portal_cm.__exit__(None, None, None)

    @property
    def usage(self) -> UsageTotals:
        return self._async.usage

    @property
    def route_usage(self) -> dict[str, UsageTotals]:
        """Each fallback route's own totals (see `AsyncClient.route_usage`)."""
        return self._async.route_usage

    @property
    def breaker(self) -> Breaker | None:
        """The client's circuit breaker (`is_open`, `state`, `retry_in`), `None` when off."""
        return self._async.breaker

    @property
    def async_client(self) -> AsyncClient:
        """The `AsyncClient` behind this facade (it lives on the facade's own loop thread)."""
        return self._async

    def _open_portal(self) -> BlockingPortal:
        # Once closed, the portal's thread is gone: say so instead of anyio's "portal is not
        # running" (the same error the AsyncClient gives).
        if self._closed:
            raise ClientStateError("this Client is closed; create a new one")
        return self._portal

    @_params_of(AsyncClient.chat)
    def chat(self, *args: Any, **kwargs: Any) -> ChatResponse:
        return self._open_portal().call(partial(self._async.chat, *args, **kwargs))

    @_params_of(AsyncClient.stream)
    def stream(self, *args: Any, **kwargs: Any) -> SyncStream:
        portal = self._open_portal()
        stream = portal.call(partial(self._async.stream, *args, **kwargs))
        return SyncStream(self._open_portal, stream)

    @_params_of(AsyncClient.batch)
    def batch(self, *args: Any, **kwargs: Any) -> list[Any]:
        return self._open_portal().call(partial(self._async.batch, *args, **kwargs))

    @_params_of(AsyncClient.as_completed)
    def as_completed(
        self, *args: Any, **kwargs: Any
    ) -> Generator[tuple[int, ChatResponse | LLMError], None, None]:
        # The async generator runs its workers in a task group, which must be entered and left
        # by one task: so one portal task drives it and hands outcomes over through a queue
        # (driving it with one portal call per item would use a new task each time).
        portal = self._open_portal()
        outcomes: queue.SimpleQueue[Any] = queue.SimpleQueue()
        done = object()

        async def pump() -> None:
            try:
                async with aclosing(self._async.as_completed(*args, **kwargs)) as items:
                    async for item in items:
                        outcomes.put(item)
            finally:
                outcomes.put(done)

        future = portal.start_task_soon(pump)
        try:
            while True:
                item = outcomes.get()
                if item is done:
                    future.result()  # the async side's error, if it failed
                    return
                yield item
        finally:
            if not future.done():
                future.cancel()  # stopped early: cancels the workers on the loop

    @_params_of(AsyncClient.embed)
    def embed(self, *args: Any, **kwargs: Any) -> EmbeddingResponse:
        return self._open_portal().call(partial(self._async.embed, *args, **kwargs))

    @_params_of(AsyncClient.models)
    def models(self, *args: Any, **kwargs: Any) -> list[ModelInfo]:
        return self._open_portal().call(partial(self._async.models, *args, **kwargs))

    @_params_of(AsyncClient.submit_batch)
    def submit_batch(self, *args: Any, **kwargs: Any) -> BatchJob:
        return self._open_portal().call(partial(self._async.submit_batch, *args, **kwargs))

    @_params_of(AsyncClient.get_batch)
    def get_batch(self, *args: Any, **kwargs: Any) -> BatchJob:
        return self._open_portal().call(partial(self._async.get_batch, *args, **kwargs))

    @_params_of(AsyncClient.wait_batch)
    def wait_batch(self, *args: Any, **kwargs: Any) -> BatchJob:
        return self._open_portal().call(partial(self._async.wait_batch, *args, **kwargs))

    @_params_of(AsyncClient.batch_results)
    def batch_results(self, *args: Any, **kwargs: Any) -> list[ChatResponse | LLMError]:
        return self._open_portal().call(partial(self._async.batch_results, *args, **kwargs))

    @_params_of(AsyncClient.cancel_batch)
    def cancel_batch(self, *args: Any, **kwargs: Any) -> BatchJob:
        return self._open_portal().call(partial(self._async.cancel_batch, *args, **kwargs))


def _close_at_exit(client: Client) -> None:
    """Close a Client its owner forgot to close before the interpreter waits for threads.

    The portal's loop thread never ends on its own, and Python joins threads *before* plain
    atexit handlers run, so a forgotten client would hang the exit. threading's own pre-join
    hook (what concurrent.futures uses) runs first; a weak reference keeps it from holding
    the client alive.
    """
    register = getattr(threading, "_register_atexit", None)
    if register is None:
        return
    ref = weakref.ref(client)

    def close() -> None:
        alive = ref()
        if alive is not None:
            alive.close()

    register(close)
