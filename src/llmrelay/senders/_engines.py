"""Choosing the HTTP engine (`AsyncClient(http=...)`, ``LLMRELAY_HTTP``, a profile's ``http``),
and what every sender shares.

httpx is the default and always installed. ``http="aiohttp"`` (`_aiohttp.py`) and
``http="reqwest"`` (`_reqwest.py`) are extras: their modules, and the libraries they wrap, are
imported only when a client asks for them, so ``import llmrelay`` costs the same without them.
Each is one sender behind the same contract as `_httpx.HttpxSender`: `send(call) -> Reply`,
`aclose()`, its library's errors turned into llmrelay's (`Reply.errors` / `map_error` for the
body). The stages above (retry, slot, rate limit, opener) do not know which engine runs.

Both extras run on asyncio only. Under trio the first request raises `ConfigError` (not a
silent fallback to httpx: the user chose the engine for its speed, and a fallback would hide
that they are not getting it).
"""

from __future__ import annotations

import base64
import logging
import os
import time
from typing import TYPE_CHECKING, Protocol

from .._exceptions import ConfigError

if TYPE_CHECKING:
    from .._keymask import KeyMask
    from .._settings import ClientConfig
    from ..stages._base import Call, Reply

logger = logging.getLogger("llmrelay")

# What to install for each optional engine.
EXTRAS = {"aiohttp": ("aiohttp", "aiohttp"), "reqwest": ("pyreqwest", "reqwest")}


class Sender(Protocol):
    """The innermost stage: sends a call over the network and owns the connections."""

    async def send(self, call: Call) -> Reply: ...

    async def aclose(self) -> None: ...


def build_engine_sender(config: ClientConfig, mask: KeyMask) -> Sender:
    """The sender of the engine `config.http` names (not httpx: see `_httpx.build_sender`)."""
    package, extra = EXTRAS[config.http]
    try:
        if config.http == "aiohttp":
            from ._aiohttp import AiohttpSender as Engine
        else:
            from ._reqwest import ReqwestSender as Engine  # type: ignore[assignment]
    except ImportError as exc:
        if exc.name is None or exc.name.partition(".")[0] != package:
            raise
        raise ConfigError(
            f'http="{config.http}" needs the {package} package: pip install "llmrelay[{extra}]"'
        ) from None
    return Engine(config, mask)


def require_asyncio(engine: str) -> None:
    """A `ConfigError` unless an asyncio loop runs this task (trio has none)."""
    import asyncio  # here, not at the top: `import llmrelay` does not load asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        raise ConfigError(
            f'http="{engine}" runs on asyncio only; under trio use the default http="httpx"'
        ) from None


def env_proxy_url(config: ClientConfig, engine: str, schemes: tuple[str, ...]) -> str | None:
    """The proxy from the environment for `config.base_url` (None when none applies), read as
    httpx reads it (a URL without a scheme is http://), checked now: a kind `engine` cannot
    use, or a URL that does not parse, is a `ConfigError` that never quotes the URL (it may
    hold a password)."""
    if not config.proxy:
        return None
    from urllib.parse import urlsplit

    from .._settings import env_proxy

    url = env_proxy(os.environ, config.base_url)  # the process environment, as httpx's trust_env
    if not url:
        return None
    if "://" not in url:
        url = "http://" + url
    scheme = url.partition("://")[0].lower()
    if scheme not in schemes:
        kinds = " and ".join(", ".join(f"{name}://" for name in schemes).rsplit(", ", 1))
        raise ConfigError(
            f'http="{engine}" cannot use the proxy set in the environment: it supports '
            f"{kinds} proxies, not {scheme}:// (the default engine, httpx, takes SOCKS proxies "
            'with "llmrelay[socks]")'
        )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        parts = None
    if parts is None or not parts.hostname:
        raise ConfigError("the proxy set in the environment is not a valid URL")
    return url


def move_credentials(call: Call) -> None:
    """``user:password@`` in the URL becomes basic auth, as `httpx.AsyncClient.send` (and our
    httpx sender) does: it wins over the key's header, and the URL that libraries put in their
    errors and logs no longer holds it."""
    from urllib.parse import unquote, urlsplit, urlunsplit

    parts = urlsplit(call.url)
    if parts.username is None and parts.password is None:
        return
    pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}".encode()
    call.headers["authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
    netloc = parts.netloc.rpartition("@")[2]
    call.url = urlunsplit(parts._replace(netloc=netloc))


def header_error(provider: str, call: Call) -> ConfigError:
    """The error for a header the HTTP library refused, naming it but never its value (libraries
    quote it whole). The client's own headers were checked when it was made, so the one found
    here came with the call."""
    return _bad_header(provider, call) or ConfigError(
        f"{provider}: a header holds characters an HTTP header cannot carry "
        "(check the API key and the headers given)"
    )


def request_error(provider: str, call: Call, exc: BaseException) -> ConfigError:
    """The error for a request the HTTP library refused to build (a `ValueError` of its own):
    a bad header, named as `header_error` names it, else the library's reason (a host name
    IDNA cannot encode...), which never holds a header's value."""
    return _bad_header(provider, call) or ConfigError(
        f"{provider}: cannot send this request: {exc or type(exc).__name__}"
    )


def _bad_header(provider: str, call: Call) -> ConfigError | None:
    from .._settings import HEADER_EXPECTED, header_value_problem, is_header_name

    for name, value in call.headers.items():
        if not is_header_name(name):
            return ConfigError(
                f"{provider}: extra_headers must have valid HTTP header names, got {name!r}"
            )
        problem = header_value_problem(value)
        if problem is not None:
            return ConfigError(
                f"{provider}: extra_headers[{name!r}] must be {HEADER_EXPECTED}, got {problem}"
            )
    return None


def log_attempt(call: Call, outcome: str, started: float) -> None:
    """One debug line per attempt (callers check `logger.isEnabledFor(DEBUG)` first)."""
    path = "/" + call.url.partition("://")[2].partition("/")[2].partition("?")[0]
    logger.debug(
        "%s %s -> %s in %.3fs (attempt %d)",
        call.method,
        path,
        outcome,
        time.perf_counter() - started,
        call.attempt + 1,
    )
