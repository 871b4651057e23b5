"""Every ```python block of docs/**/*.md and README.md runs, offline, against the embedded mock.

- A block runs as a script of its own (fresh namespace, its own `__main__`), in a scratch
  working directory, with no provider keys, base URLs, proxies or ``LLMRELAY_*`` settings in
  the environment except ``LLMRELAY_PROVIDER=mock``, under a time limit.
- A block whose first line is ``# docs: no-run`` (it needs a real provider, a key, the network
  or a server) is only compiled (top-level ``await`` allowed), then type-checked with the other
  such blocks in one mypy run that tolerates the names a fragment leaves undefined.
- Blocks whose first line is ``# file: NAME.py`` make up a small project per page, written to a
  scratch directory; pytest runs it (with llmrelay's plugin) when one of them is a ``test_*.py``.
  That is how the testing guide's example app and its tests are checked.

Tests are named by file and line (``docs/guides/streaming.md:12``), so a failure points at the
block. Other fences (```bash, ```toml, ```text, ```console) are not Python and are skipped.
"""

from __future__ import annotations

import ast
import os
import re
import runpy
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import pytest

import llmrelay

pytest_plugins = ("pytester",)

ROOT = Path(__file__).resolve().parent.parent
NO_RUN = "# docs: no-run"
FILE_MARK = re.compile(r"#\s*file:\s*(?P<name>[\w./-]+\.py)\s*$")
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")
PYTHON_INFOS = {"python", "py", "python3"}
# What a no-run fragment may do that a module may not: use names defined elsewhere on the page,
# await at the top level, import the reader's own modules.
MYPY_TOLERATED = ("name-defined", "top-level-await", "import-not-found", "import-untyped")
BLOCK_TIMEOUT = 20.0
# A page's project runs as a reader's would: llmrelay's and anyio's plugins, warnings as errors.
PAGE_PYTEST_ARGS = ("-p", "pytest_llmrelay", "-p", "anyio.pytest_plugin", "-p", "no:cacheprovider")
PAGE_PYTEST_ARGS += (
    "-W",
    "error",
)  # seconds; a block that needs longer is not a documentation example


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    code: str

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def first_line(self) -> str:
        return self.code.lstrip("\n").split("\n", 1)[0].strip()

    @property
    def no_run(self) -> bool:
        return self.first_line == NO_RUN

    @property
    def file_name(self) -> str | None:
        match = FILE_MARK.fullmatch(self.first_line)
        return match["name"] if match else None


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def python_blocks(path: Path) -> Iterator[Block]:
    """The fenced Python blocks of a Markdown file, dedented to their fence's indentation."""
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        info = opening["info"].strip().split(" ", 1)[0].lower().lstrip(".{")
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            stripped = lines[j].strip()
            if stripped.startswith(fence) and set(stripped) <= set(fence[0]):
                break
            body.append(lines[j][len(indent) :] if lines[j].startswith(indent) else lines[j])
            j += 1
        if info in PYTHON_INFOS:
            yield Block(path, i + 1, textwrap.dedent("\n".join(body)) + "\n")
        i = j + 1


ALL_BLOCKS = [block for path in doc_files() for block in python_blocks(path)]
RUN_BLOCKS = [b for b in ALL_BLOCKS if not b.no_run and b.file_name is None]
NO_RUN_BLOCKS = [b for b in ALL_BLOCKS if b.no_run]
PROJECT_PAGES = sorted({b.path for b in ALL_BLOCKS if b.file_name is not None})


def _params(blocks: list[Block]) -> list[object]:
    return [pytest.param(b, id=b.id) for b in blocks]


@pytest.fixture
def docs_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The environment a reader would have with the mock as the default: no keys, no config
    file, nothing from the developer's machine (conftest already removed keys and proxies)."""
    monkeypatch.setenv("LLMRELAY_PROVIDER", "mock")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / ".config"))
    monkeypatch.delenv("LLMRELAY_LOG", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


class _TimeLimit:
    """SIGALRM-based limit for a block run in this (main) thread; asyncio.run() inside a block
    sees the exception raised at its await point and unwinds normally."""

    def __init__(self, seconds: float, what: str) -> None:
        self.seconds = seconds
        self.what = what

    def _expired(self, signum: int, frame: FrameType | None) -> None:
        raise TimeoutError(f"{self.what} ran for more than {self.seconds} s")

    def __enter__(self) -> None:
        self._previous = signal.signal(signal.SIGALRM, self._expired)
        signal.setitimer(signal.ITIMER_REAL, self.seconds)

    def __exit__(self, *exc: object) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self._previous)


def _run_script(block: Block, directory: Path) -> None:
    script = directory / f"docs_block_{block.line}.py"
    script.write_text(block.code, encoding="utf-8")
    with _TimeLimit(BLOCK_TIMEOUT, block.id):
        runpy.run_path(str(script), run_name="__main__")


def test_blocks_are_found() -> None:
    # A broken collector must not pass by finding nothing.
    assert len(RUN_BLOCKS) >= 20
    assert any(b.path.name == "README.md" for b in ALL_BLOCKS)


@pytest.mark.parametrize("block", _params(RUN_BLOCKS))
def test_block_runs(block: Block, docs_env: Path) -> None:
    _run_script(block, docs_env)


@pytest.mark.parametrize("block", _params(NO_RUN_BLOCKS))
def test_no_run_block_compiles(block: Block) -> None:
    compile(block.code, block.id, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)


def test_no_run_blocks_type_check(tmp_path: Path) -> None:
    """One mypy run over every no-run block. A fragment may use names it does not define
    (`client`, `messages`) and top-level await; anything else mypy finds is an error."""
    if not NO_RUN_BLOCKS:
        pytest.skip("no `# docs: no-run` blocks")
    names: dict[str, tuple[str, int]] = {}
    for n, block in enumerate(NO_RUN_BLOCKS):
        name = f"block_{n}.py"
        code, offset = _as_module(block.code)
        (tmp_path / name).write_text(code, encoding="utf-8")
        names[name] = (block.id, offset)
    output = _mypy(tmp_path, list(names))
    problems = [
        re.sub(r"^(block_\d+\.py):(\d+)", lambda m: _where(names, m), line)
        for line in output.splitlines()
        if re.match(r"^block_\d+\.py:\d+: error", line)
    ]
    assert not problems, "\n".join(problems)


def _mypy(work: Path, files: list[str]) -> str:
    """mypy's default checks (not --strict: fragments leave out annotations) on `files`."""
    (work / "mypy.ini").write_text("[mypy]\n")  # none of the project's settings
    env = dict(os.environ)
    package_root = Path(llmrelay.__file__).parent.parent
    if package_root.name not in ("site-packages", "dist-packages"):
        env["MYPYPATH"] = str(package_root)  # a source checkout: check this very copy
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(work / "mypy.ini")]
        + ["--cache-dir", str(work / ".mypy_cache"), "--python-version", "3.11"]
        + ["--follow-imports", "silent", "--no-error-summary", "--show-error-codes"]
        + ["--check-untyped-defs", "--allow-redefinition"]
        + [f"--disable-error-code={code}" for code in MYPY_TOLERATED]
        + files,
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode in (0, 1), result.stdout + result.stderr
    return result.stdout


def _as_module(code: str) -> tuple[str, int]:
    """`code` as mypy can read it, and how many lines were added before it: a fragment with
    top-level ``await``/``async with``/``async for`` becomes the body of an async function."""
    try:
        compile(code, "<block>", "exec", dont_inherit=True)
    except SyntaxError:
        return "async def _docs_fragment() -> None:\n" + textwrap.indent(code, "    "), 1
    return code, 0


def _where(names: dict[str, tuple[str, int]], match: re.Match[str]) -> str:
    block_id, offset = names[match[1]]
    path, line = block_id.rsplit(":", 1)
    return f"{path}:{int(line) + int(match[2]) - offset}"


@pytest.mark.parametrize("page", PROJECT_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_project_passes_its_tests(
    page: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = [b for b in ALL_BLOCKS if b.path == page and b.file_name is not None]
    for block in files:
        assert block.file_name is not None
        target = pytester.path / block.file_name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(block.code, encoding="utf-8")
    tests = [b for b in files if Path(b.file_name or "").name.startswith("test_")]
    if not tests:
        for block in files:
            compile(block.code, block.id, "exec", dont_inherit=True)
        return
    # As in a reader's project with llmrelay installed: the plugins by name, no conftest of
    # ours, in a fresh interpreter (the page's modules must not leak into this one).
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(pytester.path)])
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", *PAGE_PYTEST_ARGS, str(pytester.path)],
        cwd=pytester.path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"{page.name}: the page's tests failed\n{result.stdout}"
    assert " passed" in result.stdout and "skipped" not in result.stdout, result.stdout


SAMPLE = """\
Text.

```python
print("top")
```

1. A list item:

   ```python
   # docs: no-run
   client.chat("indented")
   ```

~~~py
# file: app.py
X = 1
~~~

````markdown
```python
print("inside another fence: not a block of this page")
```
````

```bash
echo not python
```
"""


def test_the_collector_reads_fences_as_markdown_does(tmp_path: Path) -> None:
    page = tmp_path / "sample.md"
    page.write_text(SAMPLE, encoding="utf-8")
    found = [(b.line, b.code, b.no_run, b.file_name) for b in python_blocks(page)]
    assert found == [
        (3, 'print("top")\n', False, None),
        (9, '# docs: no-run\nclient.chat("indented")\n', True, None),
        (14, "# file: app.py\nX = 1\n", False, "app.py"),
    ]
