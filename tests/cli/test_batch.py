"""`llmrelay batch` in process (CliRunner, in-process mock provider): outputs, input checks,
failures, resuming and the summary."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from ._helpers import invoke


def write_prompts(path: Path, lines: list[Any]) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def read_results(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def batch(*args: str) -> Any:
    return invoke("-p", "mock", "batch", "--no-progress", *args)


def test_one_result_line_per_prompt(tmp_path: Path) -> None:
    prompts = write_prompts(
        tmp_path / "in.jsonl",
        [
            {"id": 1, "prompt": "first prompt"},
            {"id": "b", "messages": [{"role": "system", "content": "x"},
                                     {"role": "user", "content": "second"}]},
            {"id": 3, "prompt": "one two three four", "params": {"max_tokens": 2}},
            {"id": 4, "prompt": "large", "model": "mock-echo-large", "meta": "ignored"},
        ],
    )  # fmt: skip
    result = batch(str(prompts), "-o", "out.jsonl", "--max-concurrency", "2")
    assert result.exit_code == 0, result.output
    records = {json.dumps(r["id"]): r for r in read_results(tmp_path / "out.jsonl")}
    assert set(records) == {"1", '"b"', "3", "4"}
    first = records["1"]
    assert first["ok"] is True and first["text"] == "echo: first prompt"
    assert first["finish_reason"] == "stop" and first["attempts"] == 1
    assert first["usage"] == {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}
    assert first["latency_ms"] >= 0
    assert records['"b"']["text"] == "echo: second"
    assert records["3"]["text"] == "echo: one " and records["3"]["finish_reason"] == "length"
    assert records["4"]["model"] == "mock-echo-large"
    assert "latency p50/p90/p99" in result.stdout
    assert "prompts in file" in result.stdout


def test_the_default_output_sits_next_to_the_input(tmp_path: Path) -> None:
    prompts = write_prompts(tmp_path / "jobs.jsonl", [{"id": 1, "prompt": "x"}])
    assert batch(str(prompts)).exit_code == 0
    assert read_results(tmp_path / "jobs.results.jsonl")[0]["text"] == "echo: x"


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([{"id": 1, "prompt": "a"}, {"id": 1, "prompt": "b"}], "line 2: duplicate id 1 (first on line 1)"),
        ([{"prompt": "a"}], 'line 1: missing "id"'),
        ([{"id": 1}], 'line 1: give exactly one of "prompt"'),
        ([{"id": 1, "prompt": "a", "messages": []}], 'line 1: give exactly one of "prompt"'),
        (["{not json"], "line 1: not valid JSON"),
        ([{"id": True, "prompt": "a"}], "line 1: id must be a non-empty string or an integer"),
        ([{"id": 1, "prompt": "a", "params": {"temprature": 1}}], "unknown params ['temprature']"),
        ([{"id": 1, "prompt": "a", "params": {"temperature": 9}}], "temperature must be between"),
        ([{"id": 1, "messages": [{"role": "robot", "content": "a"}]}], "has role 'robot'"),
        ([], "no prompts in the file"),
    ],
)  # fmt: skip
def test_bad_input_is_reported_before_anything_is_sent(
    tmp_path: Path, lines: list[Any], message: str
) -> None:
    prompts = write_prompts(tmp_path / "in.jsonl", lines)
    result = batch(str(prompts), "-o", "out.jsonl")
    assert result.exit_code == 2
    assert message in result.stderr
    assert "nothing was sent" in result.stderr
    assert not (tmp_path / "out.jsonl").exists()


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    lines = [{"id": 1, "prompt": "a"}, {"id": 1, "prompt": "b"}, {"prompt": "c"}]
    result = batch(str(write_prompts(tmp_path / "in.jsonl", lines)))
    assert "2 problems" in result.stderr
    assert "line 2: duplicate id" in result.stderr and 'line 3: missing "id"' in result.stderr


def test_failures_are_recorded_and_exit_1(tmp_path: Path) -> None:
    lines = [
        {"id": "ok", "prompt": "fine"},
        {"id": "bad", "prompt": "x", "model": "mock-echo+fault=429;retry-after=0"},
    ]
    prompts = write_prompts(tmp_path / "in.jsonl", lines)
    result = batch(str(prompts), "-o", "out.jsonl", "--max-retries", "1")
    assert result.exit_code == 1
    assert "1 of 2 prompts failed" in result.stderr
    records = {r["id"]: r for r in read_results(tmp_path / "out.jsonl")}
    assert records["ok"]["ok"] is True
    bad = records["bad"]
    assert bad["ok"] is False and bad["attempts"] == 2
    assert bad["error"]["type"] == "RateLimitError" and bad["error"]["status_code"] == 429
    assert "RateLimitError ×1" in result.stdout


def test_retry_failed_sends_only_the_failed_prompts_again(tmp_path: Path) -> None:
    lines = [
        {"id": 1, "prompt": "fine"},
        {"id": 2, "prompt": "flaky", "model": "mock-echo+fault=500;times=1"},
    ]
    prompts = write_prompts(tmp_path / "in.jsonl", lines)
    assert batch(str(prompts), "-o", "out.jsonl", "--max-retries", "0").exit_code == 1
    again = batch(str(prompts), "-o", "out.jsonl", "--retry-failed")
    assert again.exit_code == 0, again.output
    assert "removed 1 failed results" in again.stderr
    records = read_results(tmp_path / "out.jsonl")
    assert sorted(r["id"] for r in records) == [1, 2]
    assert all(r["ok"] for r in records)


def test_rerunning_skips_done_ids_and_drops_a_half_written_line(tmp_path: Path) -> None:
    prompts = write_prompts(tmp_path / "in.jsonl", [{"id": i, "prompt": f"p{i}"} for i in range(6)])
    out = tmp_path / "out.jsonl"
    done = {"id": 0, "ok": True, "text": "from an earlier run"}
    out.write_text(json.dumps(done) + "\n" + '{"id": 1, "ok": tr')  # killed mid-write
    result = batch(str(prompts), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "dropped a half-written last line" in result.stderr
    assert "1 of 6 prompts have results in" in result.stderr
    assert "already; sending the other 5" in result.stderr
    records = read_results(out)
    assert sorted(r["id"] for r in records) == list(range(6))
    assert records[0]["text"] == "from an earlier run"  # kept, not sent again
    assert batch(str(prompts), "-o", str(out)).exit_code == 0  # nothing left: no new lines
    assert len(read_results(out)) == 6


def test_a_complete_last_record_without_newline_is_kept(tmp_path: Path) -> None:
    prompts = write_prompts(
        tmp_path / "in.jsonl", [{"id": 1, "prompt": "a"}, {"id": 2, "prompt": "b"}]
    )
    out = tmp_path / "out.jsonl"
    out.write_text(json.dumps({"id": 1, "ok": True, "text": "kept"}))
    assert batch(str(prompts), "-o", str(out)).exit_code == 0
    records = read_results(out)
    assert [r["id"] for r in records] == [1, 2] and records[0]["text"] == "kept"


def test_a_corrupt_line_in_the_middle_of_the_results_is_an_error(tmp_path: Path) -> None:
    prompts = write_prompts(tmp_path / "in.jsonl", [{"id": 1, "prompt": "a"}])
    out = tmp_path / "out.jsonl"
    out.write_text("garbage\n" + json.dumps({"id": 9, "ok": True}) + "\n")
    result = batch(str(prompts), "-o", str(out))
    assert result.exit_code == 2
    assert "line 1 is not a JSON record" in result.stderr
    assert out.read_text().startswith("garbage\n")  # left for the user to look at


def test_a_batch_without_any_model_fails_before_sending(tmp_path: Path) -> None:
    prompts = write_prompts(tmp_path / "in.jsonl", [{"id": 1, "prompt": "a"}])
    result = invoke(
        "-p", "openai", "--base-url", "http://127.0.0.1:9/v1", "batch", str(prompts),
        env={"OPENAI_API_KEY": "unused"},
    )  # fmt: skip
    assert result.exit_code == 2
    assert "line 1 names no model" in result.stderr


def test_rate_limits_and_the_progress_bar(tmp_path: Path) -> None:
    prompts = write_prompts(tmp_path / "in.jsonl", [{"id": i, "prompt": "p"} for i in range(5)])
    result = invoke("-p", "mock", "batch", str(prompts), "--rpm", "6000", "--tpm", "1000000")
    assert result.exit_code == 0, result.output
    assert "5/5" in result.stderr  # the bar's final state
    assert len(read_results(tmp_path / "in.results.jsonl")) == 5


def test_the_example_prompts_file_runs(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "batch_prompts.jsonl"
    result = batch(str(example), "-o", str(tmp_path / "out.jsonl"))
    assert result.exit_code == 0, result.output
    records = read_results(tmp_path / "out.jsonl")
    assert {r["id"] for r in records} == {"greeting", "haiku", "summary", "short", "translate", 6}
    assert all(r["ok"] for r in records)


def test_an_authentication_error_stops_the_run_and_resumes_later(tmp_path: Path) -> None:
    lines = [{"id": i, "prompt": "p"} for i in range(50)]
    lines[3]["model"] = "mock-echo+fault=401"
    prompts = write_prompts(tmp_path / "in.jsonl", lines)
    result = batch(str(prompts), "-o", "out.jsonl", "--max-concurrency", "1")
    assert result.exit_code == 1
    assert "stopped: AuthenticationError" in result.stderr
    assert "run the same command to resume" in result.stderr
    written = read_results(tmp_path / "out.jsonl")
    assert 3 <= len(written) < 50 and 3 not in {r["id"] for r in written}


def test_a_rerun_still_exits_1_while_earlier_failures_stay_in_the_results(tmp_path: Path) -> None:
    lines = [{"id": 1, "prompt": "fine"}, {"id": 2, "prompt": "x", "model": "mock-echo+fault=500"}]
    prompts = write_prompts(tmp_path / "in.jsonl", lines)
    assert batch(str(prompts), "-o", "out.jsonl", "--max-retries", "0").exit_code == 1
    again = batch(str(prompts), "-o", "out.jsonl")
    assert again.exit_code == 1
    assert "nothing to send: all 2 prompts have results in out.jsonl" in again.stderr
    assert "1 of 2 prompts failed, 1 of them in an earlier run" in again.stderr
    assert "batch summary" not in again.stdout  # no table of zeros for a run that sent nothing


def test_a_finished_file_is_nothing_to_send_and_exits_0(tmp_path: Path) -> None:
    prompts = write_prompts(tmp_path / "in.jsonl", [{"id": 1, "prompt": "a"}])
    assert batch(str(prompts), "-o", "out.jsonl").exit_code == 0
    again = batch(str(prompts), "-o", "out.jsonl")
    assert again.exit_code == 0
    assert again.stderr == "nothing to send: all 1 prompts have results in out.jsonl\n"
    assert again.stdout == ""


def test_a_results_file_in_a_missing_folder_is_a_usage_error(tmp_path: Path) -> None:
    prompts = write_prompts(tmp_path / "in.jsonl", [{"id": 1, "prompt": "a"}])
    result = batch(str(prompts), "-o", str(tmp_path / "no" / "such" / "out.jsonl"))
    assert result.exit_code == 2
    assert f"the folder {tmp_path / 'no' / 'such'} does not exist" in result.stderr
    assert "Traceback" not in result.output


def test_a_results_file_that_cannot_be_written_is_a_usage_error(tmp_path: Path) -> None:
    prompts = write_prompts(tmp_path / "in.jsonl", [{"id": 1, "prompt": "a"}])
    out = tmp_path / "out.jsonl"
    out.symlink_to(tmp_path / "dangling" / "target.jsonl")  # exists as a name, cannot be opened
    result = batch(str(prompts), "-o", str(out))
    assert result.exit_code == 2
    assert f"{out}: cannot write: No such file or directory" in result.stderr


def test_prices_give_the_summary_a_cost_row(tmp_path: Path) -> None:
    prompts = write_prompts(tmp_path / "in.jsonl", [{"id": i, "prompt": "a b c"} for i in range(4)])
    result = batch(str(prompts), "-o", "out.jsonl", "--price", "mock-echo=1000,250000")
    assert result.exit_code == 0, result.output
    usages = [r["usage"] for r in read_results(tmp_path / "out.jsonl")]
    cost = sum(u["prompt_tokens"] * 1000 + u["completion_tokens"] * 250_000 for u in usages) / 1e6
    assert cost > 1
    cost_row = next(line for line in result.stdout.splitlines() if "cost" in line)
    assert f"{cost:,.4f}" in cost_row


def test_a_small_cost_keeps_its_leading_digits(tmp_path: Path) -> None:
    prompts = write_prompts(tmp_path / "in.jsonl", [{"id": 1, "prompt": "a"}])
    result = batch(str(prompts), "-o", "out.jsonl", "--price", "mock-echo=0,100")
    usage = read_results(tmp_path / "out.jsonl")[0]["usage"]
    assert f"{usage['completion_tokens'] * 100 / 1e6:.6f}" in result.stdout  # not 0.0000


def test_a_price_for_another_model_says_which_model_lacks_one(tmp_path: Path) -> None:
    prompts = write_prompts(tmp_path / "in.jsonl", [{"id": 1, "prompt": "a"}])
    result = batch(str(prompts), "-o", "out.jsonl", "--price", "gpt-4o-mini=0.15,0.6")
    assert result.exit_code == 0, result.output
    assert "unknown: no price for mock-echo" in result.stdout
    assert "batch summary" in result.stdout and "4.0" not in result.stdout


def test_a_model_without_any_price_has_an_unknown_cost_row_not_zero(tmp_path: Path) -> None:
    prompts = write_prompts(tmp_path / "in.jsonl", [{"id": 1, "prompt": "a"}])
    result = batch(str(prompts), "-o", "out.jsonl")
    assert result.exit_code == 0
    assert "unknown: no price for mock-echo" in result.stdout
    assert "$0" not in result.stdout


@pytest.mark.parametrize(
    "value", ["mock-echo", "mock-echo=1", "=1,2", "m=1,x", "m=-1,2", "m=1,inf"]
)
def test_a_bad_price_is_a_usage_error(tmp_path: Path, value: str) -> None:
    prompts = write_prompts(tmp_path / "in.jsonl", [{"id": 1, "prompt": "a"}])
    result = batch(str(prompts), "-o", "out.jsonl", "--price", value)
    assert result.exit_code == 2
    assert "expected MODEL=PROMPT,COMPLETION" in result.stderr
    assert not (tmp_path / "out.jsonl").exists()


def test_a_model_name_with_an_equals_sign_can_have_a_price(tmp_path: Path) -> None:
    model = "mock-echo+fault=503;times=1"  # the reply names the model without the fault
    prompts = write_prompts(tmp_path / "in.jsonl", [{"id": 1, "prompt": "a", "model": model}])
    result = batch(str(prompts), "-o", "out.jsonl", "--price", f"{model}=1,1")
    # Parsed whole; the reply names "mock-echo", priced by the model the line asked for.
    assert "unknown" not in result.stdout
    usage = read_results(tmp_path / "out.jsonl")[0]["usage"]
    assert f"{usage['total_tokens'] / 1e6:.6f}" in result.stdout


def test_latency_counts_from_the_first_attempt_not_the_wait_for_a_slot(tmp_path: Path) -> None:
    # One slot, and each request stalls 40 ms: if the wait for the slot were counted, the
    # latencies would add up to about twice the wall time.
    model = "mock-echo+fault=stall;seconds=0.04"
    lines = [{"id": i, "prompt": "p", "model": model} for i in range(4)]
    prompts = write_prompts(tmp_path / "in.jsonl", lines)
    started = time.perf_counter()
    result = batch(str(prompts), "-o", "out.jsonl", "--max-concurrency", "1")
    elapsed_ms = (time.perf_counter() - started) * 1000
    assert result.exit_code == 0, result.output
    latencies = [r["latency_ms"] for r in read_results(tmp_path / "out.jsonl")]
    assert all(latency >= 35 for latency in latencies)
    assert sum(latencies) < elapsed_ms
