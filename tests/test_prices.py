"""Cost: the bundled price table, the user's prices over it, dated snapshots priced as their
base model, the requested model's price as the fallback, cached and reasoning tokens priced as
providers price them, and totals that name unpriced models while still summing the rest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import llmrelay
from _loopback import Request, Response, json_response, loopback
from llmrelay import AsyncClient, Price, Usage
from llmrelay._prices import BUNDLED_PRICES, PRICES_DATE, PriceTable, base_names
from llmrelay._settings import resolve_config, resolve_profile_config
from llmrelay._usage import UsageTotals


@pytest.mark.parametrize(
    ("reply_model", "priced_as"),
    [
        ("gpt-4o-mini", "gpt-4o-mini"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("claude-haiku-4-5-latest", "claude-haiku-4-5"),
        ("gemini-2.5-flash-preview-05-20", "gemini-2.5-flash"),
        ("models/gemini-2.5-pro", "gemini-2.5-pro"),
        ("openai/gpt-4.1-mini", "gpt-4.1-mini"),
        ("GPT-4o-Mini", "gpt-4o-mini"),
        ("deepseek-chat", "deepseek-chat"),
    ],
)
def test_a_snapshot_or_a_prefixed_name_is_priced_as_its_base_model(
    reply_model: str, priced_as: str
) -> None:
    assert PriceTable().price_of(reply_model) is BUNDLED_PRICES[priced_as]


def test_base_names_go_from_the_most_to_the_least_specific() -> None:
    assert base_names("gemini-2.5-flash-preview-05-20") == [
        "gemini-2.5-flash-preview-05-20",
        "gemini-2.5-flash-preview",
        "gemini-2.5-flash",
    ]


def test_an_exact_price_wins_over_the_base_models() -> None:
    table = PriceTable({"gpt-4o-mini-2024-07-18": (1.0, 2.0)})
    assert table.price_of("gpt-4o-mini-2024-07-18") == Price(1.0, 2.0)
    assert table.price_of("gpt-4o-mini-2025-01-01") is BUNDLED_PRICES["gpt-4o-mini"]


def test_the_requested_model_prices_a_reply_whose_model_has_no_price() -> None:
    table = PriceTable({"my-deployment": (3.0, 4.0)})
    assert table.price_of("some-internal-name-7", "my-deployment") == Price(3.0, 4.0)
    assert table.price_of("some-internal-name-7", "unknown-too") is None


def test_the_bundled_table_names_its_date_and_sources() -> None:
    import llmrelay._prices as module

    assert PRICES_DATE in (module.__doc__ or "")
    source = Path(module.__file__).read_text(encoding="utf-8")
    for page in ("developers.openai.com", "platform.claude.com", "ai.google.dev", "deepseek.com"):
        assert page in source


@pytest.mark.parametrize(
    ("usage", "price", "expected"),
    [
        # OpenAI: 1000 prompt tokens of which 800 cached at a tenth; reasoning is in completion.
        (
            Usage(
                prompt_tokens=1000, completion_tokens=500, cached_tokens=800, reasoning_tokens=400
            ),
            Price(2.0, 8.0, cached_input=0.2),
            (200 * 2.0 + 800 * 0.2 + 500 * 8.0) / 1e6,
        ),
        # Anthropic: cache reads and writes are inside prompt_tokens, each at its own price.
        (
            Usage(
                prompt_tokens=1300,
                completion_tokens=100,
                cached_tokens=1000,
                cache_write_tokens=200,
            ),
            Price(3.0, 15.0, cached_input=0.3, cache_write=3.75),
            (100 * 3.0 + 1000 * 0.3 + 200 * 3.75 + 100 * 15.0) / 1e6,
        ),
        # No cached price: cached tokens cost the input price.
        (
            Usage(prompt_tokens=100, completion_tokens=10, cached_tokens=50),
            Price(1.0, 2.0),
            (100 * 1.0 + 10 * 2.0) / 1e6,
        ),
    ],
)
def test_cached_and_reasoning_tokens_are_priced_as_the_provider_prices_them(
    usage: Usage, price: Price, expected: float
) -> None:
    assert price.cost(usage) == pytest.approx(expected)


def test_an_unpriced_model_is_named_and_the_known_part_still_sums() -> None:
    totals = UsageTotals({"priced": (1e6, 0.0)})
    totals.record("priced", Usage(prompt_tokens=2, completion_tokens=1))
    totals.record("mystery-model", Usage(prompt_tokens=5, completion_tokens=5))
    assert totals.cost == pytest.approx(2.0)  # not None, not a whole total lost
    assert totals.unpriced == ["mystery-model"]
    assert totals.by_model["mystery-model"].cost is None
    assert totals.describe_cost() == (
        "$2.0000 + unknown for mystery-model (no price, or no usage reported)"
    )
    assert "unpriced=['mystery-model']" in repr(totals)


def test_nothing_priced_is_unknown_never_zero() -> None:
    totals = UsageTotals()
    totals.record("mystery-model", Usage(prompt_tokens=5, completion_tokens=5))
    assert totals.cost is None
    assert totals.describe_cost().startswith("unknown for mystery-model")


async def test_a_reply_naming_a_snapshot_is_priced_with_the_base_models_user_price() -> None:
    def answer(request: Request) -> Response:
        return json_response(
            {
                "id": "c",
                "object": "chat.completion",
                "model": "gpt-4o-mini-2024-07-18",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "ok"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": 1000,
                    "completion_tokens": 100,
                    "prompt_tokens_details": {"cached_tokens": 600},
                    "completion_tokens_details": {"reasoning_tokens": 60},
                },
            }
        )

    prices = {"gpt-4o-mini": Price(1.0, 10.0, cached_input=0.5)}
    async with (
        loopback(answer) as server,
        AsyncClient("openai", api_key="k", base_url=server.base_url, prices=prices) as client,
    ):
        await client.chat("hi", model="gpt-4o-mini")
    assert client.usage.cost == pytest.approx((400 * 1.0 + 600 * 0.5 + 100 * 10.0) / 1e6)
    assert client.usage.unpriced == []


async def test_the_mock_model_has_no_bundled_price_and_says_so() -> None:
    async with AsyncClient("mock") as client:
        await client.chat("hello")
    assert client.usage.cost is None and client.usage.unpriced == ["mock-echo"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ((0.15, 0.6), (0.15, 0.6)),
        (Price(1.0, 2.0, cached_input=0.1), Price(1.0, 2.0, cached_input=0.1)),
        ({"input": 1, "output": 2, "cache_write": 1.25}, Price(1.0, 2.0, cache_write=1.25)),
    ],
)
def test_prices_take_pairs_price_objects_and_tables(value: Any, expected: Any) -> None:
    assert resolve_config("mock", prices={"m": value}).prices["m"] == expected


@pytest.mark.parametrize(
    "value",
    [{"input": 1}, {"input": 1, "output": -1}, {"input": 1, "output": 2, "cached": 1}],
)
def test_a_bad_price_table_is_a_config_error(value: Any) -> None:
    with pytest.raises(llmrelay.ConfigError, match=r"a table \{input, output, cached_input"):
        resolve_config("mock", prices={"m": value})


async def test_a_profile_gives_cached_prices_as_a_table(tmp_path: Path) -> None:
    (tmp_path / "llmrelay.toml").write_text(
        '[profiles.p]\nprovider = "mock"\n'
        "[profiles.p.prices]\n"
        '"mock-echo" = { input = 1000000, output = 0, cached_input = 0 }\n',
        encoding="utf-8",
    )
    config = resolve_profile_config("p", cwd=tmp_path, environ={})
    assert config.prices["mock-echo"] == Price(1e6, 0.0, cached_input=0.0)
    async with AsyncClient._from_config(config) as client:
        reply = await client.chat("hello")
    assert reply.usage is not None
    assert client.usage.cost == pytest.approx(reply.usage.prompt_tokens)
