"""Every option a user gives is used or refused, never silently dropped: `--base-url` takes the
mock preset to a real server (in the CLI and the library alike), global options before a command that cannot use them and a
`--config` with no profile to read are usage errors; a misspelt provider gets a suggestion."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

import llmrelay
from _recording import RecordingEngine, recording_server

from ._helpers import invoke, run_cli


@pytest.fixture
def recorded() -> Iterator[tuple[str, RecordingEngine]]:
    """A loopback mock server (as `llmrelay mock serve` runs it) and its engine."""
    with recording_server() as served:
        yield served


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- --base-url with the mock preset -----------------------------------------------------------


@pytest.mark.parametrize("position", ["before", "after"])
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "no-stream"])
def test_mock_with_a_base_url_asks_that_server(
    recorded: tuple[str, RecordingEngine], position: str, stream: bool
) -> None:
    url, engine = recorded
    options = ["-p", "mock", "--base-url", f"{url}/v1"]
    flags = [] if stream else ["--no-stream"]
    args = (
        [*options, "ask", "hi", *flags] if position == "before" else ["ask", "hi", *options, *flags]
    )
    result = invoke(*args)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "echo: hi\n"
    assert engine.seen == [("POST", "/v1/chat/completions")]  # the server answered, over HTTP


def test_mock_models_with_a_base_url_asks_that_server(
    recorded: tuple[str, RecordingEngine],
) -> None:
    url, engine = recorded
    result = invoke("-p", "mock", "--base-url", f"{url}/v1", "models")
    assert result.exit_code == 0, result.stderr
    assert "mock-echo" in result.stdout.split()
    assert engine.seen == [("GET", "/v1/models")]


def test_mock_with_a_base_url_nobody_listens_on_fails_to_connect() -> None:
    base = f"http://127.0.0.1:{closed_port()}/v1"
    result = invoke("-p", "mock", "--base-url", base, "--max-retries", "0", "ask", "hi")
    assert result.exit_code == 1  # it was answered in process, exit 0
    assert result.stdout == ""
    assert result.stderr.startswith("Error: APIConnectionError: mock: connection failed")
    assert base in result.stderr


def test_a_profile_base_url_takes_the_mock_to_that_server(
    recorded: tuple[str, RecordingEngine], tmp_path: Path
) -> None:
    url, engine = recorded
    (tmp_path / "llmrelay.toml").write_text(
        f'[profiles.local]\nprovider = "mock"\nbase_url = "{url}/v1"\n'
    )
    result = invoke("--profile", "local", "ask", "hi")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "echo: hi\n"
    assert engine.seen == [("POST", "/v1/chat/completions")]


async def test_the_library_mock_client_with_a_base_url_asks_that_server(
    recorded: tuple[str, RecordingEngine],
) -> None:
    url, engine = recorded
    async with llmrelay.AsyncClient(provider="mock", base_url=f"{url}/v1") as client:
        reply = await client.chat("hi")
    assert reply.text == "echo: hi"
    assert engine.seen == [("POST", "/v1/chat/completions")]


def test_the_sync_mock_client_with_a_base_url_asks_that_server(
    recorded: tuple[str, RecordingEngine],
) -> None:
    url, engine = recorded
    with llmrelay.Client(provider="mock", base_url=f"{url}/v1") as client:
        assert [chunk.text for chunk in client.stream("hi") if chunk.text] == ["echo: ", "hi"]
    assert engine.seen == [("POST", "/v1/chat/completions")]


def test_mock_without_a_base_url_still_answers_in_process() -> None:
    result = invoke("-p", "mock", "ask", "hi")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "echo: hi\n"


# -- global options a command cannot use -------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-p", "openai", "demo"], "-p/--provider does not apply to 'llmrelay demo'"),
        (["--base-url", "http://127.0.0.1:9/v1", "demo"], "--base-url does not apply"),
        (["--timeout", "5", "--max-retries", "1", "demo"], "--timeout and --max-retries do not"),
        (["-m", "x", "mock", "serve"], "-m/--model does not apply to 'llmrelay mock'"),
        (
            ["-p", "mock", "--base-url", "http://127.0.0.1:9/v1", "mock", "serve"],
            "-p/--provider and --base-url do not apply to 'llmrelay mock'",
        ),
        (["-v", "mock", "serve"], "-v/--verbose does not apply to 'llmrelay mock'"),
        (["--profile", "work", "mock", "serve"], "--profile does not apply"),
    ],
)
def test_global_options_before_a_command_that_cannot_use_them_are_refused(
    args: list[str], message: str
) -> None:
    if args[-1] == "serve":  # a real process: a server that did start is stopped by the timeout
        done = run_cli(*args, "--port", "0", timeout=10)
        code, stdout, stderr = done.returncode, done.stdout, done.stderr
    else:
        result = invoke(*args, "--prompts", "1")
        code, stdout, stderr = result.exit_code, result.stdout, result.stderr
    assert code == 2
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), stderr
    assert message in lines[0]
    assert stdout == ""  # the demo did not run, the server did not start


def test_verbose_before_demo_is_used() -> None:
    result = invoke("-vv", "demo", "--prompts", "1", "--fault-rate", "0", "--no-progress")
    assert result.exit_code == 0, result.stderr
    assert "POST /v1/chat/completions -> 200" in result.stderr  # -vv logs every attempt


CONFIG_WITHOUT_DEFAULT = '[profiles.a]\nprovider = "mock"\nmodel = "mock-echo-large"\n'


def test_a_config_file_with_no_profile_chosen_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "team.toml"
    path.write_text(CONFIG_WITHOUT_DEFAULT + '[profiles.b]\nprovider = "mock"\n')
    result = invoke("--config", str(path), "ask", "hi")
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: --config team.toml: no profile chosen: give --profile NAME, set "
        "LLMRELAY_PROFILE, or set default_profile in the file (profiles: a, b)\n"
    )


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--profile", "a"], {}),
        ([], {"LLMRELAY_PROFILE": "a"}),
    ],
)
def test_a_config_file_with_a_profile_chosen_is_used(
    tmp_path: Path, args: list[str], env: dict[str, str]
) -> None:
    path = tmp_path / "team.toml"
    path.write_text(CONFIG_WITHOUT_DEFAULT)
    result = invoke("--config", str(path), *args, "ask", "hi", "-v", env=env)
    assert result.exit_code == 0, result.stderr
    assert "mock-echo-large" in result.stderr  # the profile's model


# -- a misspelt provider -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "source"),
    [
        (["-p", "opnai"], {}, ""),
        (["ask", "-p", "opnai"], {}, ""),
        ([], {"LLMRELAY_PROVIDER": "opnai"}, "environment (LLMRELAY_PROVIDER): "),
    ],
)
def test_a_misspelt_provider_is_one_line_with_a_suggestion(
    args: list[str], env: dict[str, str], source: str
) -> None:
    command = args if args[:1] == ["ask"] else [*args, "ask"]
    result = invoke(*command, "hi", env=env)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(
        f"Error: {source}unknown provider 'opnai' (did you mean 'openai'?); built-in presets are: "
    )


def test_a_misspelt_provider_in_a_profile_names_the_key(tmp_path: Path) -> None:
    (tmp_path / "llmrelay.toml").write_text('[profiles.p]\nprovider = "antropic"\n')
    result = invoke("--profile", "p", "ask", "hi")
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "Error: llmrelay.toml: profiles.p.provider: unknown provider 'antropic' "
        "(did you mean 'anthropic'?)"
    )
