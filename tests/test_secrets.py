"""No credential ever reaches what a user or their CI sees: error messages (the whole chained
traceback, `args`, `body`), reprs, log lines (every logger at DEBUG: llmrelay's, httpx's,
httpcore's; and LLMRELAY_LOG=debug), the CLI's stdout and stderr, batch result files.

One sentinel plays every credential: the API key (from the argument or the preset's variable,
for each auth header style), a header given in `headers=`/`extra_headers=`, a proxy password,
a password in `base_url`. It matches none of the log scrubber's patterns, so what is tested is
that the value is never put there, not that the last line of defence catches it. A test server
on loopback echoes whatever credential it receives, as real servers do in their error bodies.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import socket
import threading
import traceback
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import llmrelay
from _proxy import ForwardProxy, forward_proxy

pytestmark = pytest.mark.usefixtures("engine")

SECRET = "lr-SENTINEL-5c2b8e0f9a7d4163"
TAIL = SECRET[-16:]  # a leak shows this part even if something masked the front of the key
CREDENTIAL_HEADERS = ("authorization", "x-api-key", "api-key", "x-goog-api-key", "x-gateway-auth")
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
KEY_VARIABLES = (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "AZURE_OPENAI_API_KEY",
    "AZURE_OPENAI_AD_TOKEN",
    "AZURE_OPENAI_ENDPOINT",
)


# -- a server that echoes credentials ---------------------------------------------------------


def _credential(headers: Any) -> str:
    """Every credential the request carried, as a server quotes them back."""
    found = [str(headers[name]) for name in CREDENTIAL_HEADERS if headers.get(name)]
    return " ".join(value.rpartition(" ")[2] for value in found) or "none"  # no "Bearer"


def _error(key: str) -> dict[str, Any]:
    """An error body every adapter reads (OpenAI, Anthropic and Gemini fields at once)."""
    return {
        "type": "error",
        "error": {
            "message": f"Incorrect API key provided: {key}",
            "type": "authentication_error",
            "code": 401,
            "status": "UNAUTHENTICATED",
        },
    }


def _chunk(text: str) -> bytes:
    data = {
        "id": "c",
        "object": "chat.completion.chunk",
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
    }
    return b"data: " + json.dumps(data).encode() + b"\n\n"


def _completion(text: str) -> dict[str, Any]:
    return {
        "id": "c",
        "object": "chat.completion",
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


class _Echo(BaseHTTPRequestHandler):
    """The first path segment says how to answer (``/MODE/...``):
    ``ok`` a completion; ``401`` and ``500`` an error echoing the credential; ``error200`` the
    same error with status 200; ``junk200`` a 200 that is no JSON, echoing it; ``stream`` a
    stream with one chunk, then an error event echoing it."""

    protocol_version = "HTTP/1.1"
    seen: list[str]

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.do_POST()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        key = _credential(self.headers)
        self.server.seen.append(key)  # type: ignore[attr-defined]
        mode = self.path.split("/")[1]
        if mode == "ok":
            self._send(200, json.dumps(_completion("fine")).encode())
        elif mode in ("401", "500"):
            self._send(int(mode), json.dumps(_error(key)).encode())
        elif mode == "error200":
            self._send(200, json.dumps(_error(key)).encode())
        elif mode == "junk200":
            self._send(200, f"<html>upstream rejected {key}</html>".encode(), "text/html")
        elif mode == "stream":
            error = b"data: " + json.dumps(_error(key)).encode() + b"\n\n"
            self._send(200, _chunk("partial ") + error, "text/event-stream")
        else:
            self._send(404, b"{}")

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up early (a refused request): nothing to print


@pytest.fixture(scope="module")
def echo() -> Iterator[ThreadingHTTPServer]:
    httpd = _Server(("127.0.0.1", 0), _Echo)
    httpd.seen = []  # type: ignore[attr-defined]
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def url(server: ThreadingHTTPServer, mode: str, tail: str = "v1") -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/{mode}/{tail}"


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    with forward_proxy() as running:
        yield running


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- what a user sees -------------------------------------------------------------------------


def shown(error: BaseException) -> str:
    """Everything an error shows: the traceback Python prints (every chained cause and
    context), its repr and args, and what it carries (`body`, `partial`, `headers`)."""
    parts = ["".join(traceback.format_exception(error)), repr(error), repr(error.args)]
    for name in ("body", "partial", "headers"):
        parts.append(repr(getattr(error, name, None)))
    return "\n".join(parts)


def assert_hidden(*texts: object) -> None:
    for text in texts:
        assert TAIL not in str(text), f"the secret leaked into: {text!s:.2000}"


@pytest.fixture(autouse=True)
def _every_log_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> Iterator[None]:
    """Every logger at DEBUG, formatted plainly (no scrubbing), plus LLMRELAY_LOG=debug's own
    handler on stderr; after each test, neither holds the secret. (Run in an empty directory
    with no user config, so no llmrelay.toml takes part.)"""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    for name in (*PROXY_VARIABLES, *KEY_VARIABLES, "SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("LLMRELAY_LOG", "debug")
    monkeypatch.setenv("NO_COLOR", "1")
    sink = io.StringIO()
    handler = logging.StreamHandler(sink)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    names = ("llmrelay", "httpx", "httpcore", "asyncio", "")
    saved = {name: logging.getLogger(name).level for name in names}
    llmrelay_handlers = list(logging.getLogger("llmrelay").handlers)
    root.addHandler(handler)
    for name in names:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(handler)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)
        logging.getLogger("llmrelay").handlers[:] = llmrelay_handlers
    captured = capsys.readouterr()
    assert_hidden(sink.getvalue(), captured.out, captured.err)


def client(base_url: str, provider: str = "openai", **kwargs: Any) -> llmrelay.AsyncClient:
    options: dict[str, Any] = {"api_key": SECRET, "model": "m", "max_retries": 0}
    if provider == "azure":
        options["provider"] = llmrelay.providers.azure.preset(endpoint=base_url.removesuffix("/v1"))
    else:
        options.update(provider=provider, base_url=base_url)
    return llmrelay.AsyncClient(**{**options, **kwargs})


# -- 1. keys a header cannot carry --------------------------------------------------------------

BAD_KEYS = [
    pytest.param(SECRET + "\x00", id="nul"),
    pytest.param(SECRET[:6] + "\n" + SECRET[6:], id="inner-newline"),
    pytest.param("é" + SECRET, id="non-ascii"),
    pytest.param(SECRET[:6] + "\u2028" + SECRET[6:], id="unicode-line-separator"),
    pytest.param(SECRET + "\x7f", id="delete"),
]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_a_bad_key_argument_is_a_config_error_without_the_key(key: str) -> None:
    with pytest.raises(llmrelay.ConfigError, match="api_key must be a key of printable") as info:
        llmrelay.AsyncClient(provider="openai", api_key=key)
    assert_hidden(shown(info.value))


@pytest.mark.parametrize("key", [p for p in BAD_KEYS if p.id != "nul"])  # no NUL in a variable
@pytest.mark.parametrize(
    ("provider", "variable"),
    [
        ("openai", "OPENAI_API_KEY"),
        ("anthropic", "ANTHROPIC_API_KEY"),
        ("gemini", "GEMINI_API_KEY"),
        ("azure", "AZURE_OPENAI_API_KEY"),
    ],
)
def test_a_bad_key_variable_is_a_config_error_naming_the_variable(
    provider: str, variable: str, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, key)
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://r.openai.azure.com")
    with pytest.raises(llmrelay.ConfigError, match=rf"environment \({variable}\)") as info:
        llmrelay.AsyncClient(provider=provider)
    assert_hidden(shown(info.value))


@pytest.mark.parametrize("padded", [SECRET + "\n", f"  {SECRET}\r\n", f"\t{SECRET} "])
async def test_a_key_with_surrounding_whitespace_is_sent_stripped(
    padded: str, echo: ThreadingHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", padded)
    del echo.seen[:]  # type: ignore[attr-defined]
    async with llmrelay.AsyncClient(provider="openai", base_url=url(echo, "ok"), model="m") as c:
        assert (await c.chat("hi")).text == "fine"
    assert echo.seen == [SECRET]  # type: ignore[attr-defined]


# -- 2. header values a header cannot carry ------------------------------------------------------

BAD_VALUES = [
    pytest.param(SECRET[:6] + "\n" + SECRET[6:], id="inner-newline"),
    pytest.param(f"Bearer {SECRET}\r\nx-injected: 1", id="header-injection"),
    pytest.param(SECRET + "\x00", id="nul"),
    pytest.param("é" + SECRET, id="non-ascii"),
]


@pytest.mark.parametrize("value", BAD_VALUES)
@pytest.mark.parametrize("name", ["authorization", "x-gateway-auth", "x-trace"])
async def test_a_bad_header_value_is_a_config_error_without_the_value(
    name: str, value: str, echo: ThreadingHTTPServer
) -> None:
    with pytest.raises(llmrelay.ConfigError, match=rf"headers\[{name!r}\]") as info:
        client(url(echo, "ok"), headers={name: value})
    assert_hidden(shown(info.value))
    async with client(url(echo, "ok")) as c:
        with pytest.raises(llmrelay.ConfigError, match=rf"extra_headers\[{name!r}\]") as info:
            await c.chat("hi", extra_headers={name: value})
    assert_hidden(shown(info.value))


async def test_header_values_with_surrounding_whitespace_are_sent_stripped(
    echo: ThreadingHTTPServer,
) -> None:
    del echo.seen[:]  # type: ignore[attr-defined]
    async with client(url(echo, "ok"), headers={"x-api-key": f" {SECRET}\n"}) as c:
        await c.chat("hi")
    async with client(url(echo, "ok")) as c:
        await c.chat("hi", extra_headers={"x-api-key": f"{SECRET}\r\n"})
    assert echo.seen == [f"{SECRET} {SECRET}"] * 2  # type: ignore[attr-defined]


# -- 3. a server that echoes the credential -------------------------------------------------------

PROVIDERS = ["openai", "anthropic", "gemini", "azure"]


def _tail(provider: str) -> str:
    return "v1beta" if provider == "gemini" else "v1"


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("401", llmrelay.AuthenticationError),
        ("500", llmrelay.InternalServerError),
        ("error200", llmrelay.LLMError),
        ("junk200", llmrelay.ResponseError),
    ],
)
async def test_a_key_echoed_in_an_error_body_is_masked(
    provider: str, mode: str, error: type[Exception], echo: ThreadingHTTPServer
) -> None:
    async with client(url(echo, mode, _tail(provider)), provider) as c:
        with pytest.raises(error) as info:
            await c.chat("hi")
    assert_hidden(shown(info.value))


async def test_a_key_echoed_in_a_stream_error_event_is_masked(echo: ThreadingHTTPServer) -> None:
    async with client(url(echo, "stream")) as c:
        with pytest.raises(llmrelay.StreamError) as info:
            async for _ in c.stream("hi"):
                pass
    assert_hidden(shown(info.value))


@pytest.mark.parametrize(
    "headers",
    [{"x-gateway-auth": SECRET}, {"authorization": f"Token {SECRET}"}],
)
async def test_a_secret_header_echoed_by_the_server_is_masked(
    headers: dict[str, str], echo: ThreadingHTTPServer
) -> None:
    """The credential goes in `headers=` (a gateway's own auth header), not in `api_key`."""
    async with client(url(echo, "401"), api_key="sk-other-key-1234", headers=headers) as c:
        with pytest.raises(llmrelay.AuthenticationError) as info:
            await c.chat("hi")
    assert_hidden(shown(info.value))


def test_the_sync_client_masks_the_same(echo: ThreadingHTTPServer) -> None:
    with llmrelay.Client(
        provider="openai", base_url=url(echo, "401"), api_key=SECRET, max_retries=0
    ) as c:
        with pytest.raises(llmrelay.AuthenticationError) as info:
            c.chat("hi", model="m")
        assert_hidden(shown(info.value), repr(c))


# -- 4. connections, proxies and URLs with credentials --------------------------------------------


async def test_a_connection_failure_shows_no_key() -> None:
    async with client(f"http://127.0.0.1:{closed_port()}/v1") as c:
        with pytest.raises(llmrelay.APIConnectionError) as info:
            await c.chat("hi")
    assert_hidden(shown(info.value))


@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_a_password_in_base_url_is_never_shown(
    scheme: str, echo: ThreadingHTTPServer, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = echo.server_address[1] if scheme == "http" else closed_port()
    base = f"{scheme}://user:{SECRET}@127.0.0.1:{port}/ok/v1"
    del echo.seen[:]  # type: ignore[attr-defined]
    async with client(base, api_key="sk-other-key-1234") as c:
        assert_hidden(repr(c), repr(c._config), repr(c.provider), c._config.sources)
        if scheme == "http":
            await c.chat("hi")
        else:
            with pytest.raises(llmrelay.APIConnectionError) as info:
                await c.chat("hi")
            assert_hidden(shown(info.value))
    monkeypatch.setenv("ALL_PROXY", proxy.url)  # httpx's own client: it logs each URL
    async with client(base, api_key="sk-other-key-1234") as c:
        if scheme == "http":
            await c.chat("hi")
        else:
            with pytest.raises(llmrelay.APIConnectionError) as info:
                await c.chat("hi")
            assert_hidden(shown(info.value))
    if scheme == "http":  # sent as basic auth (it wins over the key, as in httpx), both ways
        basic = base64.b64encode(f"user:{SECRET}".encode()).decode()
        assert echo.seen == [basic, basic]  # type: ignore[attr-defined]


async def test_proxy_credentials_are_never_shown(
    echo: ThreadingHTTPServer, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url.replace("://", f"://user:{SECRET}@"))
    async with client(url(echo, "ok")) as c:
        await c.chat("hi")
        assert_hidden(repr(c), repr(c._config))
    assert proxy.records()[0].proxy_auth  # the credentials did go to the proxy


@pytest.mark.parametrize(
    "proxy_url",
    [
        f"http://user:{SECRET}@127.0.0.1:{{port}}",  # nothing listens there
        f"socks5://user:{SECRET}@127.0.0.1:{{port}}",  # socksio may be missing, or no server
        f"ftp://user:{SECRET}@127.0.0.1:{{port}}",  # a scheme httpx cannot proxy through
        f"http://user:{SECRET}@[::1:{{port}}",  # not a URL
    ],
)
async def test_a_proxy_that_fails_shows_no_credentials(
    proxy_url: str, echo: ThreadingHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALL_PROXY", proxy_url.format(port=closed_port()))
    with pytest.raises(llmrelay.LLMError) as info:
        async with client(url(echo, "ok")) as c:
            await c.chat("hi")
    assert_hidden(shown(info.value))


def test_reprs_hide_every_credential(echo: ThreadingHTTPServer) -> None:
    from llmrelay._settings import resolve_config

    headers = {"authorization": f"Bearer {SECRET}", "x-gateway-auth": SECRET}
    config = resolve_config("anthropic", api_key=SECRET, headers=headers)
    c = llmrelay.AsyncClient(provider="anthropic", api_key=SECRET, headers=headers)
    assert_hidden(repr(config), str(config), repr(c), repr(c.provider), repr(c._config))


# -- 5. the CLI ---------------------------------------------------------------------------------


def _cli(*args: str, env: dict[str, str]) -> Any:
    from click.testing import CliRunner

    from llmrelay.cli._app import cli

    return CliRunner().invoke(cli, list(args), env=env)


@pytest.mark.parametrize("mode", ["401", "stream", "junk200"])
def test_llmrelay_ask_prints_no_key(mode: str, echo: ThreadingHTTPServer) -> None:
    result = _cli(
        "-vv", "-p", "openai", "--base-url", url(echo, mode), "-m", "m", "--max-retries", "0",
        "ask", "hi",
        env={"OPENAI_API_KEY": SECRET},
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert_hidden(result.stdout, result.stderr, repr(result.exception))


def test_llmrelay_ask_with_a_bad_key_names_the_variable(echo: ThreadingHTTPServer) -> None:
    result = _cli(
        "-p", "openai", "--base-url", url(echo, "ok"), "ask", "hi",
        env={"OPENAI_API_KEY": "é" + SECRET},
    )  # fmt: skip
    assert result.exit_code == 2
    assert "OPENAI_API_KEY" in result.stderr
    assert_hidden(result.stdout, result.stderr)


@pytest.mark.parametrize("mode", ["401", "500", "junk200"])
def test_llmrelay_batch_writes_no_key(mode: str, echo: ThreadingHTTPServer, tmp_path: Path) -> None:
    prompts = tmp_path / "in.jsonl"
    prompts.write_text('{"id": 1, "prompt": "a"}\n{"id": 2, "prompt": "b"}\n')
    out = tmp_path / "out.jsonl"
    result = _cli(
        "-vv", "-p", "openai", "--base-url", url(echo, mode), "-m", "m", "--max-retries", "0",
        "batch", str(prompts), "-o", str(out), "--no-progress",
        env={"OPENAI_API_KEY": SECRET},
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    written = out.read_text() if out.exists() else ""
    if mode != "401":  # an authentication error stops the batch before any result is written
        assert [json.loads(line)["ok"] for line in written.splitlines()] == [False, False]
    assert_hidden(written, result.stdout, result.stderr, repr(result.exception))


def test_a_real_cli_process_prints_no_key(echo: ThreadingHTTPServer) -> None:
    """A real process: its stderr is what a CI log keeps, warnings and tracebacks included."""
    from cli._helpers import run_cli, subprocess_env

    for env, mode in (
        ({"OPENAI_API_KEY": SECRET}, "401"),
        ({"OPENAI_API_KEY": SECRET + "\x01"}, "ok"),
    ):
        done = run_cli(
            "-vv", "-p", "openai", "--base-url", url(echo, mode), "-m", "m", "ask", "hi",
            env=subprocess_env(LLMRELAY_LOG="debug", **env),
        )  # fmt: skip
        assert done.returncode in (1, 2), done.stderr
        assert "Traceback" not in done.stderr
        assert_hidden(done.stdout, done.stderr)
