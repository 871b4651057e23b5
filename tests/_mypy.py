"""Run mypy --strict on snippet files, for tests of what a type checker says about the public API.

Each snippet is only type-checked, never run. A line that must fail carries an
``# error: <text>`` marker with a piece of the expected message; `expected_errors` reads them.
(Used by tests/test_typing.py and tests/test_messages_typing.py: one way of running mypy.)
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import llmrelay


def dedent(source: str) -> str:
    return textwrap.dedent(source).lstrip("\n")


def expected_errors(source: str) -> dict[int, str]:
    """{line number: the marked piece of the message} of a dedented snippet."""
    return {
        number: line.split("# error: ", 1)[1]
        for number, line in enumerate(source.splitlines(), start=1)
        if "# error: " in line
    }


def run_mypy(work: Path, snippets: dict[str, str]) -> dict[str, dict[int, str]]:
    """One mypy run over the snippets ({file stem: source}, dedented here) in `work`:
    {file stem: {line: every message on that line, joined}}."""
    for name, source in snippets.items():
        (work / f"{name}.py").write_text(dedent(source))
    (work / "mypy.ini").write_text("[mypy]\n")  # no project settings: the flags below only
    env = dict(os.environ)
    package_root = Path(llmrelay.__file__).parent.parent
    if package_root.name not in ("site-packages", "dist-packages"):
        # A source checkout (PYTHONPATH=src, an editable install): check this very copy.
        env["MYPYPATH"] = str(package_root)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(work / "mypy.ini"),
            "--cache-dir",
            str(work / ".mypy_cache"),
            "--strict",
            "--python-version",
            "3.11",
            "--follow-imports",
            "silent",  # the library's own errors are the main mypy job's business
            "--no-error-summary",
            "--show-error-codes",
            *(f"{name}.py" for name in snippets),
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode in (0, 1), result.stdout + result.stderr
    found: dict[str, dict[int, str]] = {name: {} for name in snippets}
    pattern = re.compile(r"(\w+)\.py:(\d+): error: (.*)")
    for line in result.stdout.splitlines():
        match = pattern.match(line)
        if match and match.group(1) in found:
            stem, number, message = match.groups()
            previous = found[stem].get(int(number), "")
            found[stem][int(number)] = f"{previous} {message}".strip()
    return found


def assert_reports_exactly(found: dict[int, str], source: str) -> None:
    """mypy reported an error on each marked line of `source`, with the marked text, and on no
    other line."""
    expected = expected_errors(dedent(source))
    assert sorted(found) == sorted(expected), found
    for number, text in expected.items():
        assert text in found[number], (number, found[number])
