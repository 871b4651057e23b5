"""Input that is not UTF-8, wherever the CLI reads it (stdin, arguments, config files, `.env`,
batch files): one line on stderr naming the input and the byte offset, exit code 2, no
traceback, nothing sent."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import llmrelay

from ._helpers import invoke, subprocess_env

HINT_FREE = "Traceback"


def one_error_line(stderr: str) -> str:
    """The only line of `stderr`, which must be an error message and no traceback."""
    assert HINT_FREE not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("Error: "), stderr
    return lines[0]


# -- stdin -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "where"),
    [
        (b"caf\xe9", "line 1: not valid UTF-8 (byte 0xe9 at offset 3)"),
        (
            b"fine\nstill fine\ncaf\xe9 au lait\n",
            "line 3: not valid UTF-8 (byte 0xe9 at offset 19)",
        ),
        (b"\xff\xfeh\x00i\x00", "line 1: not valid UTF-8 (byte 0xff at offset 0)"),  # UTF-16
        (b"\xef\xbb\xbfna\xefve", "line 1: not valid UTF-8 (byte 0xef at offset 5)"),  # BOM kept
        (b"half a character \xe2\x82", "line 1: not valid UTF-8 (byte 0xe2 at offset 17)"),
    ],
)
@pytest.mark.parametrize("dash", [True, False], ids=["ask -", "piped"])
def test_a_piped_prompt_that_is_not_utf8_is_named_by_line_and_offset(
    data: bytes, where: str, dash: bool
) -> None:
    result = invoke("-p", "mock", "ask", *(["-"] if dash else []), input=data)
    assert result.exit_code == 2
    assert one_error_line(result.stderr).startswith(f"Error: stdin: {where}; ")
    assert result.stdout == ""


def test_a_utf8_byte_order_mark_on_stdin_is_dropped() -> None:
    result = invoke("-p", "mock", "ask", "-", input="\ufeffcafé".encode())
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "echo: café\n"


def cli_process(
    *args: str | bytes, stdin: bytes = b"", **env: str
) -> subprocess.CompletedProcess[bytes]:
    """The CLI as a real process, as a shell runs it (bytes in, bytes out)."""
    return subprocess.run(
        [sys.executable, "-m", "llmrelay.cli", *args],
        env=subprocess_env(**env),
        input=stdin,
        capture_output=True,
        timeout=30,
        check=False,
    )


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX locales")
@pytest.mark.parametrize("locale", ["C.UTF-8", "C"])
def test_the_issue_pipe_fails_cleanly_in_a_real_process(locale: str) -> None:
    # printf 'caf\xe9' | llmrelay ask -p mock -   (it ended in "surrogates not allowed")
    result = cli_process("ask", "-p", "mock", "-", stdin=b"caf\xe9", LC_ALL=locale)
    assert result.returncode == 2
    line = one_error_line(result.stderr.decode())
    assert line.startswith("Error: stdin: line 1: not valid UTF-8 (byte 0xe9 at offset 3)")


def test_a_script_for_chat_stops_at_the_line_that_is_not_utf8() -> None:
    script = b"first turn\nsecond caf\xe9\nthird\n"
    result = invoke("-p", "mock", "chat", input=script)
    assert result.exit_code == 2
    assert result.stdout == "echo: first turn\n"  # the turns before it were answered
    error = result.stderr.splitlines()[-1]
    assert error.startswith("Error: stdin: line 2: not valid UTF-8 (byte 0xe9 at offset 21)")
    assert HINT_FREE not in result.stderr


# -- arguments ---------------------------------------------------------------------------------

# What Python makes of the argument bytes b"caf\xe9" in a UTF-8 locale (surrogateescape).
LATIN1_CAFE = b"caf\xe9".decode("utf-8", "surrogateescape")


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["-p", "mock", "ask", LATIN1_CAFE], "argument PROMPT"),
        (["-p", "mock", "ask", "well", f"très {LATIN1_CAFE}"], "argument PROMPT"),
        (["-p", "mock", "ask", "-s", LATIN1_CAFE, "hi"], "option -s/--system"),
        (["-p", "mock", "-m", LATIN1_CAFE, "ask", "hi"], "option -m/--model"),
        (["-p", "mock", "ask", "hi", "-m", LATIN1_CAFE], "option -m/--model"),
        (["-p", LATIN1_CAFE, "ask", "hi"], "option -p/--provider"),
        (["-p", "mock", "chat", "-s", LATIN1_CAFE], "option -s/--system"),
    ],
)
def test_an_argument_that_is_not_utf8_is_a_usage_error(args: list[str], named: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2
    line = one_error_line(result.stderr)
    assert line.startswith(f"Error: {named}: not valid UTF-8 (byte 0xe9 at offset ")


def test_the_offset_of_a_bad_argument_byte_counts_bytes_not_characters() -> None:
    # "très " is 6 bytes in UTF-8: the bad byte of "café" is at offset 6 + 3.
    result = invoke("-p", "mock", "ask", f"très {LATIN1_CAFE}")
    assert "(byte 0xe9 at offset 9)" in one_error_line(result.stderr)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX argv bytes")
@pytest.mark.parametrize("locale", ["C.UTF-8", "C"])
def test_argument_bytes_from_a_real_command_line(locale: str) -> None:
    result = cli_process("-p", "mock", "ask", b"caf\xe9", LC_ALL=locale)
    assert result.returncode == 2
    line = one_error_line(result.stderr.decode())
    assert line.startswith("Error: argument PROMPT: not valid UTF-8 (byte 0xe9 at offset 3)")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX argv bytes")
def test_a_file_name_in_another_encoding_is_still_a_file_name(tmp_path: Path) -> None:
    # Paths are bytes on POSIX: a Latin-1 file name is fine; only text is checked.
    name = os.fsencode(tmp_path) + b"/caf\xe9.jsonl"
    with open(name, "wb") as f:
        f.write(b'{"id": 1, "prompt": "hi"}\n')
    out = tmp_path / "out.jsonl"
    result = cli_process("-p", "mock", "batch", name, "-o", str(out), "--no-progress")
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert '"text": "echo: hi"' in out.read_text()


# -- config files ------------------------------------------------------------------------------

LATIN1_TOML = '[profiles.work]\nprovider = "mock"\nmodel = "café"\n'.encode("latin-1")
TOML_BAD_AT = LATIN1_TOML.index(b"\xe9")  # 46


def test_a_latin1_config_file_is_named_by_line_and_offset(tmp_path: Path) -> None:
    (tmp_path / "llmrelay.toml").write_bytes(LATIN1_TOML)
    result = invoke("--profile", "work", "ask", "hi")
    assert result.exit_code == 2
    assert one_error_line(result.stderr) == (
        f"Error: llmrelay.toml: line 3: not valid UTF-8 (byte 0xe9 at offset {TOML_BAD_AT}); "
        "save the file as UTF-8"
    )


def test_a_latin1_config_file_is_a_config_error_in_the_library(tmp_path: Path) -> None:
    (tmp_path / "llmrelay.toml").write_bytes(LATIN1_TOML)
    with pytest.raises(
        llmrelay.ConfigError,
        match=rf"line 3: not valid UTF-8 \(byte 0xe9 at offset {TOML_BAD_AT}\)",
    ):
        llmrelay.AsyncClient.from_profile("work", cwd=tmp_path)


def test_a_config_file_with_a_byte_order_mark_reads(tmp_path: Path) -> None:
    (tmp_path / "llmrelay.toml").write_bytes(
        b"\xef\xbb\xbf" + b'[profiles.work]\nprovider = "mock"\nmodel = "mock-echo-large"\n'
    )
    result = invoke("--profile", "work", "ask", "hi", "-v")
    assert result.exit_code == 0, result.stderr
    assert "mock-echo-large" in result.stderr


def test_a_latin1_config_file_given_by_option_or_variable(tmp_path: Path) -> None:
    path = tmp_path / "team.toml"
    path.write_bytes(LATIN1_TOML)
    by_option = invoke("--config", str(path), "--profile", "work", "ask", "hi")
    by_variable = invoke("--profile", "work", "ask", "hi", env={"LLMRELAY_CONFIG": str(path)})
    for result in (by_option, by_variable):
        assert result.exit_code == 2
        line = one_error_line(result.stderr)
        assert f"team.toml: line 3: not valid UTF-8 (byte 0xe9 at offset {TOML_BAD_AT})" in line


@pytest.mark.skipif(
    __import__("importlib.util").util.find_spec("dotenv") is None, reason="python-dotenv"
)
def test_a_latin1_dotenv_file_is_named_by_line_and_offset(tmp_path: Path) -> None:
    (tmp_path / ".env").write_bytes("A=1\nLLMRELAY_MODEL=café\n".encode("latin-1"))
    result = invoke("-p", "mock", "ask", "hi")
    assert result.exit_code == 2
    assert one_error_line(result.stderr) == (
        "Error: .env: line 2: not valid UTF-8 (byte 0xe9 at offset 22); save the file as UTF-8"
    )


@pytest.mark.skipif(
    __import__("importlib.util").util.find_spec("dotenv") is None, reason="python-dotenv"
)
def test_a_utf8_dotenv_file_still_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLMRELAY_MODEL", raising=False)
    (tmp_path / ".env").write_bytes(b"\xef\xbb\xbfLLMRELAY_MODEL=mock-echo-large\n")
    result = invoke("-p", "mock", "ask", "hi", "-v")
    assert result.exit_code == 0, result.stderr
    assert "mock-echo-large" in result.stderr
    os.environ.pop("LLMRELAY_MODEL", None)  # load_dotenv set it in this process


# -- batch files -------------------------------------------------------------------------------


def test_a_batch_file_line_that_is_not_utf8_is_named_and_nothing_is_sent(tmp_path: Path) -> None:
    prompts = tmp_path / "in.jsonl"
    data = (
        b'{"id": 1, "prompt": "one"}\n'
        b'{"id": 2, "prompt": "two"}\n'
        + '{"id": 3, "prompt": "café"}\n'.encode("latin-1")
        + '{"id": 4, "prompt": "naïve"}\n'.encode("latin-1")
    )
    prompts.write_bytes(data)
    result = invoke("-p", "mock", "batch", str(prompts), "-o", str(tmp_path / "out.jsonl"))
    assert result.exit_code == 2
    assert one_error_line(result.stderr) == (
        f"Error: {prompts}: line 3: not valid UTF-8 (byte 0xe9 at offset {data.index(0xE9)}); "
        "save the file as UTF-8; nothing was sent"
    )
    assert not (tmp_path / "out.jsonl").exists()


def test_a_results_file_line_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    prompts = tmp_path / "in.jsonl"
    prompts.write_text('{"id": 1, "prompt": "one"}\n{"id": 2, "prompt": "two"}\n')
    out = tmp_path / "out.jsonl"
    out.write_bytes(b'{"id": 1, "ok": true}\n{"id": 2, "ok": false, "text": "caf\xe9"}\n')
    result = invoke("-p", "mock", "batch", str(prompts), "-o", str(out))
    assert result.exit_code == 2
    assert one_error_line(result.stderr).startswith(
        f"Error: {out}: line 2: not valid UTF-8 (byte 0xe9 at offset 57)"
    )
