"""What a reply cost: the bundled price table, the user's prices on top, and the lookup rules.

Prices are USD per million tokens. A `Price` has an input, an output, and optionally a cached
input and a cache-write price (each defaults to the input price when a provider has none):

- ``prompt_tokens`` counts every input token, cached ones included (see `Usage`): the cached
  part (``cached_tokens``) is priced at ``cached_input``, the part written to a cache
  (``cache_write_tokens``, Anthropic) at ``cache_write``, the rest at ``input``.
- ``completion_tokens`` includes reasoning tokens for every family (OpenAI's
  ``reasoning_tokens``, Anthropic's thinking, Gemini's ``thoughtsTokenCount`` are added to it
  by the parsers), and every provider prices reasoning as output, so they are priced at
  ``output``.

Lookup (`PriceTable.price_of`): the model the reply names, exactly; then its base model with a
dated snapshot or a tag taken off (``gpt-4o-mini-2024-07-18`` → ``gpt-4o-mini``,
``claude-sonnet-4-5-20250929`` → ``claude-sonnet-4-5``, ``gemini-2.5-flash-preview-05-20`` →
``gemini-2.5-flash``) and a ``vendor/`` or ``models/`` prefix dropped; then the same for the
model the call asked for. No match: the cost is unknown (never counted as $0).

BUNDLED_PRICES was put together on 2026-12-06 (PRICES_DATE) from the providers' pricing pages
named beside each group, for the standard tier (prompts under any long-context threshold, no
batch, priority or off-peak price, Anthropic's 5-minute cache writes). How sure each group is:
OpenAI's gpt-5.4/5.5 rows and Anthropic's rows were read on those pages (as stored copies);
OpenAI's older models, Gemini and DeepSeek are the prices those pages listed in 2025 and were
not re-checked (DeepSeek has since renamed models and added off-peak prices). Prices change:
give yours with ``prices=`` or a profile's ``prices`` table, which win over these by model name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from ._types import Usage

PRICES_DATE = "2026-12-06"


class Price:
    """USD per million tokens. `cached_input` and `cache_write` default to `input`.

    A plain slotted class, compared by value (a dataclass would add about a millisecond to
    `import llmrelay`)."""

    __slots__ = ("cache_write", "cached_input", "input", "output")

    def __init__(
        self,
        input: float,
        output: float,
        cached_input: float | None = None,
        cache_write: float | None = None,
    ) -> None:
        self.input = input
        self.output = output
        self.cached_input = cached_input
        self.cache_write = cache_write

    def _key(self) -> tuple[float, float, float | None, float | None]:
        return (self.input, self.output, self.cached_input, self.cache_write)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Price) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        extra = "".join(
            f", {name}={value!r}"
            for name, value in (
                ("cached_input", self.cached_input),
                ("cache_write", self.cache_write),
            )
            if value is not None
        )
        return f"Price(input={self.input!r}, output={self.output!r}{extra})"

    def cost(self, usage: Usage) -> float:
        """USD for one reply's usage."""
        cached = usage.cached_tokens
        written = usage.cache_write_tokens
        fresh = max(0, usage.prompt_tokens - cached - written)
        cached_price = self.input if self.cached_input is None else self.cached_input
        write_price = self.input if self.cache_write is None else self.cache_write
        return (
            fresh * self.input
            + cached * cached_price
            + written * write_price
            + usage.completion_tokens * self.output
        ) / 1e6

    def estimate(self, prompt_tokens: int, completion_tokens: int) -> float:
        """USD for a call not sent yet: every prompt token at the full input price."""
        return (prompt_tokens * self.input + completion_tokens * self.output) / 1e6


# What `prices=` takes per model: a `Price`, or (input, output) per million tokens.
PriceSpec: TypeAlias = Price | tuple[float, float]
Prices: TypeAlias = Mapping[str, PriceSpec]

_OPENAI = "https://developers.openai.com/api/docs/pricing (as quoted 2026-06-04 and 2026-11-05)"
_ANTHROPIC = "https://platform.claude.com/docs/en/about-claude/pricing"
_GEMINI = "https://ai.google.dev/gemini-api/docs/pricing (prompts up to 200k tokens)"
_DEEPSEEK = "https://api-docs.deepseek.com/quick_start/pricing-details-usd (standard hours)"


def _p(inp: float, out: float, cached: float | None = None, write: float | None = None) -> Price:
    return Price(inp, out, cached, write)


# model → price, with the page each row comes from (see the module docstring for the date).
BUNDLED_PRICES: Mapping[str, Price] = MappingProxyType(
    {
        # OpenAI (_OPENAI): cached input as listed; no cache-write charge.
        "gpt-5.5": _p(5.00, 30.00, 0.50),
        "gpt-5.4": _p(2.50, 15.00, 0.25),
        "gpt-5.4-mini": _p(0.75, 4.50, 0.075),
        "gpt-5.4-nano": _p(0.20, 1.25, 0.02),
        "gpt-5": _p(1.25, 10.00, 0.125),
        "gpt-5-mini": _p(0.25, 2.00, 0.025),
        "gpt-5-nano": _p(0.05, 0.40, 0.005),
        "gpt-4.1": _p(2.00, 8.00, 0.50),
        "gpt-4.1-mini": _p(0.40, 1.60, 0.10),
        "gpt-4.1-nano": _p(0.10, 0.40, 0.025),
        "gpt-4o": _p(2.50, 10.00, 1.25),
        "gpt-4o-mini": _p(0.15, 0.60, 0.075),
        "o4-mini": _p(1.10, 4.40, 0.275),
        "o3": _p(2.00, 8.00, 0.50),
        "text-embedding-3-small": _p(0.02, 0.0),
        "text-embedding-3-large": _p(0.13, 0.0),
        # Anthropic (_ANTHROPIC): cache hits 0.1x input, 5-minute cache writes 1.25x input.
        "claude-opus-4-6": _p(5.00, 25.00, 0.50, 6.25),
        "claude-opus-4-5": _p(5.00, 25.00, 0.50, 6.25),
        "claude-opus-4-1": _p(15.00, 75.00, 1.50, 18.75),
        "claude-sonnet-4-6": _p(3.00, 15.00, 0.30, 3.75),
        "claude-sonnet-4-5": _p(3.00, 15.00, 0.30, 3.75),
        "claude-sonnet-4": _p(3.00, 15.00, 0.30, 3.75),
        "claude-haiku-4-5": _p(1.00, 5.00, 0.10, 1.25),
        "claude-3-5-haiku": _p(0.80, 4.00, 0.08, 1.00),
        # Google Gemini (_GEMINI): context-cache reads as listed (storage is billed apart).
        "gemini-2.5-pro": _p(1.25, 10.00, 0.125),
        "gemini-2.5-flash": _p(0.30, 2.50, 0.03),
        "gemini-2.5-flash-lite": _p(0.10, 0.40, 0.01),
        # DeepSeek (_DEEPSEEK): cache hit / cache miss input.
        "deepseek-chat": _p(0.27, 1.10, 0.07),
        "deepseek-reasoner": _p(0.55, 2.19, 0.14),
    }
)

# Suffixes a provider puts after a base model name for a dated snapshot or a channel; taken
# off one at a time (``…-preview-05-20`` → ``…-preview`` → the base name). Compiled on first
# use: compiling costs a millisecond of `import llmrelay`.
_SNAPSHOT = r"(?:-\d{4}-\d{2}-\d{2}|-\d{8}|-\d{2}-\d{2}|-\d{4}|-\d{3}|-latest|-preview|-exp)$"


def base_names(model: str) -> list[str]:
    """`model`, then the names it may be priced under, most specific first."""
    names = [model]
    # "openai/gpt-4o-mini", "models/gemini-2.5-flash"; the mock's "mock-echo+fault=500"
    name = model.partition("+")[0].rpartition("/")[2]
    if name != model:
        names.append(name)
    while True:
        shorter = re.sub(_SNAPSHOT, "", name)
        if shorter == name or not shorter:
            break
        name = shorter
        names.append(name)
    lowered = [n.lower() for n in names if n.lower() != n]
    return list(dict.fromkeys(names + lowered))


def as_price(spec: Price | tuple[float, float]) -> Price:
    return spec if isinstance(spec, Price) else Price(float(spec[0]), float(spec[1]))


class PriceTable:
    """The bundled prices with the user's on top; lookups are cached by (reply, asked) model."""

    __slots__ = ("_found", "_prices")

    def __init__(self, prices: Prices | None = None, *, bundled: bool = True) -> None:
        table: dict[str, Price] = dict(BUNDLED_PRICES) if bundled else {}
        for model, spec in (prices or {}).items():
            table[model] = as_price(spec)
        self._prices = table
        self._found: dict[tuple[str | None, str | None], Price | None] = {}

    def __contains__(self, model: object) -> bool:
        return model in self._prices

    def price_of(self, model: str | None, requested: str | None = None) -> Price | None:
        """The price of a reply from `model` to a call that asked for `requested`, or None."""
        key = (model, requested)
        try:
            return self._found[key]
        except KeyError:
            pass
        found = None
        for name in (model, requested):
            if name:
                found = next((self._prices[n] for n in base_names(name) if n in self._prices), None)
                if found is not None:
                    break
        if len(self._found) < 4096:  # bounded: model names come from servers
            self._found[key] = found
        return found
