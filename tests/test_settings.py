"""The settings resolver: one precedence for every field (argument > environment > profile >
the preset's default), the environment read only from the mapping it is given, and each check
raising one `ConfigError` worded the same from `AsyncClient(...)` and `from_profile()`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

import llmrelay
from llmrelay import AsyncClient, ConfigError, RateLimit, RetryPolicy, Timeout
from llmrelay._settings import ClientConfig, resolve_config, resolve_profile_config
from llmrelay.mock import MockTransport
from llmrelay.providers import get_provider, preset_names


@dataclasses.dataclass(frozen=True)
class Field:
    """One setting's four layers: what each gives, and what the client ends up with."""

    name: str
    argument: Any
    env: tuple[str, str] | None  # (variable, value), for the fields the environment can set
    toml: str | None  # the profile line
    expected: dict[str, Any]  # layer on top -> value read back
    read: Callable[[ClientConfig], Any]
    base: dict[str, Any] = dataclasses.field(default_factory=lambda: {"provider": "mock"})
    source: str = ""  # the `sources` key, when not the field's name
    default_source: str = "default"


FIELDS = [
    Field(
        "provider",
        "mock",
        ("LLMRELAY_PROVIDER", "vllm"),
        'provider = "ollama"',
        {"argument": "mock", "environment": "vllm", "profile": "ollama", "default": "openai"},
        lambda c: c.provider.name,
        base={},
    ),
    Field(
        "model",
        "m-arg",
        ("LLMRELAY_MODEL", "m-env"),
        'model = "m-file"',
        {"argument": "m-arg", "environment": "m-env", "profile": "m-file", "default": "mock-echo"},
        lambda c: c.model,
        default_source="preset",
    ),
    Field(
        "base_url",
        "http://arg.test/v1",
        ("OPENAI_BASE_URL", "http://env.test/v1"),
        'base_url = "http://file.test/v1"',
        {
            "argument": "http://arg.test/v1",
            "environment": "http://env.test/v1",
            "profile": "http://file.test/v1",
            "default": "https://api.openai.com/v1",
        },
        # The provider the adapters see carries the same URL.
        lambda c: c.base_url if c.provider.base_url == c.base_url else "mismatch",
        base={"provider": "openai"},
        default_source="preset",
    ),
    Field(
        "api_key",
        "k-arg",
        ("VLLM_API_KEY", "k-env"),
        'api_key = "k-file"',
        {
            "argument": ("k-arg", "Bearer k-arg"),
            "environment": ("k-env", "Bearer k-env"),
            "profile": ("k-file", "Bearer k-file"),
            "default": (None, None),
        },
        lambda c: (c.api_key, c.headers.get("authorization")),
        base={"provider": "vllm"},
    ),
    Field(
        "timeout",
        7,
        None,
        "timeout = { read = 8 }",
        {
            "argument": Timeout(total=7.0),
            "profile": Timeout(read=8.0),
            "default": Timeout(),
        },
        lambda c: c.timeout,
    ),
    Field(
        "max_retries",
        5,
        None,
        "max_retries = 6",
        {"argument": 5, "profile": 6, "default": 2},
        lambda c: c.retry.max_retries,
        source="retry",
    ),
    Field(
        "max_concurrency",
        3,
        None,
        "max_concurrency = 4",
        {"argument": 3, "profile": 4, "default": 16},
        lambda c: c.max_concurrency,
    ),
    Field(
        "rate_limit",
        RateLimit(requests_per_minute=1),
        None,
        "rate_limit = { tokens_per_minute = 2 }",
        {
            "argument": RateLimit(requests_per_minute=1),
            "profile": RateLimit(tokens_per_minute=2),
            "default": None,
        },
        lambda c: c.rate_limit,
    ),
]
LAYERS = ("argument", "environment", "profile", "default")
CASES = [
    pytest.param(field, top, id=f"{field.name}-from-{top}")
    for field in FIELDS
    for top in LAYERS
    if top in field.expected
]


@pytest.mark.parametrize(("field", "top"), CASES)
def test_each_field_comes_from_the_highest_layer_that_has_it(
    field: Field, top: str, tmp_path: Path
) -> None:
    below = LAYERS[LAYERS.index(top) :]  # the layer on top and every layer under it
    env = {"OPENAI_API_KEY": "k-openai", "XDG_CONFIG_HOME": str(tmp_path / "none")}
    lines = ["[profiles.p]"]
    if "environment" in below and field.env is not None:
        env[field.env[0]] = field.env[1]
    if "profile" in below and field.toml is not None:
        lines.append(field.toml)
    (tmp_path / "llmrelay.toml").write_text("\n".join(lines) + "\n")
    arguments = dict(field.base)
    if top == "argument":
        arguments[field.name] = field.argument
    config = resolve_profile_config("p", cwd=tmp_path, environ=env, **arguments)
    assert field.read(config) == field.expected[top]
    expected_source = {
        "argument": "argument",
        "environment": f"environment ({field.env[0]})" if field.env else "",
        "profile": f"llmrelay.toml: profiles.p.{field.name}",
        "default": field.default_source,
    }[top]
    assert config.sources[field.source or field.name] == expected_source


def test_tables_merge_entry_by_entry_with_the_argument_winning(tmp_path: Path) -> None:
    (tmp_path / "llmrelay.toml").write_text(
        "[profiles.p]\n"
        'provider = "mock"\n'
        'headers = { "x-a" = "file", "x-b" = "file" }\n'
        'prices = { "m1" = [1, 2], "m2" = [3, 4] }\n'
    )
    config = resolve_profile_config(
        "p", cwd=tmp_path, environ={}, headers={"X-B": "arg"}, prices={"m2": (5.0, 6.0)}
    )
    assert (config.headers["x-a"], config.headers["x-b"]) == ("file", "arg")
    assert config.prices == {"m1": (1.0, 2.0), "m2": (5.0, 6.0)}


def test_a_plain_client_reads_no_profile_and_no_llmrelay_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "llmrelay.toml").write_text('default_profile = "p"\n[profiles.p]\nmodel = "f"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LLMRELAY_MODEL", "from-env")
    assert AsyncClient(provider="mock").model == "mock-echo"
    assert AsyncClient.from_profile(provider="mock").model == "from-env"


def test_the_final_headers_layer_the_user_agent_the_login_and_the_users_own() -> None:
    config = resolve_config(
        "anthropic",
        api_key="sk-ant-secret",
        headers={"Anthropic-Version": "2099-01-01", "X-Team": "search"},
        environ={},
    )
    assert config.headers == {
        "user-agent": "llmrelay/0.1",
        "accept-encoding": "gzip, deflate",
        "anthropic-version": "2099-01-01",  # the user's header wins, whatever its case
        "x-api-key": "sk-ant-secret",
        "x-team": "search",
    }
    text = repr(config)
    assert "sk-ant-secret" not in text
    assert "x-team" in text and "'anthropic'" in text
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.model = "other"  # type: ignore[misc]


# -- the environment: read from the mapping the resolver is given, never from os.environ ------


def test_a_preset_reads_its_own_variables_from_the_mapping(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "wrong-host:1")
    given = {"OLLAMA_HOST": "gpu-box.lan:11500", "XDG_CONFIG_HOME": str(tmp_path)}
    assert resolve_config("ollama", environ=given).base_url == "http://gpu-box.lan:11500/v1"
    client = AsyncClient.from_profile(provider="ollama", cwd=tmp_path, environ=given)
    assert client.base_url == "http://gpu-box.lan:11500/v1"
    assert get_provider("ollama", given).base_url == "http://gpu-box.lan:11500/v1"


@pytest.mark.parametrize(
    ("name", "given", "expected"),
    [
        (
            "azure",
            {
                "AZURE_OPENAI_ENDPOINT": "https://good.openai.azure.com/openai/",
                "AZURE_OPENAI_AD_TOKEN": "tok-good",
                "OPENAI_API_VERSION": "2024-06-01",
            },
            {
                "base_url": "https://good.openai.azure.com",
                "authorization": "Bearer tok-good",
                "options": {"api_version": "2024-06-01", "auth": "bearer"},
            },
        ),
        (
            "anthropic",
            {"ANTHROPIC_AUTH_TOKEN": "tok-good"},
            {
                "base_url": "https://api.anthropic.com/v1",
                "authorization": "Bearer tok-good",
                "options": None,
            },
        ),
    ],
)
def test_a_family_preset_chooses_from_the_mapping(
    name: str, given: dict[str, str], expected: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The process environment says otherwise: it must not be read.
    monkeypatch.setenv("ANTHROPIC_API_KEY", "poison-key")
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "poison-key")
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://poison.example")
    monkeypatch.setenv("OPENAI_API_VERSION", "1999-01-01")
    config = resolve_config(name, environ=given)
    assert config.base_url == expected["base_url"]
    assert config.headers["authorization"] == expected["authorization"]
    if expected["options"] is not None:
        assert {k: config.provider.options[k] for k in expected["options"]} == expected["options"]


def test_no_preset_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    names = preset_names()
    key_vars = {var for name in names for var in get_provider(name, {}).api_key_env}
    url_vars = {var for name in names for var in get_provider(name, {}).base_url_env}
    extra = ("ANTHROPIC_AUTH_TOKEN", "AZURE_OPENAI_AD_TOKEN", "OPENAI_API_VERSION", "OLLAMA_HOST")
    for var in (*key_vars, *url_vars, *extra):
        monkeypatch.setenv(var, "https://poison.example/v1")
    given = {var: "good-key" for var in key_vars}
    given.update({var: "https://good.example/v1" for var in url_vars})
    given["OLLAMA_HOST"] = "good.example:1"
    for name in names:
        config = resolve_config(name, environ=given)
        seen = [config.base_url, config.api_key or "", *config.headers.values()]
        assert not [value for value in seen if "poison" in value], name
        assert config.sources["base_url"] in ("preset", *(f"environment ({v})" for v in url_vars))


def test_the_key_variable_is_read_from_the_mapping_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-process")
    with pytest.raises(ConfigError, match="no API key for provider 'openai'"):
        resolve_config("openai", environ={})
    assert resolve_config("openai", environ={"OPENAI_API_KEY": "sk-given"}).api_key == "sk-given"


@pytest.mark.parametrize(
    ("environ", "proxied"),
    [
        ({"HTTPS_PROXY": "http://proxy:3128"}, True),
        ({"ALL_PROXY": "http://proxy:3128"}, True),
        ({"HTTP_PROXY": "http://proxy:3128"}, False),  # an https base URL
        ({"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": "api.openai.com"}, False),
        ({"HTTPS_PROXY": "http://proxy:3128", "no_proxy": "openai.com"}, False),
        ({"HTTPS_PROXY": "http://proxy:3128", "https_proxy": ""}, False),  # lowercase wins
        ({}, False),
    ],
)
def test_whether_a_proxy_applies_is_read_from_the_mapping(
    monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], proxied: bool
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://process-proxy:1")  # never read: the mapping is
    config = resolve_config("openai", environ={"OPENAI_API_KEY": "sk-x", **environ})
    assert config.proxy is proxied


def test_the_mock_never_goes_through_a_proxy() -> None:
    assert not resolve_config("mock", environ={"ALL_PROXY": "http://proxy:3128"}).proxy


# -- each check: written once, one error, the same words from both entry points ---------------

BAD_ARGUMENTS = [
    ({"max_concurrency": 0}, "max_concurrency must be a positive integer, got 0"),
    ({"max_concurrency": True}, "max_concurrency must be a positive integer, got True"),
    ({"max_retries": -1}, "max_retries must be a whole number >= 0, got -1"),
    ({"max_retries": 1, "retry": RetryPolicy()}, "give either max_retries or retry, not both"),
    ({"retry": 3}, "retry must be a RetryPolicy, got 3"),
    (
        {"base_url": "ftp://files.test"},
        "base_url must be a URL starting with http:// or https://, got 'ftp://files.test'",
    ),
    ({"timeout": "soon"}, "timeout must be a Timeout or a number of seconds, got 'soon'"),
    ({"timeout": 0}, "timeout must be a Timeout or a number of seconds, got 0"),
    (
        {"timeout": {"idle": 1}},
        "timeout['idle']: unknown key (allowed: connect, read, total)",
    ),
    ({"rate_limit": "fast"}, "rate_limit must be a RateLimit, got 'fast'"),
    (
        {"rate_limit": {"requests_per_minute": -1}},
        "rate_limit['requests_per_minute'] must be a positive number, got -1",
    ),
    ({"headers": {"x-team": 1}}, "headers['x-team'] must be a string, got 1"),
    ({"headers": ["x"]}, "headers must be a table of header names to strings, got list"),
    (
        {"prices": {"m": (1.0,)}},
        "prices['m'] must be [prompt, completion] prices per million tokens (two numbers >= 0), "
        "got (1.0,)",
    ),
    ({"provider": 3}, "provider must be a preset name or a Provider, got 3"),
    ({"model": 3}, "model must be a non-empty string, got 3"),
    ({"api_key": b"sk-secret-bytes"}, "api_key must be a non-empty string, got a bytes"),
    (
        {"provider": "openai"},
        "no API key for provider 'openai': set OPENAI_API_KEY in the environment or pass "
        "api_key=... (provider='mock' needs no key)",
    ),
    (
        {"provider": "azure", "api_key": "k"},
        "no base URL for provider 'azure': set AZURE_OPENAI_ENDPOINT in the environment or "
        "pass base_url=...",
    ),
]


@pytest.mark.parametrize(
    ("arguments", "message"), BAD_ARGUMENTS, ids=[m[:40] for _, m in BAD_ARGUMENTS]
)
def test_a_bad_setting_reads_the_same_from_both_entry_points(
    arguments: dict[str, Any], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no llmrelay.toml anywhere
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    arguments = {"provider": "mock", **arguments}
    errors = []
    for build in (AsyncClient, AsyncClient.from_profile):
        with pytest.raises(ConfigError) as info:
            build(**arguments)
        errors.append(info.value)
    assert [str(e) for e in errors] == [message, message]
    assert all(e.__context__ is None and e.__cause__ is None for e in errors)  # raised once
    assert "sk-secret" not in message


def test_an_unknown_provider_reads_the_same_from_both_entry_points(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    messages = []
    for build in (AsyncClient, AsyncClient.from_profile):
        with pytest.raises(ConfigError) as info:
            build(provider="nosuch")
        messages.append(str(info.value))
    assert messages[0] == messages[1]
    assert messages[0].startswith("unknown provider 'nosuch'; built-in presets are: anthropic")


@pytest.mark.parametrize(
    ("toml", "env", "message"),
    [
        (
            "",
            {"OPENAI_BASE_URL": "api.example.com", "OPENAI_API_KEY": "k"},
            "environment (OPENAI_BASE_URL): expected a URL starting with http:// or https://, "
            "got 'api.example.com'",
        ),
        (
            'base_url = "${HOST}"',
            {"HOST": "gpu.lan", "OPENAI_API_KEY": "k"},
            "llmrelay.toml: profiles.p.base_url: expected a URL starting with http:// or "
            "https://, got 'gpu.lan'",
        ),
        (
            'api_key = "${EMPTY}"',
            {"EMPTY": ""},  # no OPENAI_API_KEY: it would win over the file's key
            "llmrelay.toml: profiles.p.api_key: expected a non-empty string, got ''",
        ),
        (
            'provider = "nosuch"',
            {},
            "llmrelay.toml: profiles.p.provider: unknown provider 'nosuch'",
        ),
    ],
)
def test_values_from_the_environment_and_the_file_are_checked_and_named(
    toml: str, env: dict[str, str], message: str, tmp_path: Path
) -> None:
    lines = ["[profiles.p]", toml] + ([] if "provider" in toml else ['provider = "openai"'])
    (tmp_path / "llmrelay.toml").write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError) as info:
        resolve_profile_config("p", cwd=tmp_path, environ=env)
    assert str(info.value).startswith(message)


def test_a_url_with_credentials_is_masked_in_the_error() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_config("mock", base_url="ftp://user:hunter2@files.test", environ={})
    assert "hunter2" not in str(info.value) and "files.test" in str(info.value)


@pytest.mark.anyio
async def test_headers_given_as_pairs_are_refused_without_showing_them() -> None:
    # httpx takes a list of (name, value) pairs; llmrelay wants a table, and must not quote the
    # pairs back: a key is usually among them.
    pairs = [("Authorization", "Bearer sk-SECRET-0123")]
    with pytest.raises(ConfigError, match="headers must be a table") as built:
        llmrelay.AsyncClient("mock", headers=pairs)  # type: ignore[arg-type]
    async with llmrelay.AsyncClient("mock") as client:
        with pytest.raises(ConfigError, match="extra_headers must be a table") as called:
            await client.chat("hi", extra_headers=pairs)  # type: ignore[arg-type]
    assert "SECRET" not in str(built.value) + str(called.value)


# -- from_profile builds exactly what the resolver says -----------------------------------------


async def test_from_profile_passes_the_http_client_through(tmp_path: Path) -> None:
    (tmp_path / "llmrelay.toml").write_text(
        '[profiles.p]\nprovider = "openai"\nbase_url = "http://mock.test/v1"\nmodel = "mock-echo"\n'
    )
    async with httpx.AsyncClient(transport=MockTransport()) as http:
        client = AsyncClient.from_profile(
            "p", cwd=tmp_path, environ={"OPENAI_API_KEY": "k"}, http_client=http, max_retries=0
        )
        async with client:
            reply = await client.chat("through the profile")
    assert reply.text == "echo: through the profile"
    assert (client.provider.name, client.base_url, client.retry.max_retries) == (
        "openai",
        "http://mock.test/v1",
        0,
    )
    assert isinstance(client, llmrelay.AsyncClient)


@pytest.mark.parametrize("bad", [5, "http://proxy", object()])
def test_an_http_client_that_is_not_an_httpx_async_client_is_a_config_error(bad: object) -> None:
    with pytest.raises(ConfigError, match=r"http_client must be an httpx\.AsyncClient"):
        llmrelay.AsyncClient(provider="mock", http_client=bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"http_client must be an httpx\.AsyncClient"):
        llmrelay.AsyncClient(  # on a fallback route too
            provider="mock",
            fallbacks=[llmrelay.Route(provider="mock", http_client=bad)],
        )
