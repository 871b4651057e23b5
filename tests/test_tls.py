"""TLS trust, as a user behind TLS inspection meets it: a loopback HTTPS server whose certificate
comes from a throwaway CA (trustme), reached by the real client (its own pool, or httpx's pools
when a proxy from the environment applies). Untrusted by default; trusted through SSL_CERT_FILE /
SSL_CERT_DIR, `verify=` a context, a path or "system", or not checked at all with `verify=False`.
"""

from __future__ import annotations

import json
import re
import shutil
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme

import llmrelay
from _proxy import ForwardProxy, forward_proxy
from llmrelay._settings import CABundle
from llmrelay.senders._pool import tls_context

pytestmark = pytest.mark.usefixtures("engine")

KEY = "sk-test-tls-0123456789"
# How a refused certificate reads: OpenSSL's words (httpx, aiohttp), rustls's (reqwest).
UNTRUSTED = "CERTIFICATE_VERIFY_FAILED|invalid peer certificate: UnknownIssuer"
ENV = ("SSL_CERT_FILE", "SSL_CERT_DIR", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


def completion(text: str) -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-tls",
            "object": "chat.completion",
            "model": "tls-model",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
    ).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as an API server

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        prompt = json.loads(self.rfile.read(length))["messages"][-1]["content"]
        body = completion(f"tls: {prompt}")
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that refuses our certificate ends its handshake: expected here


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server(ca: trustme.CA) -> Iterator[str]:
    """An OpenAI-style server on https://127.0.0.1:PORT/v1, its certificate from `ca`."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sets exactly the variables it is about."""
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture
def bundle(ca: trustme.CA, tmp_path: Path) -> Path:
    """The CA as a PEM file, as a company hands it to its people."""
    path = tmp_path / "corp-ca.pem"
    path.write_bytes(ca.cert_pem.bytes())
    return path


@pytest.fixture
def hashed_dir(ca: trustme.CA, tmp_path: Path) -> Path:
    """The CA in a directory of hashed names (``c_rehash``), for SSL_CERT_DIR / capath."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to name a certificate by its subject hash")
    pem = tmp_path / "ca.pem"
    pem.write_bytes(ca.cert_pem.bytes())
    found = subprocess.run(
        [openssl, "x509", "-hash", "-noout", "-in", str(pem)],
        capture_output=True,
        text=True,
        check=True,
    )
    directory = tmp_path / "certs"
    directory.mkdir()
    (directory / f"{found.stdout.strip()}.0").write_bytes(ca.cert_pem.bytes())
    return directory


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    with forward_proxy() as running:
        yield running


def trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


async def ask(server: str, **kwargs: Any) -> str:
    async with llmrelay.AsyncClient(
        provider="openai", base_url=server, api_key=KEY, model="m", max_retries=0, **kwargs
    ) as client:
        return (await client.chat("hi")).text


# Each path a request can take: our own pool, or httpx's pools behind a proxy (a CONNECT tunnel).
ROUTES = ["pool", "proxy"]


@pytest.fixture(params=ROUTES)
def route(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param == "proxy":
        with forward_proxy() as running:
            monkeypatch.setenv("HTTPS_PROXY", running.url)
            yield request.param
            assert [seen.method for seen in running.records()], "the proxy carried nothing"
            assert {seen.method for seen in running.records()} == {"CONNECT"}
    else:
        yield request.param


async def test_an_untrusted_certificate_is_a_connection_error_that_says_so(
    server: str, route: str
) -> None:
    with pytest.raises(llmrelay.APIConnectionError, match=UNTRUSTED):
        await ask(server)


async def test_ssl_cert_file_is_trusted(
    server: str, route: str, bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    assert await ask(server) == "tls: hi"


async def test_ssl_cert_dir_is_trusted(
    server: str, route: str, hashed_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_DIR", str(hashed_dir))
    assert await ask(server) == "tls: hi"


@pytest.mark.parametrize("form", ["context", "str", "path", "directory"])
async def test_verify_names_what_to_trust(
    server: str, route: str, form: str, ca: trustme.CA, bundle: Path, request: Any, engine: str
) -> None:
    if engine == "reqwest" and form == "context":  # rustls: no ssl.SSLContext; a path works
        with pytest.raises(llmrelay.ConfigError, match=r"cannot use an ssl\.SSLContext"):
            await ask(server, verify=trusting(ca))
        form = "path"
    verify: Any = {
        "context": lambda: trusting(ca),
        "str": lambda: str(bundle),
        "path": lambda: bundle,
        "directory": lambda: request.getfixturevalue("hashed_dir"),
    }[form]()
    assert await ask(server, verify=verify) == "tls: hi"


async def test_verify_false_checks_nothing(server: str, route: str) -> None:
    assert await ask(server, verify=False) == "tls: hi"


async def test_the_argument_wins_over_the_variable(
    server: str, bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = trustme.CA()
    wrong = tmp_path / "other-ca.pem"
    wrong.write_bytes(other.cert_pem.bytes())
    monkeypatch.setenv("SSL_CERT_FILE", str(wrong))
    assert await ask(server, verify=bundle) == "tls: hi"
    with pytest.raises(llmrelay.APIConnectionError, match=UNTRUSTED):
        await ask(server)  # the variable's CA did not sign the server's certificate


def test_the_sync_client_takes_verify(
    server: str, ca: trustme.CA, bundle: Path, engine: str
) -> None:
    verify = bundle if engine == "reqwest" else trusting(ca)
    with llmrelay.Client(
        provider="openai", base_url=server, api_key=KEY, model="m", verify=verify
    ) as client:
        assert client.chat("sync").text == "tls: sync"


def test_the_cli_honours_ssl_cert_file(
    server: str, bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from llmrelay.cli._app import cli

    monkeypatch.chdir(tmp_path)  # no llmrelay.toml takes part
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))

    args = ["-p", "openai", "--base-url", server, "-m", "m", "--max-retries", "0", "ask", "hi"]
    env = {"OPENAI_API_KEY": KEY, "NO_COLOR": "1"}
    refused = CliRunner().invoke(cli, args, env=env)
    assert refused.exit_code != 0
    assert re.search(UNTRUSTED, refused.output)
    trusted = CliRunner().invoke(cli, args, env={**env, "SSL_CERT_FILE": str(bundle)})
    assert (trusted.exit_code, trusted.stdout.strip()) == (0, "tls: hi")


# -- the OS trust store -------------------------------------------------------------------------


@pytest.fixture
def fresh_contexts() -> Iterator[None]:
    """The shared contexts built anew: truststore adds the OS store's certificates to its
    context on each connection, and they stay; this test must start from a clean one."""
    from llmrelay.senders._pool import _shared_context

    _shared_context.cache_clear()
    yield
    _shared_context.cache_clear()


@pytest.mark.usefixtures("fresh_contexts")
async def test_verify_system_uses_the_os_trust_store(
    server: str, route: str, bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    truststore = pytest.importorskip("truststore")
    assert isinstance(tls_context("system"), truststore.SSLContext)
    # Our CA is in no OS store: refused, which shows the system store (not certifi's, not ours)
    # is what decides.
    with pytest.raises(llmrelay.APIConnectionError, match=UNTRUSTED):
        await ask(server, verify="system")
    if not sys.platform.startswith("linux"):
        pytest.skip("only on Linux can a test add a CA to the OS store (OpenSSL's SSL_CERT_FILE)")
    # On Linux the OS store is OpenSSL's default locations, which SSL_CERT_FILE replaces: the
    # same as an administrator adding the company CA to the system bundle.
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    assert await ask(server, verify="system") == "tls: hi"


def test_verify_system_without_truststore_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "truststore", None)  # as if it were not installed
    with pytest.raises(llmrelay.ConfigError, match=r'pip install "llmrelay\[truststore\]"'):
        llmrelay.AsyncClient(provider="openai", api_key=KEY, verify="system")


# -- mistakes, each a ConfigError when the client is made ----------------------------------------


@pytest.mark.parametrize(
    ("variable", "message"),
    [
        ("SSL_CERT_FILE", r"environment \(SSL_CERT_FILE\): expected an existing CA bundle"),
        ("SSL_CERT_DIR", r"environment \(SSL_CERT_DIR\): expected an existing CA bundle"),
    ],
)
def test_a_variable_naming_nothing_is_a_config_error(
    variable: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, str(tmp_path / "missing.pem"))
    with pytest.raises(llmrelay.ConfigError, match=message):
        llmrelay.AsyncClient(provider="openai", api_key=KEY)


def test_the_mock_provider_ignores_the_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "missing.pem"))
    with llmrelay.Client(provider="mock") as client:  # it opens no TLS connection
        assert client.chat("hi").text == "echo: hi"


def test_a_file_without_certificates_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty.pem"
    empty.write_text("not a certificate\n")
    monkeypatch.setenv("SSL_CERT_FILE", str(empty))
    with pytest.raises(
        llmrelay.ConfigError,
        match=r"environment \(SSL_CERT_FILE\): cannot load CA certificates from .*empty\.pem",
    ):
        llmrelay.AsyncClient(provider="openai", api_key=KEY)
    with pytest.raises(llmrelay.ConfigError, match=r"verify: cannot load CA certificates"):
        llmrelay.AsyncClient(provider="openai", api_key=KEY, verify=empty)


@pytest.mark.parametrize(
    ("verify", "message"),
    [
        ("/no/such/ca.pem", "verify must be an existing CA bundle file or directory"),
        ("", 'verify must be True, False, "system", an ssl.SSLContext or the path'),
        (1, 'verify must be True, False, "system", an ssl.SSLContext or the path'),
    ],
)
def test_a_bad_verify_is_a_config_error(verify: Any, message: str) -> None:
    with pytest.raises(llmrelay.ConfigError, match=message):
        llmrelay.AsyncClient(provider="openai", api_key=KEY, verify=verify)


async def test_verify_with_your_own_http_client_is_a_config_error(ca: trustme.CA) -> None:
    import httpx

    async with httpx.AsyncClient(verify=trusting(ca)) as http:
        with pytest.raises(llmrelay.ConfigError, match="set it on your http_client"):
            llmrelay.AsyncClient(provider="openai", api_key=KEY, http_client=http, verify=False)


async def test_your_own_http_client_keeps_its_tls_settings(
    server: str, ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import httpx

    other = tmp_path / "other-ca.pem"
    other.write_bytes(trustme.CA().cert_pem.bytes())
    monkeypatch.setenv("SSL_CERT_FILE", str(other))  # for our connections, not for yours
    async with httpx.AsyncClient(verify=trusting(ca)) as http:
        assert await ask(server, http_client=http) == "tls: hi"


# -- one context per distinct value ---------------------------------------------------------------


def test_each_distinct_context_is_built_once(bundle: Path, ca: trustme.CA) -> None:
    own = trusting(ca)
    assert tls_context(own) is own  # used as given
    assert tls_context(True) is tls_context(True)
    assert tls_context(False) is tls_context(False)
    assert tls_context(CABundle(str(bundle))) is tls_context(CABundle(str(bundle)))
    assert tls_context(CABundle(str(bundle))) is not tls_context(True)


def test_where_the_trust_came_from_is_recorded(
    bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmrelay._settings import resolve_config

    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    config = resolve_config("openai", api_key=KEY)
    assert config.verify == CABundle(str(bundle))
    assert config.sources["verify"] == "environment (SSL_CERT_FILE)"
    assert resolve_config("openai", api_key=KEY, verify=False).sources["verify"] == "argument"
    assert resolve_config("openai", api_key=KEY, environ={}).verify is True
