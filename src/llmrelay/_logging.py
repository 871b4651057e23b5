"""Logging: the ``"llmrelay"`` logger, an opt-in readable handler, and redaction helpers.

The library only ever logs through `logging.getLogger("llmrelay")`, which carries a
`NullHandler`: nothing is printed unless the application configures logging, or sets
``LLMRELAY_LOG=debug`` (or ``info``), or uses the CLI's ``-v``/``-vv``. Then one line per request
attempt (DEBUG) and per retry decision (INFO) goes to stderr::

    12:00:01.250 llmrelay DEBUG POST /v1/chat/completions -> 429 in 0.004s (attempt 1, ...)
    12:00:01.251 llmrelay INFO  retrying POST /v1/chat/completions: status 429, retry in 0.10s

Secrets never reach a log line: the library logs methods and paths, never headers or query
strings, and the handler installed here scrubs anything that still looks like a credential from
the final text. `redact_headers()` and `redact_url()` make headers and URLs safe to show (in a
`Provider`'s repr, in the CLI's connection errors).
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterable, Mapping
from urllib.parse import unquote_plus, urlsplit, urlunsplit

from ._exceptions import ConfigError

LOGGER_NAME = "llmrelay"
ENV_VAR = "LLMRELAY_LOG"
REDACTED = "***"

# Header names whose values are credentials (compared lower-case).
SENSITIVE_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "api-key",
        "x-api-key",
        "x-goog-api-key",
        "cookie",
        "set-cookie",
    }
)
# Query parameters whose values are credentials (Gemini's `key=`, signed URLs...).
SENSITIVE_QUERY_KEYS = frozenset(
    {"key", "api_key", "api-key", "apikey", "access_token", "token", "sig", "signature"}
)
# Header names that look secret by name but are safe and useful to see.
_SAFE_HEADERS = frozenset({"idempotency-key", "x-stainless-retry-count"})
_SECRET_WORDS = ("key", "token", "secret", "auth", "password", "signature")

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
_OFF = frozenset({"", "0", "off", "none", "false", "no"})

# Last line of defence, applied to every formatted record of our handler.
_SCRUBBERS: tuple[tuple[re.Pattern[str], str], ...] = (
    # "authorization: Bearer x", "'x-api-key': 'x'", "api-key=x"
    (
        re.compile(
            r"(?i)(\b(?:proxy-)?authorization|\b(?:x-goog-|x-)?api[-_]?key)"
            r"(['\"]?\s*[:=]\s*['\"]?)((?:bearer|basic)\s+)?[^\s'\",;&}]+"
        ),
        r"\1\2\3" + REDACTED,
    ),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{4,}"), r"\1 " + REDACTED),
    (
        re.compile(
            r"(?i)([?&](?:key|api_key|api-key|apikey|access_token|token|sig|signature)=)"
            r"[^&\s'\"#]+"
        ),
        r"\1" + REDACTED,
    ),
    (re.compile(r"\b(sk-(?:ant-|proj-)?)[A-Za-z0-9_-]{8,}"), r"\1" + REDACTED),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{20,}"), REDACTED),
)


def get_logger() -> logging.Logger:
    """The ``"llmrelay"`` logger, with a `NullHandler` attached (once)."""
    logger = logging.getLogger(LOGGER_NAME)
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())
    return logger


def is_sensitive_header(name: str) -> bool:
    """Whether a header's value must be hidden: known credential headers, and any header whose
    name mentions a key, token, secret, auth or password (except a few safe ones)."""
    lowered = name.lower()
    if lowered in _SAFE_HEADERS:
        return False
    return lowered in SENSITIVE_HEADERS or any(word in lowered for word in _SECRET_WORDS)


def redact_headers(
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
) -> dict[str, str]:
    """A copy of `headers` (names lower-cased) safe to log: credential values become ``***``.

    >>> redact_headers({"Authorization": "Bearer sk-123", "Accept": "json"})
    {'authorization': '***', 'accept': 'json'}
    """
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {name.lower(): REDACTED if is_sensitive_header(name) else value for name, value in items}


def redact_url(url: object) -> str:
    """`url` (a str or an `httpx.URL`) safe to log: the password of a ``user:pass@`` part and
    the values of credential query parameters (``key=``, ``api_key=``, ``token=``...) become
    ``***``.

    >>> redact_url("https://x.test/v1beta/models?key=AIzaSecret&alt=sse")
    'https://x.test/v1beta/models?key=***&alt=sse'
    """
    text = str(url)
    try:
        parts = urlsplit(text)
    except ValueError:  # unparsable (e.g. "http://[::1/v1"): show no more than the scheme
        return text.partition("://")[0] + "://" + REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{REDACTED}@{host}" if ":" in userinfo else f"{REDACTED}@{host}"
    query = "&".join(_redact_pair(pair) for pair in parts.query.split("&"))
    if netloc == parts.netloc and query == parts.query:
        return text
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _redact_pair(pair: str) -> str:
    name, sep, _ = pair.partition("=")
    if sep and unquote_plus(name).lower() in SENSITIVE_QUERY_KEYS:
        return f"{name}={REDACTED}"
    return pair


def scrub(text: str) -> str:
    """Mask anything in free text that looks like a credential (used on every log line)."""
    for pattern, replacement in _SCRUBBERS:
        text = pattern.sub(replacement, text)
    return text


class ReadableFormatter(logging.Formatter):
    """``HH:MM:SS.mmm llmrelay LEVEL message``, with credentials scrubbed from the result
    (tracebacks included)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s.%(msecs)03d %(name)s %(levelname)-5s %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at the time of each record (so redirections and test
    captures made after configuration are honoured)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def configure(level: int | str) -> logging.Handler:
    """Send llmrelay's log records of `level` and above to stderr, one readable line each.

    Calling it again replaces the handler it installed before (it never stacks handlers).
    """
    if isinstance(level, str):
        level = _parse_level(level, source="level")
    logger = get_logger()
    for handler in list(logger.handlers):
        if isinstance(handler, _StderrHandler):
            logger.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(ReadableFormatter())
    handler.setLevel(level)
    logger.addHandler(handler)
    logger.setLevel(level)
    return handler


def configure_from_env(environ: Mapping[str, str] | None = None) -> logging.Handler | None:
    """Apply ``LLMRELAY_LOG`` (``debug``, ``info``, ``warning``, ``error`` or ``off``).

    Always makes sure the ``"llmrelay"`` logger has its `NullHandler`. Returns the handler it
    installed, or `None` when the variable is unset or ``off``. Cheap and idempotent: meant to
    be called whenever a client or the CLI starts.
    """
    get_logger()
    raw = (os.environ if environ is None else environ).get(ENV_VAR, "")
    value = raw.strip().lower()
    if value in _OFF:
        return None
    return configure(_parse_level(value, source=ENV_VAR))


def _parse_level(value: str, *, source: str) -> int:
    level = _LEVELS.get(value.strip().lower())
    if level is None:
        allowed = ", ".join([*_LEVELS, "off"])
        raise ConfigError(f"{source} must be one of {allowed}; got {value!r}")
    return level
