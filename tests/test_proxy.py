"""Proxies from the environment: HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and NO_PROXY (either case)
are honoured as httpx, curl and the official SDKs honour them. Every test goes through a real
forward proxy on 127.0.0.1 (tests/_proxy.py) to the loopback mock server, and reads what the
proxy saw."""

from __future__ import annotations

import importlib.util
import logging
import socket
from collections.abc import Iterator

import pytest

import llmrelay
from _proxy import ForwardProxy, Seen, forward_proxy
from llmrelay.mock import serve

pytestmark = pytest.mark.usefixtures("engine")

KEY = "sk-test-proxy-0123456789"
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "REQUEST_METHOD")


@pytest.fixture(autouse=True)
def _clean_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sets exactly the variables it is about."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with serve() as url:
        yield url


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    with forward_proxy() as running:
        yield running


def client(server: str, **kwargs: object) -> llmrelay.AsyncClient:
    return llmrelay.AsyncClient(
        provider="openai", base_url=f"{server}/v1", api_key=KEY, model="mock-echo", **kwargs
    )


async def chat_and_stream(server: str) -> tuple[str, str]:
    async with client(server) as c:
        reply = await c.chat("hi")
        async with c.stream("hello there") as stream:
            streamed = "".join([chunk.text async for chunk in stream])
            final = await stream.final()
    assert final.text == streamed
    return reply.text, streamed


def through_proxy(server: str, calls: int) -> list[Seen]:
    return [Seen("POST", f"{server}/v1/chat/completions")] * calls


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"])
async def test_chat_and_stream_go_through_the_proxy(
    variable: str, server: str, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, proxy.url)
    assert await chat_and_stream(server) == ("echo: hi", "echo: hello there")
    assert proxy.records() == through_proxy(server, 2)


async def test_a_proxy_without_a_scheme_is_http(
    server: str, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url.removeprefix("http://"))
    assert await chat_and_stream(server) == ("echo: hi", "echo: hello there")
    assert proxy.records() == through_proxy(server, 2)


@pytest.mark.parametrize(
    ("variables", "proxied"),
    [
        ({}, False),
        ({"HTTPS_PROXY": "{proxy}"}, False),  # an https proxy does not carry http:// URLs
        ({"HTTP_PROXY": "{proxy}", "NO_PROXY": "127.0.0.1"}, False),
        ({"HTTP_PROXY": "{proxy}", "no_proxy": "127.0.0.1"}, False),
        ({"ALL_PROXY": "{proxy}", "NO_PROXY": "*"}, False),
        ({"HTTP_PROXY": "{proxy}", "NO_PROXY": "example.com, 127.0.0.1"}, False),
        ({"HTTP_PROXY": "{proxy}", "NO_PROXY": "example.com,localhost"}, True),
        ({"HTTP_PROXY": "{proxy}", "NO_PROXY": ""}, True),
        ({"HTTP_PROXY": ""}, False),  # set but empty: no proxy
        # Lowercase wins: the uppercase one names a dead port, or is switched off.
        ({"HTTP_PROXY": "http://127.0.0.1:9", "http_proxy": "{proxy}"}, True),
        ({"HTTP_PROXY": "{proxy}", "http_proxy": ""}, False),
    ],
)
async def test_which_requests_the_proxy_carries(
    variables: dict[str, str],
    proxied: bool,
    server: str,
    proxy: ForwardProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value.format(proxy=proxy.url))
    assert await chat_and_stream(server) == ("echo: hi", "echo: hello there")
    assert proxy.records() == (through_proxy(server, 2) if proxied else [])


def test_the_sync_client_goes_through_the_proxy(
    server: str, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    with llmrelay.Client(
        provider="openai", base_url=f"{server}/v1", api_key=KEY, model="mock-echo"
    ) as c:
        assert c.chat("hi").text == "echo: hi"
        with c.stream("hello there") as stream:
            assert "".join(chunk.text for chunk in stream) == "echo: hello there"
        assert [m.id for m in c.models()][:1] == ["mock-echo"]
    assert proxy.records() == [
        *through_proxy(server, 2),
        Seen("GET", f"{server}/v1/models"),
    ]


async def test_a_concurrent_batch_goes_through_the_proxy(
    server: str, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    async with client(server, max_concurrency=3) as c:
        replies = await c.batch([f"n{i}" for i in range(12)])
    assert [r.text for r in replies] == [f"echo: n{i}" for i in range(12)]
    assert proxy.records() == through_proxy(server, 12)


async def test_https_urls_are_tunnelled_through_https_proxy(
    server: str, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The mock speaks plain HTTP, so the TLS handshake inside the tunnel fails: what counts is
    # that the client asked the proxy for a tunnel, and that the failure is a typed error.
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    tls_url = server.replace("http://", "https://")
    async with client(tls_url, max_retries=0) as c:
        with pytest.raises(llmrelay.APIConnectionError):
            await c.chat("hi")
    assert proxy.records() == [Seen("CONNECT", tls_url.removeprefix("https://"))]


async def test_proxy_credentials_are_sent_and_never_shown(
    server: str,
    proxy: ForwardProxy,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("LLMRELAY_LOG", "debug")
    monkeypatch.setenv("HTTP_PROXY", proxy.url.replace("://", "://alice:proxy-pass-42@"))
    caplog.set_level(logging.DEBUG)  # every logger: llmrelay's, httpx's, httpcore's
    c = client(server)
    async with c:
        assert (await c.chat("hi")).text == "echo: hi"
        async with c.stream("hello there") as stream:
            assert "".join([chunk.text async for chunk in stream]) == "echo: hello there"
    shown = [caplog.text, *capsys.readouterr(), repr(proxy.records()), repr(c)]
    for secret in (KEY, "proxy-pass-42"):
        assert all(secret not in text for text in shown)
    assert [seen.proxy_auth for seen in proxy.records()] == [True, True]
    assert "POST /v1/chat/completions" in caplog.text  # the log did record the calls


async def test_an_unreachable_proxy_is_a_typed_connection_error(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("HTTP_PROXY", f"http://bob:proxy-pass-42@127.0.0.1:{port}")
    async with client(server, max_retries=0) as c:
        with pytest.raises(llmrelay.APIConnectionError) as caught:
            await c.chat("hi")
    assert "proxy-pass-42" not in str(caught.value)
    assert KEY not in str(caught.value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("ftp://127.0.0.1:1", "proxy"),
        pytest.param(
            "socks5://127.0.0.1:1",
            "socksio",
            marks=pytest.mark.skipif(
                importlib.util.find_spec("socksio") is not None, reason="socksio is installed"
            ),
        ),
    ],
)
def test_an_unusable_proxy_url_is_a_config_error(
    value: str, message: str, server: str, monkeypatch: pytest.MonkeyPatch, engine: str
) -> None:
    if value.startswith("socks5") and engine != "httpx":
        message = "supports http:// and https:// proxies, not socks5://"
        if engine == "reqwest":  # reqwest speaks SOCKS itself
            pytest.skip("reqwest takes a SOCKS proxy")
    monkeypatch.setenv("ALL_PROXY", value)
    with pytest.raises(llmrelay.ConfigError, match=message):
        client(server)


async def test_the_mock_provider_never_uses_a_proxy(
    proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALL_PROXY", proxy.url)
    async with llmrelay.AsyncClient(provider="mock") as c:
        assert (await c.chat("hi")).text == "echo: hi"
    assert proxy.records() == []


async def test_a_given_http_client_is_used_as_it_is(
    server: str, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    import httpx

    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    async with httpx.AsyncClient(trust_env=False) as http, client(server, http_client=http) as c:
        assert (await c.chat("hi")).text == "echo: hi"
    assert proxy.records() == []
