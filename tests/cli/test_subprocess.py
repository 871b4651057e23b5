"""The CLI as a real process talking real HTTP to `llmrelay.mock.serve()`: ask, models, a batch
killed with SIGKILL and resumed, `.env` loading, and the demo."""

from __future__ import annotations

import json
import re
import signal
import sys
import time
from pathlib import Path

import pytest

from ._helpers import popen_cli, run_cli, subprocess_env

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def openai_args(url: str) -> list[str]:
    return ["--provider", "openai", "--base-url", f"{url}/v1", "--model", "mock-echo"]


def openai_env() -> dict[str, str]:
    return subprocess_env(OPENAI_API_KEY="sk-dummy-for-the-mock")


def test_ask_over_http(server_url: str) -> None:
    result = run_cli(*openai_args(server_url), "ask", "Hello over HTTP", env=openai_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout == "echo: Hello over HTTP\n"


def test_models_over_http(server_url: str) -> None:
    result = run_cli(*openai_args(server_url), "models", env=openai_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["mock-echo", "mock-echo-large", "mock-embed"]


def test_a_killed_batch_resumes_with_exactly_one_line_per_id(
    server_url: str, tmp_path: Path
) -> None:
    count = 200
    prompts = tmp_path / "prompts.jsonl"
    # Each request stalls 10 ms at the server, so the run lasts long enough to be killed.
    model = "mock-echo+fault=stall;seconds=0.01"
    prompts.write_text(
        "".join(
            json.dumps({"id": i, "prompt": f"prompt {i}", "model": model}) + "\n"
            for i in range(count)
        )
    )
    out = tmp_path / "results.jsonl"
    args = [
        *openai_args(server_url),
        "batch",
        str(prompts),
        "-o",
        str(out),
        "--max-concurrency",
        "2",
    ]
    process = popen_cli(*args, "--no-progress", env=openai_env())
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and process.poll() is None:
            if out.exists() and out.read_bytes().count(b"\n") >= 30:
                break
            time.sleep(0.01)
        assert process.poll() is None, "the batch finished before it could be killed"
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
    first_run = out.read_text().splitlines()
    assert 30 <= len(first_run) < count
    done = {json.loads(line)["id"] for line in first_run if line.endswith("}")}
    pending = next(i for i in range(count) if i not in done)
    with out.open("a") as f:  # and as if the kill had struck in the middle of a write
        f.write(json.dumps({"id": pending, "ok": True})[:15])

    result = run_cli(*args, env=openai_env())
    assert result.returncode == 0, result.stderr
    assert "dropped a half-written last line" in result.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]  # every line is JSON
    assert sorted(record["id"] for record in records) == list(range(count))
    assert all(record["ok"] for record in records)


def test_dotenv_file_is_loaded(tmp_path: Path) -> None:
    pytest.importorskip("dotenv")
    (tmp_path / ".env").write_text("LLMRELAY_PROVIDER=mock\nLLMRELAY_MODEL=mock-echo-large\n")
    result = run_cli("ask", "from dotenv", "-v", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "echo: from dotenv\n"
    assert "mock-echo-large" in result.stderr


def test_the_real_environment_beats_dotenv(tmp_path: Path) -> None:
    pytest.importorskip("dotenv")
    (tmp_path / ".env").write_text("LLMRELAY_PROVIDER=nosuch\n")
    result = run_cli("ask", "hi", cwd=tmp_path, env=subprocess_env(LLMRELAY_PROVIDER="mock"))
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_demo_runs_offline_and_every_prompt_has_an_outcome(tmp_path: Path) -> None:
    started = time.monotonic()
    result = run_cli(
        "demo", "--prompts", "120", "--no-progress", "--keep", str(tmp_path), timeout=60
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    assert "echo: Hello, llmrelay!" in result.stdout
    assert "every prompt has an outcome" in result.stdout
    # The mock is free; the summary prices its tokens as gpt-4o-mini, and says so.
    assert re.search(r"│ cost +│ \$0\.\d{4,6} +│", result.stdout)
    assert "prices its tokens as gpt-4o-mini" in result.stdout
    ids = [json.loads(line)["id"] for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert sorted(ids) == list(range(120))
    assert elapsed < 30


def test_mock_serve_command_serves_until_interrupted(tmp_path: Path) -> None:
    import httpx

    process = popen_cli("mock", "serve", "--port", "0", "--no-access-log", "--fault-rate", "0")
    try:
        assert process.stderr is not None
        url = ""
        deadline = time.monotonic() + 15
        while not url and time.monotonic() < deadline:
            line = process.stderr.readline()
            if "llmrelay mock server on" in line:
                url = line.split(" on ")[1].strip()
        assert url.startswith("http://127.0.0.1:")
        for _ in range(200):  # the banner comes just before the server listens
            try:
                response = httpx.get(f"{url}/v1/models", timeout=1)
                break
            except httpx.ConnectError:
                time.sleep(0.01)
        assert response.json()["data"][0]["id"] == "mock-echo"
        process.send_signal(signal.SIGINT)
        assert process.wait(10) == 0
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


def test_mock_serve_rejects_a_bad_fault_spec() -> None:
    result = run_cli("mock", "serve", "--port", "0", "--fault", "418;bogus=1")
    assert result.returncode == 2
    assert "unknown fault option 'bogus'" in result.stderr
