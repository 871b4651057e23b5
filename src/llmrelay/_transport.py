"""The HTTP layer: the one place where httpx's exceptions become llmrelay errors.

llmrelay's own connection pool, `SlotTransport`, lives in `senders/_pool.py` and is re-exported
here, imported on first use (it imports httpcore, which `import llmrelay` does not need). A
user-supplied `httpx.AsyncClient` is used as it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import httpx

from . import _constants as C
from ._config import Timeout
from ._exceptions import APIConnectionError, APITimeoutError

if TYPE_CHECKING:
    from .senders._pool import SlotTransport as SlotTransport


def __getattr__(name: str) -> Any:
    if name == "SlotTransport":
        from .senders._pool import SlotTransport

        return SlotTransport
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@lru_cache(maxsize=64)
def httpx_timeout(timeout: Timeout) -> httpx.Timeout:
    """httpx's per-phase timeouts for ours (cached: built once per distinct value)."""
    return httpx.Timeout(
        connect=timeout.connect,
        read=timeout.read,
        write=C.DEFAULT_WRITE_TIMEOUT,
        pool=C.DEFAULT_POOL_TIMEOUT,
    )


# What httpx raises for network trouble; everything else is a bug and propagates as is.
HTTPX_ERRORS = (httpx.TransportError, httpx.StreamError, httpx.DecodingError)


def transport_error(exc: Exception, provider: str) -> APIConnectionError:
    """The single place where httpx's exceptions become llmrelay's."""
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"{provider}: {_timeout_phase(exc)} timed out", provider=provider)
    detail = str(exc) or type(exc).__name__
    return APIConnectionError(f"{provider}: connection failed: {detail}", provider=provider)


@contextmanager
def mapped_transport_errors(provider: str) -> Iterator[None]:
    """`transport_error` as a context manager."""
    try:
        yield
    except HTTPX_ERRORS as exc:
        raise transport_error(exc, provider) from exc


def _timeout_phase(exc: httpx.TimeoutException) -> str:
    return {
        httpx.ConnectTimeout: "connecting",
        httpx.ReadTimeout: "reading (no data within the read timeout)",
        httpx.WriteTimeout: "sending",
        httpx.PoolTimeout: "waiting for a connection",
    }.get(type(exc), "the request")
