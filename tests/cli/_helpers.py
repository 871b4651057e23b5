"""Front ends for the CLI tests: click's CliRunner in process, and real subprocesses with the
source tree on PYTHONPATH."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from llmrelay.cli._app import cli

SRC = Path(__file__).resolve().parents[2] / "src"


def invoke(
    *args: str, input: str | bytes | None = None, env: dict[str, str] | None = None
) -> Result:
    """Run the CLI in process, as a user would type it."""
    return CliRunner().invoke(cli, list(args), input=input, env=env, catch_exceptions=False)


def subprocess_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC) + os.pathsep + env.get("PYTHONPATH", "")
    env["NO_COLOR"] = "1"
    env["COLUMNS"] = "120"
    env.update(extra)
    return env


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 30, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m llmrelay.cli ARGS`` in a real process."""
    return subprocess.run(
        [sys.executable, "-m", "llmrelay.cli", *args],
        env=env or subprocess_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
        **kwargs,
    )


def popen_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "llmrelay.cli", *args],
        env=env or subprocess_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
