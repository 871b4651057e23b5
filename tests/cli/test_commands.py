"""`ask`, `models`, `chat` (scripted stdin), options and errors, through click's CliRunner with the
in-process mock provider."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from llmrelay.cli import main
from llmrelay.cli._app import _read_prompt

from ._helpers import invoke


def test_ask_streams_the_reply_to_stdout() -> None:
    result = invoke("-p", "mock", "ask", "Hello there")
    assert result.exit_code == 0, result.output
    assert result.stdout == "echo: Hello there\n"


def test_global_options_work_before_or_after_the_command() -> None:
    before = invoke("-p", "mock", "-m", "mock-echo-large", "ask", "hi", "-v")
    after = invoke("ask", "hi", "-p", "mock", "--model", "mock-echo-large", "-v")
    for result in (before, after):
        assert result.exit_code == 0, result.output
        assert result.stdout == "echo: hi\n"
        assert "mock-echo-large" in result.stderr  # -v prints the model and token counts


def test_ask_joins_several_words_without_quotes() -> None:
    result = invoke("-p", "mock", "ask", "what", "is", "2+2?")
    assert result.exit_code == 0, result.output
    assert result.stdout == "echo: what is 2+2?\n"


def test_ask_reads_the_prompt_from_stdin_when_piped() -> None:
    assert invoke("-p", "mock", "ask", input="from a pipe\n").stdout == "echo: from a pipe\n"
    assert invoke("-p", "mock", "ask", "-", input="dash\n").stdout == "echo: dash\n"


def test_ask_with_an_argument_and_piped_text_sends_both() -> None:
    result = invoke("-p", "mock", "ask", "Summarize:", "--no-stream", input="some text\n")
    assert result.stdout == "echo: Summarize:\n\nsome text\n"


def test_ask_without_a_prompt_is_a_usage_error() -> None:
    result = invoke("-p", "mock", "ask", input="")
    assert result.exit_code == 2
    assert "give a prompt" in result.stderr


def test_ask_passes_sampling_options() -> None:
    result = invoke(
        "-p", "mock", "ask", "one two three four", "--max-tokens", "2", "-s", "Be brief"
    )
    assert result.stdout == "echo: one \n"  # the echo model keeps max_tokens word pieces


def test_api_errors_exit_1_with_the_error_type_and_message() -> None:
    result = invoke("-p", "mock", "-m", "mock-echo+fault=429", "--max-retries", "0", "ask", "hi")
    assert result.exit_code == 1
    assert "RateLimitError" in result.stderr
    assert "429" in result.stderr


def test_a_missing_key_names_the_variable_and_the_offline_way_out() -> None:
    result = invoke("-p", "openai", "ask", "hi")
    assert result.exit_code == 2
    assert "OPENAI_API_KEY" in result.stderr
    assert "llmrelay demo" in result.stderr


def test_an_unknown_provider_is_a_usage_error() -> None:
    result = invoke("-p", "nosuch", "ask", "hi")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: unknown provider 'nosuch'; built-in presets are: ")


def test_a_connection_error_names_the_base_url_it_tried() -> None:
    result = invoke(
        "-p", "openai", "--base-url", "http://user:pw@127.0.0.1:9/v1", "-m", "m",
        "--max-retries", "0", "ask", "hi", env={"OPENAI_API_KEY": "unused"},
    )  # fmt: skip
    assert result.exit_code == 1
    assert "APIConnectionError" in result.stderr
    assert "base URL http://user:***@127.0.0.1:9/v1; --base-url sets another" in result.stderr


def test_ask_does_not_double_a_newline_the_reply_ends_with() -> None:
    assert invoke("-p", "mock", "ask", "two\nlines\n").stdout == "echo: two\nlines\n"
    no_stream = invoke("-p", "mock", "ask", "--no-stream", "end\n")
    assert no_stream.stdout == "echo: end\n"


def test_ask_dash_reads_stdin_even_from_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdin", Terminal("typed, then Ctrl-D\n"))
    assert _read_prompt("-") == "typed, then Ctrl-D"
    monkeypatch.setattr(sys, "stdin", Terminal("never read"))
    assert _read_prompt("just this") == "just this"  # a terminal is not read without "-"


def test_models_lists_ids_or_json() -> None:
    result = invoke("-p", "mock", "models")
    assert result.exit_code == 0
    assert result.stdout.split() == ["mock-echo", "mock-echo-large", "mock-embed"]
    records = [
        json.loads(line) for line in invoke("-p", "mock", "models", "--json").stdout.splitlines()
    ]
    assert records[0] == {"id": "mock-echo", "owned_by": "llmrelay", "created": 1_700_000_000}


def test_environment_and_profile_settings_reach_the_command(tmp_path: Path) -> None:
    (tmp_path / "llmrelay.toml").write_text(
        'default_profile = "offline"\n'
        "[profiles.offline]\n"
        'provider = "mock"\n'
        'model = "mock-echo+fault=500"\n'
        "max_retries = 0\n"
    )
    assert invoke("ask", "hi").exit_code == 1  # the profile's faulty model, no retries
    fixed = invoke("ask", "hi", env={"LLMRELAY_MODEL": "mock-echo"})  # env beats the file
    assert fixed.exit_code == 0 and fixed.stdout == "echo: hi\n"
    explicit = invoke("-m", "mock-echo-large", "ask", "hi", "-v", env={"LLMRELAY_MODEL": "x"})
    assert explicit.exit_code == 0 and "mock-echo-large" in explicit.stderr  # option beats env


def test_config_errors_name_the_file_and_key(tmp_path: Path) -> None:
    (tmp_path / "llmrelay.toml").write_text('[profiles.work]\nmax_concurrency = "ten"\n')
    result = invoke("--profile", "work", "-p", "mock", "ask", "hi")
    assert result.exit_code == 2
    assert (
        "llmrelay.toml: profiles.work.max_concurrency: expected a positive integer, got 'ten'"
        in result.stderr
    )


def test_debug_logging_shows_each_attempt_and_never_the_key(tmp_path: Path) -> None:
    secret = "sk-test-THIS-IS-SECRET-123456"
    (tmp_path / "llmrelay.toml").write_text(
        '[profiles.keyed]\nprovider = "mock"\napi_key = "${SECRET_KEY}"\n'
    )
    result = invoke(
        "--profile", "keyed", "-vv", "ask", "hi",
        env={"LLMRELAY_MODEL": "mock-echo+fault=503;times=1", "SECRET_KEY": secret},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "POST /v1/chat/completions -> 503" in result.stderr
    assert "(attempt 1, request id req_mock_" in result.stderr
    assert any(
        "retrying POST /v1/chat/completions" in line and "status 503" in line
        for line in result.stderr.splitlines()
    )
    assert "-> 200" in result.stderr
    assert secret not in result.stderr + result.stdout


def test_chat_keeps_the_conversation_and_obeys_commands() -> None:
    script = "\n".join(["first message", "second", "/reset", "third", "/model mock-echo-large",
                        "fourth", "/nope", "/exit", "never sent"]) + "\n"  # fmt: skip
    result = invoke("-p", "mock", "chat", "-v", input=script)
    assert result.exit_code == 0, result.output
    out = result.stdout
    for text in ("echo: first message", "echo: second", "echo: third", "echo: fourth"):
        assert text in out
    assert "never sent" not in out
    # Prompt tokens grow with the kept conversation and drop after /reset.
    tokens = [int(line.split()[1]) for line in result.stderr.splitlines() if line.startswith("↳")]
    assert tokens[1] > tokens[0] and tokens[2] < tokens[1]
    assert "model: mock-echo-large" in result.stderr
    assert "unknown command /nope" in result.stderr


def test_chat_ends_at_end_of_input() -> None:
    result = invoke("-p", "mock", "chat", input="hello\n")
    assert result.exit_code == 0
    assert "echo: hello" in result.stdout


def test_chat_from_a_pipe_prints_only_the_replies() -> None:
    result = invoke("-p", "mock", "chat", input="hello\n/model\nsecond\n")
    assert result.exit_code == 0
    assert result.stdout == "echo: hello\necho: second\n"  # no "you>" or "assistant>"
    assert "model: mock-echo" in result.stderr


def test_chat_reports_an_error_and_goes_on() -> None:
    script = "/model mock-echo+fault=500\nfails\n/model mock-echo\nworks\n"
    result = invoke("-p", "mock", "--max-retries", "0", "chat", input=script)
    assert result.exit_code == 0
    assert "InternalServerError: mock returned 500" in result.stderr
    assert result.stdout == "echo: works\n"


def test_missing_cli_extra_prints_the_install_hint(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "rich", None)  # as if `rich` were not installed
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 2
    assert 'pip install "llmrelay[cli]"' in capsys.readouterr().err


def test_help_lists_every_command() -> None:
    result = invoke("--help")
    section = result.stdout.split("Commands:")[1]
    listed = [line.split()[0] for line in section.splitlines() if line.startswith("  ")]
    assert listed == ["ask", "batch", "chat", "demo", "mock", "models"]
