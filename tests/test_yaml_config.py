"""YAML config files (``llmrelay.yaml``, ``--config config.yaml``): the same schema, ``${VAR}``
expansion, precedence and per-key errors as ``llmrelay.toml``, plus what YAML adds: an empty
file, a file that is not a mapping, duplicate keys, unquoted words and dates that YAML turns
into booleans and dates, parse errors with their line and column, and PyYAML missing."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import llmrelay
from llmrelay._settings import resolve_profile_config
from llmrelay.cli._app import cli

# The same profiles as test_profiles.WORK, written the way YAML users write them: block style,
# ${VAR} unquoted (as the tutorials' config.yaml does).
WORK_YAML = """\
# settings for the team
default_profile: work

profiles:
  work:
    provider: mock
    model: mock-echo-large
    api_key: ${WORK_KEY}
    timeout: 30
    max_retries: 4
    max_concurrency: 8
    rate_limit:
      requests_per_minute: 600
      tokens_per_minute: 100000
    headers:
      x-team: search
      x-mock-chunks: "3"
    prices:
      mock-echo-large: [0.15, 0.60]
  other:
    provider: openai
    api_key: ${NOT_SET_ANYWHERE}
"""

WORK_TOML = """\
default_profile = "work"

[profiles.work]
provider = "mock"
model = "mock-echo-large"
api_key = "${WORK_KEY}"
timeout = 30
max_retries = 4
max_concurrency = 8
rate_limit = { requests_per_minute = 600, tokens_per_minute = 100000 }
headers = { "x-team" = "search", "x-mock-chunks" = "3" }
prices = { "mock-echo-large" = [0.15, 0.60] }

[profiles.other]
provider = "openai"
api_key = "${NOT_SET_ANYWHERE}"
"""

MOCK_YAML = "default_profile: offline\nprofiles:\n  offline:\n    provider: mock\n"


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory with an empty user config dir."""
    work = tmp_path / "here"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    return work


def environ(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "WORK_KEY": "k-file", **extra}


# -- the same settings as TOML -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["llmrelay.yaml", "llmrelay.yml", "LLMRELAY.YML"])
def test_a_yaml_file_gives_the_settings_its_toml_twin_gives(tmp_path: Path, name: str) -> None:
    toml_dir, yaml_dir = tmp_path / "toml", tmp_path / "yaml"
    toml_dir.mkdir()
    yaml_dir.mkdir()
    (toml_dir / "llmrelay.toml").write_text(WORK_TOML)
    (yaml_dir / name).write_text(WORK_YAML)
    env = environ(tmp_path)
    from_toml = resolve_profile_config(
        config_path=toml_dir / "llmrelay.toml", cwd=toml_dir, environ=env
    )
    from_yaml = resolve_profile_config(config_path=yaml_dir / name, cwd=yaml_dir, environ=env)
    assert dataclasses.replace(from_yaml, sources={}) == dataclasses.replace(from_toml, sources={})
    assert from_yaml.sources == {  # where each setting came from, named by the YAML file
        key: source.replace("llmrelay.toml", name) for key, source in from_toml.sources.items()
    }
    assert from_yaml.sources["model"] == f"{name}: profiles.work.model"
    if name.islower():  # found by name in the working directory, as llmrelay.toml is
        assert resolve_profile_config(cwd=yaml_dir, environ=env) == from_yaml


async def test_a_client_from_a_yaml_profile_sends_with_its_settings(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(WORK_YAML)
    env = environ(tmp_path)
    async with llmrelay.AsyncClient.from_profile(config_path=path, environ=env) as client:
        assert (client.model, client.max_concurrency) == ("mock-echo-large", 8)
        chunks = [c.text async for c in client.stream("one two three four five six") if c.text]
        reply = await client.chat("hello there")
    assert len(chunks) == 3  # the profile's x-mock-chunks header reached the server
    assert reply.usage is not None and client.usage.cost > 0  # the profile's prices


def test_the_sync_client_reads_a_yaml_profile(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(MOCK_YAML)
    with llmrelay.Client.from_profile(config_path=str(path), environ={}) as client:
        assert client.chat("hi").text == "echo: hi"


def test_environment_beats_a_yaml_file_and_arguments_beat_both(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(WORK_YAML)
    env = environ(tmp_path, LLMRELAY_MODEL="from-env")
    client = llmrelay.AsyncClient.from_profile(config_path=path, environ=env)
    assert client.model == "from-env" and client.max_concurrency == 8
    client = llmrelay.AsyncClient.from_profile(
        config_path=path, environ=env, model="from-arg", max_concurrency=2
    )
    assert (client.model, client.max_concurrency) == ("from-arg", 2)
    keys = {"NOT_SET_ANYWHERE": "sk-from-file", "OPENAI_API_KEY": "sk-from-env"}
    other = resolve_profile_config("other", config_path=path, environ={**env, **keys})
    assert other.provider.name == "openai" and other.api_key == "sk-from-env"


def test_the_tutorial_style_key_and_dollar_escapes_expand(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "profiles:\n"
        "  openai:\n"
        "    provider: openai\n"
        "    api_key: ${OPENAI_API_KEY}\n"
        "    model: 4o\n"  # YAML keeps this text: not a number
        "    base_url: http://${HOST}:${PORT}/v1\n"
        "    headers:\n"
        "      x-cost: $$5 for ${TEAM}\n"
        '      anthropic-version: "2023-06-01"\n'
    )
    env = {
        "LLMRELAY_CONFIG": str(path),
        "LLMRELAY_PROFILE": "openai",
        "OPENAI_API_KEY": "sk-yaml",
        "HOST": "127.0.0.1",
        "PORT": "8000",
        "TEAM": "ml",
    }
    client = llmrelay.AsyncClient.from_profile(environ=env)
    assert client.model == "4o" and client.base_url == "http://127.0.0.1:8000/v1"
    config = resolve_profile_config(environ=env)
    assert config.headers["x-cost"] == "$5 for ml"
    assert config.headers["anthropic-version"] == "2023-06-01"
    assert config.headers["authorization"] == "Bearer sk-yaml"
    assert config.sources["api_key"] == "environment (OPENAI_API_KEY)"  # the variable itself
    del env["OPENAI_API_KEY"]
    with pytest.raises(llmrelay.ConfigError) as info:
        llmrelay.AsyncClient.from_profile(environ=env)
    assert str(info.value) == (
        f"{path}: profiles.openai.api_key: environment variable OPENAI_API_KEY is not set "
        "(used as ${OPENAI_API_KEY})"
    )


# -- the command line ----------------------------------------------------------------------------


def test_the_cli_reads_a_yaml_file_named_by_config_or_llmrelay_config(here: Path) -> None:
    (here / "config.yaml").write_text(MOCK_YAML)
    by_option = invoke("--config", "config.yaml", "ask", "hi")
    assert by_option.exit_code == 0, by_option.output
    assert by_option.stdout == "echo: hi\n"
    by_variable = invoke("ask", "hi", env={"LLMRELAY_CONFIG": "config.yaml"})
    assert by_variable.exit_code == 0, by_variable.output
    assert by_variable.stdout == "echo: hi\n"


def test_the_cli_finds_llmrelay_yaml_in_the_working_directory(here: Path) -> None:
    (here / "llmrelay.yaml").write_text(
        MOCK_YAML + "    model: mock-echo+fault=500\n    max_retries: 0\n"
    )
    assert invoke("ask", "hi").exit_code == 1  # the profile's faulty model, no retries
    fixed = invoke("ask", "hi", env={"LLMRELAY_MODEL": "mock-echo"})  # env beats the file
    assert fixed.exit_code == 0 and fixed.stdout == "echo: hi\n"


def test_the_cli_reports_a_yaml_mistake_in_one_line(here: Path) -> None:
    (here / "config.yaml").write_text("profiles:\n  work:\n    max_concurrency: ten\n")
    result = invoke("--config", "config.yaml", "--profile", "work", "-p", "mock", "ask", "hi")
    assert result.exit_code == 2
    assert (
        "config.yaml: profiles.work.max_concurrency: expected a positive integer, got 'ten'"
        in result.stderr
    )
    (here / "config.yaml").write_text("profiles:\n  work:\n    model: [unclosed\n")
    result = invoke("--config", "config.yaml", "-p", "mock", "ask", "hi")
    assert result.exit_code == 2
    assert (
        "config.yaml: not valid YAML: while parsing a flow sequence (at line 3), expected ',' or "
        "']', but got '<stream end>' (at line 4, column 1)"
    ) in result.stderr
    assert "Traceback" not in result.stderr


# -- where the file is found ---------------------------------------------------------------------


def test_the_working_directory_comes_first_whatever_the_format(tmp_path: Path) -> None:
    here, user = tmp_path / "here", tmp_path / "xdg" / "llmrelay"
    here.mkdir()
    user.mkdir(parents=True)
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}

    def model() -> str | None:
        return llmrelay.AsyncClient.from_profile(cwd=here, environ=env).model

    (user / "llmrelay.yaml").write_text(MOCK_YAML + "    model: user-yaml\n")
    assert model() == "user-yaml"
    (here / "llmrelay.toml").write_text(
        'default_profile = "p"\n[profiles.p]\nprovider = "mock"\nmodel = "here-toml"\n'
    )
    assert model() == "here-toml"
    (user / "llmrelay.toml").write_text("")  # two in the user dir: never looked at now
    assert model() == "here-toml"


@pytest.mark.parametrize(
    "names",
    [("llmrelay.toml", "llmrelay.yaml"), ("llmrelay.yaml", "llmrelay.yml")],
)
def test_two_config_files_in_one_place_is_an_error(tmp_path: Path, names: tuple[str, str]) -> None:
    for name in names:
        (tmp_path / name).write_text("")
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    with pytest.raises(llmrelay.ConfigError) as info:
        llmrelay.AsyncClient.from_profile(cwd=tmp_path, environ=env)
    message = str(info.value)
    assert names[0] in message and names[1] in message and "LLMRELAY_CONFIG" in message
    # Naming one of them settles it.
    (tmp_path / names[1]).write_text(MOCK_YAML)
    client = llmrelay.AsyncClient.from_profile(config_path=tmp_path / names[1], environ=env)
    assert client.provider.name == "mock"
    env["LLMRELAY_CONFIG"] = str(tmp_path / names[1])
    assert llmrelay.AsyncClient.from_profile(cwd=tmp_path, environ=env).provider.name == "mock"


def test_a_missing_named_profile_mentions_both_file_names(tmp_path: Path) -> None:
    with pytest.raises(llmrelay.ConfigError, match=r"llmrelay\.toml or llmrelay\.yaml"):
        llmrelay.AsyncClient.from_profile(
            "work", cwd=tmp_path, environ={"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
        )


# -- what YAML adds: empty files, shapes, duplicates, coercions, parse errors ---------------------


@pytest.mark.parametrize("text", ["", "\n", "# nothing here yet\n", "---\n", "\ufeff"])
def test_an_empty_yaml_file_is_an_empty_config(tmp_path: Path, text: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    client = llmrelay.AsyncClient.from_profile(config_path=path, environ={"OPENAI_API_KEY": "k"})
    assert client.provider.name == "openai"  # no profile: the environment and defaults
    with pytest.raises(llmrelay.ConfigError, match=r"config.yaml: no profile named 'work'"):
        llmrelay.AsyncClient.from_profile("work", config_path=path, environ={})


YAML_ERRORS = [
    # the shape of the file
    ("- provider: mock\n", "config.yaml: expected a mapping of default_profile and profiles, got a list"),
    ("just words\n", "config.yaml: expected a mapping of default_profile and profiles, got 'just words'"),
    ("openai:\n  api_key: x\n", "config.yaml: openai: unknown key (the top level holds default_profile and profiles; a profile's settings go under profiles: NAME:)"),
    ("profiles: [work]\n", "config.yaml: profiles: expected a mapping of profile names to settings, got a list"),
    ("profiles:\n  work: 1\n", "config.yaml: profiles.work: expected a mapping of settings, got 1"),
    ("profiles:\n  work:\n", "config.yaml: profiles.work: expected a mapping of settings, got None (YAML reads an empty value as null: write {} for no settings)"),
    ("profiles:\n  1:\n    provider: mock\n", "config.yaml: profiles: a profile name must be text, got 1"),
    ("default_profile: 7\nprofiles: {}\n", "config.yaml: default_profile: expected a profile name, got 7"),
    # the same per-key errors as TOML
    ("profiles:\n  work:\n    modle: x\n", "config.yaml: profiles.work.modle: unknown key (allowed: api_key, base_url,"),
    ("profiles:\n  work:\n    temperature: 0.7\n", "config.yaml: profiles.work.temperature: unknown key (allowed:"),
    ("profiles:\n  work:\n    max_retries: -1\n", "config.yaml: profiles.work.max_retries: expected a whole number >= 0, got -1"),
    ("profiles:\n  work:\n    timeout: {read: 5, idle: 1}\n", "config.yaml: profiles.work.timeout.idle: unknown key (allowed: connect, read, total)"),
    ("profiles:\n  work:\n    headers:\n      x-team: 1\n", "config.yaml: profiles.work.headers.x-team: expected a string, got 1 (YAML reads an unquoted number as a number: put it in quotes to keep it text)"),
    ("profiles:\n  work:\n    model: 3.10\n", "config.yaml: profiles.work.model: expected a non-empty string, got 3.1 (YAML reads an unquoted number as a number: put it in quotes to keep it text)"),
    ("profiles:\n  work:\n    max_concurrency: ten\n", "config.yaml: profiles.work.max_concurrency: expected a positive integer, got 'ten'"),
    ("profiles:\n  work:\n    max_concurrency: 0\n", "config.yaml: profiles.work.max_concurrency: expected a positive integer, got 0"),
    ("profiles:\n  work:\n    prices:\n      m: [1, -2]\n", "config.yaml: profiles.work.prices.m: expected [prompt,"),
    # YAML 1.1 reads these unquoted words and dates as booleans, nulls and dates
    ("profiles:\n  work:\n    model: yes\n", "config.yaml: profiles.work.model: expected a non-empty string, got True (YAML reads an unquoted yes, no, on, off, true or false as a boolean"),
    ("profiles:\n  work:\n    provider: off\n", "config.yaml: profiles.work.provider: expected a non-empty string, got False (YAML reads"),
    ("profiles:\n  work:\n    on: 1\n", "config.yaml: profiles.work.True: unknown key (allowed:"),
    ("profiles:\n  work:\n    api_key:\n", "config.yaml: profiles.work.api_key: expected a non-empty string, got a NoneType (YAML reads an empty value or ~ as null: give a value, or leave the key out)"),
    ("profiles:\n  work:\n    headers:\n      anthropic-version: 2023-06-01\n", "config.yaml: profiles.work.headers.anthropic-version: expected a string, got datetime.date(2023, 6, 1) (YAML reads an unquoted date as a date"),
    ("default_profile: on\nprofiles: {}\n", "config.yaml: default_profile: expected a profile name, got True (YAML reads"),
    # duplicate keys: YAML forbids them, PyYAML alone would keep the last one silently
    ("profiles:\n  work:\n    model: a\n    model: b\n", "config.yaml: not valid YAML: duplicate key 'model' (at line 4, column 5), the first is at line 3"),
    ("profiles: {}\nprofiles: {}\n", "config.yaml: not valid YAML: duplicate key 'profiles' (at line 2, column 1), the first is at line 1"),
    ("profiles:\n  w:\n    headers: {a: x, a: y}\n", "duplicate key 'a' (at line 3, column 21), the first is at line 3"),
    # parse errors name the line and column
    ("profiles:\n  work:\n    model: [unclosed\n", "config.yaml: not valid YAML: "),
    ("profiles:\n  work:\n  model: x\n bad\n", "(at line 4, column"),
    ("profiles:\n\tbad: 1\n", "config.yaml: not valid YAML: while scanning for the next token, found character '\\t' that cannot start any token (at line 2, column 1), YAML indents with spaces, not tabs"),
    ("a: 1\n---\nb: 2\n", "config.yaml: not valid YAML: expected a single document in the stream (at line 1), but found another document (at line 2, column 1)"),
    ("profiles:\n  work:\n    model: *nowhere\n", "config.yaml: not valid YAML: found undefined alias 'nowhere' (at line 3, column 12)"),
    # only plain data: no Python objects, whatever the tag says
    ("profiles: !!python/object/apply:os.system [echo hacked]\n", "config.yaml: not valid YAML: could not determine a constructor for the tag"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "message"), YAML_ERRORS)
def test_yaml_mistakes_name_the_file_and_the_key_or_the_line(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(llmrelay.ConfigError) as info:
        llmrelay.AsyncClient.from_profile("work", config_path=path, environ={})
    assert message in str(info.value)
    assert "\n" not in str(info.value)  # one line, for the CLI's one-line errors


def test_an_unknown_key_is_not_explained_by_its_value(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("profiles:\n  work:\n    stream: yes\n")
    with pytest.raises(llmrelay.ConfigError) as info:
        llmrelay.AsyncClient.from_profile("work", config_path=path, cwd=tmp_path, environ={})
    assert str(info.value) == (
        "config.yaml: profiles.work.stream: unknown key (allowed: api_key, base_url, headers, http, "
        "max_concurrency, max_retries, model, prices, provider, rate_limit, timeout)"
    )


def test_anchors_and_merge_keys_share_settings_between_profiles(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "profiles:\n"
        "  base: &base\n"
        "    provider: mock\n"
        "    max_concurrency: 3\n"
        "  large:\n"
        "    <<: *base\n"
        "    model: mock-echo-large\n"
        "    max_concurrency: 5\n"  # its own value wins over the merged one
    )
    client = llmrelay.AsyncClient.from_profile("large", config_path=path, environ={})
    assert (client.provider.name, client.model, client.max_concurrency) == (
        "mock",
        "mock-echo-large",
        5,
    )


def test_a_config_file_without_a_yaml_suffix_is_read_as_toml_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "llmrelay.conf"
    path.write_text(MOCK_YAML)
    with pytest.raises(llmrelay.ConfigError) as info:
        llmrelay.AsyncClient.from_profile(config_path=path, environ={})
    assert "llmrelay.conf: not valid TOML: " in str(info.value)
    assert "read as TOML: a YAML file's name ends in .yaml or .yml" in str(info.value)


# -- PyYAML is an optional extra -----------------------------------------------------------------


def test_without_pyyaml_a_yaml_file_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "config.yaml").write_text(MOCK_YAML)
    (tmp_path / "llmrelay.toml").write_text('[profiles.t]\nprovider = "mock"\n')
    monkeypatch.setitem(sys.modules, "yaml", None)  # `import yaml` now raises ImportError
    with pytest.raises(llmrelay.ConfigError) as info:
        llmrelay.AsyncClient.from_profile(config_path=tmp_path / "config.yaml", environ={})
    assert str(info.value) == (
        "config.yaml: reading a YAML config file needs PyYAML: "
        'pip install "llmrelay[yaml]" (or use llmrelay.toml)'
    ).replace("config.yaml", str(tmp_path / "config.yaml"))
    # TOML never needs it.
    client = llmrelay.AsyncClient.from_profile("t", cwd=tmp_path, environ={})
    assert client.provider.name == "mock"
    monkeypatch.chdir(tmp_path)
    result = invoke("--config", "config.yaml", "ask", "hi")
    assert result.exit_code == 2
    assert 'config.yaml: reading a YAML config file needs PyYAML: pip install "llmrelay[yaml]"' in (
        result.stderr
    )


def test_importing_llmrelay_does_not_import_yaml() -> None:
    code = "import sys, llmrelay, llmrelay._profiles; print('yaml' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "False"


def test_the_docs_toml_and_yaml_examples_give_the_same_settings(tmp_path: Path) -> None:
    docs = (Path(__file__).parents[1] / "docs" / "guides" / "configuration.md").read_text()
    toml_text = docs.split("```toml\n", 1)[1].split("```", 1)[0]
    yaml_text = docs.split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "llmrelay.toml").write_text(toml_text)
    (tmp_path / "llmrelay.yaml").write_text(yaml_text)
    env = {"WORK_OPENAI_KEY": "k"}
    for profile in ("work", "local"):
        configs = [
            resolve_profile_config(profile, config_path=tmp_path / name, environ=env)
            for name in ("llmrelay.toml", "llmrelay.yaml")
        ]
        assert dataclasses.replace(configs[0], sources={}) == dataclasses.replace(
            configs[1], sources={}
        )


def test_the_installed_command_reads_config_yaml(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(MOCK_YAML)
    src = str(Path(__file__).parents[1] / "src")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": src, "XDG_CONFIG_HOME": str(tmp_path / "x")}
    done = subprocess.run(
        [sys.executable, "-m", "llmrelay.cli", "--config", "config.yaml", "ask", "hello", "yaml"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "echo: hello yaml\n", "")
