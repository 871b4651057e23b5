"""``llmrelay batch --max-cost``: the budget stops the sending, nothing unsent is written (so a
later run sends it), and the summary says what was spent and what was left."""

from __future__ import annotations

import re
from pathlib import Path

from .test_batch import batch, read_results, write_prompts

PRICE = "mock-echo=1000000,1000000"  # $1 a token


def test_max_cost_stops_the_run_and_says_what_was_spent(tmp_path: Path) -> None:
    lines = [{"id": i, "prompt": "aaaa", "params": {"max_tokens": 3}} for i in range(6)]
    prompts = write_prompts(tmp_path / "in.jsonl", lines)
    result = batch(
        str(prompts), "-o", "out.jsonl", "--price", PRICE, "--max-cost", "10",
        "--max-concurrency", "1",
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    written = read_results(tmp_path / "out.jsonl")
    assert written and all(r["ok"] for r in written)  # the refused prompts are not written
    spent = sum(r["usage"]["total_tokens"] for r in written)
    assert spent <= 10
    unsent = 6 - len(written)
    assert unsent > 0
    assert re.search(
        rf"budget +│ \${spent:.4f} spent of \$10\.0000; {unsent} prompts not sent", result.stdout
    )
    assert f"budget reached: {unsent} prompts were not sent" in result.stderr


def test_a_larger_budget_sends_what_the_first_run_left(tmp_path: Path) -> None:
    lines = [{"id": i, "prompt": "aaaa", "params": {"max_tokens": 3}} for i in range(6)]
    prompts = write_prompts(tmp_path / "in.jsonl", lines)
    batch(str(prompts), "-o", "out.jsonl", "--price", PRICE, "--max-cost", "10")
    result = batch(str(prompts), "-o", "out.jsonl", "--price", PRICE, "--max-cost", "100")
    assert result.exit_code == 0, result.output
    assert sorted(r["id"] for r in read_results(tmp_path / "out.jsonl")) == list(range(6))


def test_max_cost_without_a_price_for_the_model_fails_each_prompt_saying_why(
    tmp_path: Path,
) -> None:
    prompts = write_prompts(tmp_path / "in.jsonl", [{"id": 1, "prompt": "a"}])
    result = batch(str(prompts), "-o", "out.jsonl", "--max-cost", "1")
    assert result.exit_code == 1
    (record,) = read_results(tmp_path / "out.jsonl")
    assert record["error"]["type"] == "ConfigError"
    assert "needs a price for model 'mock-echo'" in record["error"]["message"]


def test_the_summary_names_unpriced_models_and_sums_the_rest(tmp_path: Path) -> None:
    lines = [
        {"id": 1, "prompt": "a", "model": "mock-echo"},
        {"id": 2, "prompt": "a", "model": "mock-echo-large"},
    ]
    prompts = write_prompts(tmp_path / "in.jsonl", lines)
    result = batch(str(prompts), "-o", "out.jsonl", "--price", PRICE)
    assert result.exit_code == 0, result.output
    tokens = next(
        r["usage"]["total_tokens"] for r in read_results(tmp_path / "out.jsonl") if r["id"] == 1
    )
    assert f"${tokens:.4f} + unknown for mock-echo-large" in " ".join(result.stdout.split())
