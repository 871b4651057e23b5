"""``llmrelay batch --provider-batch``: in process against the in-process mock (outputs, faults,
a stale or foreign state file), and as a real process against a loopback mock server: killed
after it submitted, run again, it picks up the same job and submits nothing twice."""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from llmrelay.mock import MockEngine, serve

from ._helpers import invoke, popen_cli, run_cli, subprocess_env

STATE = ".provider-batch.json"


def write_prompts(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def read_results(path: Path) -> dict[Any, dict[str, Any]]:
    return {(r := json.loads(line))["id"]: r for line in path.read_text().splitlines()}


def provider_batch(*args: str) -> Any:
    return invoke(
        "-p", "mock", "batch", "--no-progress", "--provider-batch", "--poll-interval", "0.02", *args
    )


def test_one_result_line_per_prompt_in_the_live_format(tmp_path: Path) -> None:
    prompts = write_prompts(
        tmp_path / "in.jsonl",
        [
            {"id": 1, "prompt": "first"},
            {"id": "two", "messages": [{"role": "user", "content": "second"}]},
            {"id": 3, "prompt": "one two three four", "params": {"max_tokens": 2}},
            {"id": 4, "prompt": "large", "model": "mock-echo-large"},
        ],
    )
    result = provider_batch(str(prompts), "-o", "out.jsonl")
    assert result.exit_code == 0, result.output
    records = read_results(tmp_path / "out.jsonl")
    assert set(records) == {1, "two", 3, 4}
    first = records[1]
    assert first["ok"] is True and first["text"] == "echo: first"
    assert first["usage"] == {"prompt_tokens": 2, "completion_tokens": 2, "total_tokens": 4}
    assert first["finish_reason"] == "stop" and first["model"] == "mock-echo"
    assert first["batch_id"].startswith("batch_")
    assert {"latency_ms", "attempts"} <= set(first)
    assert records[3]["text"] == "echo: one " and records[3]["finish_reason"] == "length"
    assert records[4]["model"] == "mock-echo-large"
    # Three groups (plain, max_tokens=2, another model): three jobs.
    assert len({r["batch_id"] for r in records.values()}) == 3
    assert "submitted 2 prompts as mock batch" in result.stderr
    assert "provider batch completed · 4/4 done · 4 ok · 0 failed" in result.stderr
    assert "jobs submitted" in result.stdout
    assert not (tmp_path / ("out.jsonl" + STATE)).exists()  # cleaned up once written


def test_failed_items_are_failed_records_and_exit_1(tmp_path: Path) -> None:
    prompts = write_prompts(
        tmp_path / "in.jsonl",
        [
            {"id": 1, "prompt": "fine"},
            {"id": 2, "prompt": "broken", "model": "mock-echo+fault=400"},
        ],
    )
    result = provider_batch(str(prompts), "-o", "out.jsonl")
    assert result.exit_code == 1
    assert "1 of 2 prompts failed" in result.output
    failed = read_results(tmp_path / "out.jsonl")[2]
    assert failed["ok"] is False and failed["error"]["type"] == "BadRequestError"
    assert failed["error"]["status_code"] == 400
    # --retry-failed sends just that one again, as a new job.
    again = provider_batch(str(prompts), "-o", "out.jsonl", "--retry-failed")
    assert "removed 1 failed results" in again.stderr
    assert "submitted 1 prompts" in again.stderr


def test_done_ids_are_skipped_and_a_finished_file_sends_nothing(tmp_path: Path) -> None:
    prompts = write_prompts(tmp_path / "in.jsonl", [{"id": i, "prompt": f"p{i}"} for i in range(3)])
    (tmp_path / "out.jsonl").write_text(json.dumps({"id": 0, "ok": True, "text": "x"}) + "\n")
    result = provider_batch(str(prompts), "-o", "out.jsonl")
    assert result.exit_code == 0, result.output
    assert "submitted 2 prompts" in result.stderr
    assert sorted(read_results(tmp_path / "out.jsonl")) == [0, 1, 2]
    # A state file left by a run that wrote everything but was killed before cleaning up.
    (tmp_path / ("out.jsonl" + STATE)).write_text('{"version": 1, "jobs": []}')
    result = provider_batch(str(prompts), "-o", "out.jsonl")
    assert result.exit_code == 0 and "nothing to send" in result.stderr
    assert not (tmp_path / ("out.jsonl" + STATE)).exists()


def test_a_run_killed_while_creating_a_job_asks_before_submitting_again(tmp_path: Path) -> None:
    prompts = write_prompts(tmp_path / "in.jsonl", [{"id": 1, "prompt": "x"}])
    state = {"version": 1, "started": 0, "jobs": [{"id": None, "ids": ["1"]}]}
    (tmp_path / ("out.jsonl" + STATE)).write_text(json.dumps(state))
    result = provider_batch(str(prompts), "-o", "out.jsonl")
    assert result.exit_code == 1
    assert "may exist without llmrelay knowing its id" in result.output
    assert not (tmp_path / "out.jsonl").exists()


def test_a_state_file_for_other_prompts_is_refused(tmp_path: Path) -> None:
    prompts = write_prompts(tmp_path / "in.jsonl", [{"id": 1, "prompt": "x"}])
    state = {"version": 1, "started": 0, "jobs": [{"id": "batch_1", "ids": ['"gone"']}]}
    (tmp_path / ("out.jsonl" + STATE)).write_text(json.dumps(state))
    result = provider_batch(str(prompts), "-o", "out.jsonl")
    assert result.exit_code == 1 and "not in the prompts file any more" in result.output
    (tmp_path / ("out.jsonl" + STATE)).write_text("garbage")
    result = provider_batch(str(prompts), "-o", "out.jsonl")
    assert result.exit_code == 1 and "not a provider-batch state file" in result.output


def test_a_provider_without_a_batch_api_is_a_usage_error(tmp_path: Path) -> None:
    prompts = write_prompts(tmp_path / "in.jsonl", [{"id": 1, "prompt": "x"}])
    result = invoke(
        "-p", "deepseek", "--model", "deepseek-chat",
        "batch", str(prompts), "--provider-batch", "--no-progress",
        env={"DEEPSEEK_API_KEY": "sk-test-deepseek"},
    )  # fmt: skip
    assert result.exit_code == 2
    assert "no Batch API" in result.output and "anthropic, gemini, mock, openai" in result.output
    assert list(tmp_path.iterdir()) == [prompts]  # no results file, no state file


def test_a_job_the_server_refuses_leaves_no_state_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import llmrelay

    prompts = write_prompts(tmp_path / "in.jsonl", [{"id": 1, "prompt": "x"}])

    async def refused(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise llmrelay.BadRequestError("mock returned 400: no", status_code=400)

    monkeypatch.setattr(llmrelay.AsyncClient, "submit_batch", refused)
    result = provider_batch(str(prompts), "-o", "out.jsonl")
    assert result.exit_code == 1 and "BadRequestError" in result.output
    assert not (tmp_path / ("out.jsonl" + STATE)).exists()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("stop", ["SIGKILL", "SIGINT"])
def test_a_killed_run_resumes_the_same_job_and_submits_once(tmp_path: Path, stop: str) -> None:
    count = 50
    prompts = write_prompts(
        tmp_path / "prompts.jsonl", [{"id": i, "prompt": f"prompt {i}"} for i in range(count)]
    )
    out = tmp_path / "results.jsonl"
    state_file = tmp_path / ("results.jsonl" + STATE)
    engine = MockEngine(batch_delay=1.5)  # long enough to kill the first run while it polls
    env = subprocess_env(OPENAI_API_KEY="sk-dummy-for-the-mock")
    with serve(engine) as url:
        args = [
            "--provider", "openai", "--base-url", f"{url}/v1", "--model", "mock-echo",
            "batch", str(prompts), "-o", str(out), "--provider-batch", "--poll-interval", "0.05",
        ]  # fmt: skip
        process = popen_cli(*args, "--no-progress", env=env)
        try:
            deadline = time.monotonic() + 20
            job_id = None
            while time.monotonic() < deadline and process.poll() is None and job_id is None:
                if state_file.exists():
                    jobs = json.loads(state_file.read_text())["jobs"]
                    job_id = jobs[0]["id"] if jobs else None
                time.sleep(0.01)
            assert job_id is not None and process.poll() is None, "not killed while polling"
            process.send_signal(getattr(signal, stop))  # a crash, or Ctrl-C
            process.wait(10)
        finally:
            if process.poll() is None:
                process.kill()
            _, stderr = process.communicate()
        if stop == "SIGINT":
            assert process.returncode == 130
            assert "run the same command again to pick them up" in stderr
        assert engine.batches.created == 1
        assert not out.exists()  # killed before the job ended: nothing written yet

        result = run_cli(*args, env=env)
        assert result.returncode == 0, result.stderr
        assert "resuming 1 provider batch job" in result.stderr
        assert "submitted" not in result.stderr
        assert engine.batches.created == 1  # the same job, never a second submission
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["id"] for r in records) == list(range(count))
    assert {r["batch_id"] for r in records} == {job_id}
    assert all(r["ok"] and r["text"] == f"echo: prompt {r['id']}" for r in records)
    assert not state_file.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--provider-batch", "--rpm", "60"], "--rpm pace or price the live batch"),
        (["--provider-batch", "--price", "m=1,2"], "--price pace or price"),
        (["--provider-batch", "--max-cost", "5"], "--max-cost bounds the live batch"),
        (["--poll-interval", "1"], "--poll-interval goes with --provider-batch"),
    ],
)
def test_options_of_the_other_mode_are_usage_errors(
    tmp_path: Path, args: list[str], message: str
) -> None:
    prompts = write_prompts(tmp_path / "in.jsonl", [{"id": 1, "prompt": "x"}])
    result = invoke("-p", "mock", "batch", str(prompts), "--no-progress", *args)
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "in.results.jsonl").exists()


@pytest.fixture(scope="module")
def batch_server() -> Any:
    with serve(MockEngine(batch_delay=0)) as url:
        yield url


@pytest.mark.parametrize(
    ("provider", "root", "key"),
    [
        ("openai", "/v1", "OPENAI_API_KEY"),
        ("anthropic", "", "ANTHROPIC_API_KEY"),
        ("gemini", "/v1beta", "GEMINI_API_KEY"),
    ],
)
def test_every_family_over_http(
    tmp_path: Path, batch_server: str, provider: str, root: str, key: str
) -> None:
    prompts = write_prompts(tmp_path / "in.jsonl", [{"id": i, "prompt": f"q{i}"} for i in range(5)])
    result = invoke(
        "--provider", provider, "--base-url", batch_server + root, "--model", "mock-echo",
        "batch", str(prompts), "-o", "out.jsonl", "--provider-batch", "--no-progress",
        "--poll-interval", "0.02",
        env={key: "sk-test-provider-batch-cli"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    records = read_results(tmp_path / "out.jsonl")
    assert [records[i]["text"] for i in range(5)] == [f"echo: q{i}" for i in range(5)]
    assert f"as {provider} batch" in result.stderr


def test_a_failure_while_polling_keeps_the_job_for_the_next_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import llmrelay

    prompts = write_prompts(tmp_path / "in.jsonl", [{"id": 1, "prompt": "x"}])

    async def unreachable(self: Any, batch_id: str) -> Any:
        raise llmrelay.APIConnectionError("mock: connection refused", provider="mock")

    monkeypatch.setattr(llmrelay.AsyncClient, "get_batch", unreachable)
    result = provider_batch(str(prompts), "-o", "out.jsonl")
    assert result.exit_code == 1
    assert "APIConnectionError" in result.output and "run the same command again" in result.output
    state = json.loads((tmp_path / ("out.jsonl" + STATE)).read_text())
    assert state["jobs"][0]["id"].startswith("batch_")
