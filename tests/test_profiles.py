"""Config profiles: where the file is found, precedence, ${VAR} interpolation, and error messages
that name the file, the key and what was expected. The resolver itself (every field's
precedence, its checks) is tested in test_settings.py."""

from __future__ import annotations

from pathlib import Path

import pytest

import llmrelay
from llmrelay._profiles import find_config_file, load_config, select_profile
from llmrelay._settings import resolve_config, resolve_profile_config

WORK = """
default_profile = "work"

[profiles.work]
provider = "mock"
model = "mock-echo-large"
base_url = "http://mock.test/v1"
api_key = "${WORK_KEY}"
timeout = 30
max_retries = 4
max_concurrency = 8
rate_limit = { requests_per_minute = 600, tokens_per_minute = 100000 }
headers = { "x-team" = "search", "x-mock-chunks" = "3" }

[profiles.other]
provider = "openai"
api_key = "${NOT_SET_ANYWHERE}"
"""


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A working directory holding llmrelay.toml."""
    (tmp_path / "llmrelay.toml").write_text(WORK)
    return tmp_path


def test_the_default_profile_fills_every_setting(home: Path) -> None:
    s = resolve_profile_config(cwd=home, environ={"WORK_KEY": "k-file"})
    assert (s.provider.name, s.model, s.base_url, s.api_key) == (
        "mock",
        "mock-echo-large",
        "http://mock.test/v1",
        "k-file",
    )
    assert s.provider.base_url == "http://mock.test/v1"  # the adapter sees the profile's URL
    assert s.timeout == llmrelay.Timeout(total=30.0)
    assert (s.retry.max_retries, s.max_concurrency) == (4, 8)
    assert s.rate_limit == llmrelay.RateLimit(requests_per_minute=600, tokens_per_minute=100000)
    assert {k: s.headers[k] for k in ("x-team", "x-mock-chunks")} == {
        "x-team": "search",
        "x-mock-chunks": "3",
    }
    assert s.sources["model"] == "llmrelay.toml: profiles.work.model"
    assert s.sources["retry"] == "llmrelay.toml: profiles.work.max_retries"
    assert "k-file" not in repr(s)  # the key never shows in a repr


def test_environment_beats_the_file_and_arguments_beat_both(home: Path) -> None:
    env = {"WORK_KEY": "k-file", "LLMRELAY_MODEL": "from-env", "LLMRELAY_PROVIDER": "mock"}
    s = resolve_profile_config(cwd=home, environ=env)
    assert s.model == "from-env" and s.sources["model"] == "environment (LLMRELAY_MODEL)"
    s = resolve_profile_config(cwd=home, environ=env, model="from-arg", max_concurrency=2)
    assert (s.model, s.max_concurrency) == ("from-arg", 2)
    assert s.sources["model"] == "argument"


def test_the_presets_key_and_base_url_variables_beat_the_file(home: Path) -> None:
    env = {
        "NOT_SET_ANYWHERE": "k-file",
        "OPENAI_API_KEY": "k-env",
        "OPENAI_BASE_URL": "http://e/v1",
    }
    s = resolve_profile_config("other", cwd=home, environ=env)
    assert (s.api_key, s.base_url) == ("k-env", "http://e/v1")
    assert s.sources["api_key"] == "environment (OPENAI_API_KEY)"


def test_defaults_apply_without_any_file(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "none"), "OPENAI_API_KEY": "k"}
    assert select_profile(cwd=tmp_path, environ=env) is None
    s = resolve_profile_config(cwd=tmp_path, environ=env)
    assert s.provider.name == "openai" and s.model is None
    assert s == resolve_config(environ=env)  # no file: what a plain client gets


def test_profile_choice_argument_then_env_then_default(home: Path) -> None:
    env = {"WORK_KEY": "k", "NOT_SET_ANYWHERE": "k2"}

    def chosen(name: str | None, environ: dict[str, str]) -> str | None:
        profile = select_profile(name, cwd=home, environ=environ)
        return None if profile is None else profile.name

    assert chosen(None, env) == "work"
    assert chosen(None, {**env, "LLMRELAY_PROFILE": "other"}) == "other"
    assert chosen("work", {**env, "LLMRELAY_PROFILE": "other"}) == "work"
    config = resolve_profile_config(cwd=home, environ={**env, "LLMRELAY_PROFILE": "other"})
    assert config.sources["provider"] == "llmrelay.toml: profiles.other.provider"


def test_only_the_profile_in_use_is_interpolated(home: Path) -> None:
    resolve_profile_config("work", cwd=home, environ={"WORK_KEY": "k"})  # NOT_SET_ANYWHERE: fine
    with pytest.raises(llmrelay.ConfigError) as info:
        resolve_profile_config("other", cwd=home, environ={})
    assert str(info.value) == (
        "llmrelay.toml: profiles.other.api_key: environment variable NOT_SET_ANYWHERE is not "
        "set (used as ${NOT_SET_ANYWHERE})"
    )


def test_interpolation_inside_text_tables_and_dollar_escapes(tmp_path: Path) -> None:
    (tmp_path / "llmrelay.toml").write_text(
        "[profiles.p]\n"
        'base_url = "http://${HOST}:${PORT}/v1"\n'
        'headers = { "x-cost" = "$$5 for ${TEAM}" }\n'
        'provider = "mock"\n'
    )
    env = {"HOST": "127.0.0.1", "PORT": "8000", "TEAM": "ml"}
    s = resolve_profile_config("p", cwd=tmp_path, environ=env)
    assert s.base_url == "http://127.0.0.1:8000/v1"
    assert s.headers["x-cost"] == "$5 for ml"


def test_the_file_is_found_in_the_working_directory_first(tmp_path: Path) -> None:
    here, xdg = tmp_path / "here", tmp_path / "xdg"
    (xdg / "llmrelay").mkdir(parents=True)
    here.mkdir()
    user_file = xdg / "llmrelay" / "llmrelay.toml"
    user_file.write_text("")
    env = {"XDG_CONFIG_HOME": str(xdg)}
    assert find_config_file(here, env) == user_file
    (here / "llmrelay.toml").write_text("")
    assert find_config_file(here, env) == here / "llmrelay.toml"
    explicit = tmp_path / "elsewhere.toml"
    explicit.write_text("")
    assert find_config_file(here, {**env, "LLMRELAY_CONFIG": str(explicit)}) == explicit
    with pytest.raises(llmrelay.ConfigError, match="LLMRELAY_CONFIG names"):
        find_config_file(here, {"LLMRELAY_CONFIG": str(tmp_path / "missing.toml")})


def test_a_named_profile_without_any_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(
        llmrelay.ConfigError, match=r"profile 'work' asked for, but no llmrelay\.toml"
    ):
        resolve_profile_config("work", cwd=tmp_path, environ={"XDG_CONFIG_HOME": str(tmp_path)})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[profiles.work]\nmax_concurrency = "ten"\n',
            "llmrelay.toml: profiles.work.max_concurrency: expected a positive integer, got 'ten'",
        ),
        (
            "[profiles.work]\nmax_retries = -1\n",
            "llmrelay.toml: profiles.work.max_retries: expected a whole number >= 0, got -1",
        ),
        (
            '[profiles.work]\nmodle = "x"\n',
            "llmrelay.toml: profiles.work.modle: unknown key (allowed: api_key, base_url,",
        ),
        (
            "[profiles.work]\ntimeout = 0\n",
            "llmrelay.toml: profiles.work.timeout: expected a number of seconds or a table",
        ),
        (
            "[profiles.work]\ntimeout = { read = 5, idle = 1 }\n",
            "llmrelay.toml: profiles.work.timeout.idle: unknown key (allowed: connect, read, total)",
        ),
        (
            '[profiles.work]\nrate_limit = { requests_per_minute = "lots" }\n',
            "llmrelay.toml: profiles.work.rate_limit.requests_per_minute: expected a positive number",
        ),
        (
            "[profiles.work]\nheaders = { x-team = 1 }\n",
            "llmrelay.toml: profiles.work.headers.x-team: expected a string, got 1",
        ),
        (
            '[profiles.work]\nbase_url = "api.example.com"\n',
            "llmrelay.toml: profiles.work.base_url: expected a URL starting with http://",
        ),
        ("[profiles.work]\nprovider = 3\n", "profiles.work.provider: expected a non-empty string"),
        ('default_profile = "home"\n[profiles.work]\n', "default_profile: no profile named 'home'"),
        ("profile = 1\n", "llmrelay.toml: profile: unknown key"),
        ("[profiles]\nwork = 1\n", "llmrelay.toml: profiles.work: expected a table, got 1"),
        ("[profiles.work\n", "llmrelay.toml: not valid TOML:"),
        (
            "[profiles.work]\nprices = [1, 2]\n",
            "llmrelay.toml: profiles.work.prices: expected a table of model names to [prompt, "
            "completion] prices per million tokens",
        ),
        (
            '[profiles.work]\nprices = { "gpt-4o" = 2.5 }\n',
            "llmrelay.toml: profiles.work.prices.gpt-4o: expected [prompt, completion] prices per "
            "million tokens (two numbers >= 0), got 2.5",
        ),
        (
            "[profiles.work]\nprices = { m = [1, -2] }\n",
            "profiles.work.prices.m: expected [prompt,",
        ),
        ("[profiles.work]\nprices = { m = [1, 2, 3] }\n", "profiles.work.prices.m: expected"),
        ('[profiles.work]\nprices = { m = [1, "2"] }\n', "profiles.work.prices.m: expected"),
    ],
)
def test_config_errors_name_the_file_the_key_and_the_expectation(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "llmrelay.toml"
    path.write_text(text)
    with pytest.raises(llmrelay.ConfigError) as info:
        load_config(path, cwd=tmp_path)
    assert message in str(info.value)


def test_an_unknown_provider_in_a_profile_names_where_it_came_from(tmp_path: Path) -> None:
    (tmp_path / "llmrelay.toml").write_text('[profiles.p]\nprovider = "nosuch"\n')
    with pytest.raises(llmrelay.ConfigError, match=r"^llmrelay.toml: profiles.p.provider: unknown"):
        resolve_profile_config("p", cwd=tmp_path, environ={})
    with pytest.raises(llmrelay.ConfigError, match=r"^environment \(LLMRELAY_PROVIDER\): unknown"):
        resolve_profile_config(cwd=tmp_path, environ={"LLMRELAY_PROVIDER": "nosuch"})
    with pytest.raises(llmrelay.ConfigError, match=r"^unknown provider 'nosuch'"):
        resolve_profile_config(provider="nosuch", cwd=tmp_path, environ={})  # the caller knows


async def test_a_profile_prices_table_reaches_the_client_and_its_cost(tmp_path: Path) -> None:
    (tmp_path / "llmrelay.toml").write_text(
        '[profiles.p]\nprovider = "mock"\nprices = { "mock-echo" = [1000000, 0], "x" = [1, 2] }\n'
    )
    s = resolve_profile_config("p", cwd=tmp_path, environ={})
    assert s.prices == {"mock-echo": (1_000_000.0, 0.0), "x": (1.0, 2.0)}
    assert s.sources["prices"] == "llmrelay.toml: profiles.p.prices"
    merged = resolve_profile_config("p", cwd=tmp_path, environ={}, prices={"x": (3.0, 4.0)})
    assert merged.prices == {"mock-echo": (1_000_000.0, 0.0), "x": (3.0, 4.0)}  # by model
    async with llmrelay.AsyncClient.from_profile("p", cwd=tmp_path, environ={}) as client:
        reply = await client.chat("hello there")
        assert reply.usage is not None
        assert client.usage.cost == reply.usage.prompt_tokens  # $1 per prompt token


def test_an_unknown_profile_lists_the_known_ones(home: Path) -> None:
    with pytest.raises(
        llmrelay.ConfigError, match=r"no profile named 'play' \(profiles: other, work\)"
    ):
        resolve_profile_config("play", cwd=home, environ={})


async def test_a_client_built_from_a_profile_uses_its_settings(home: Path) -> None:
    from llmrelay.mock import serve

    with serve() as url:  # the profile's base_url is a server to reach, even for the mock
        (home / "llmrelay.toml").write_text(WORK.replace("http://mock.test/v1", f"{url}/v1"))
        client = llmrelay.AsyncClient.from_profile(
            cwd=home, environ={"WORK_KEY": "k"}, max_retries=0
        )
        assert client.retry.max_retries == 0  # an explicit override wins
        async with client:
            assert client.model == "mock-echo-large" and client.max_concurrency == 8
            stream = client.stream("one two three four five six")
            chunks = [chunk.text async for chunk in stream if chunk.text]
    assert len(chunks) == 3  # the profile's x-mock-chunks header reached the server


def test_other_arguments_override_the_profile(home: Path) -> None:
    retry = llmrelay.RetryPolicy(max_retries=7)
    s = resolve_profile_config(
        "work", cwd=home, environ={"WORK_KEY": "k"}, retry=retry, prices={"m": (1.0, 2.0)}
    )
    # A retry policy carries its own count: it replaces the profile's max_retries.
    assert s.retry is retry and s.sources["retry"] == "argument"
    assert s.prices == {"m": (1.0, 2.0)}
    assert {k: s.headers[k] for k in ("x-team", "x-mock-chunks")} == {
        "x-team": "search",
        "x-mock-chunks": "3",
    }
