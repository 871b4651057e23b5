"""Running totals of what a client has used: requests, retries, tokens and cost per model.

Plain slotted classes rather than dataclasses: they are mutable counters, and each dataclass
costs about a millisecond of `import llmrelay`.

Cost is never silently wrong: a reply whose model has no price (see `_prices`) leaves that
model's cost unknown, `unpriced` names it, and `cost` still sums every priced reply.
"""

from __future__ import annotations

from ._prices import Price, Prices, PriceTable
from ._types import Usage

__all__ = ["ModelTotals", "Price", "Prices", "UsageTotals"]


class ModelTotals:
    """Totals for one model. `cost` is the USD of its priced replies (`None`: none was
    priced); `unpriced_requests` counts its replies no price was found for."""

    __slots__ = ("completion_tokens", "cost", "prompt_tokens", "requests", "unpriced_requests")

    def __init__(self, cost: float | None = None) -> None:
        self.requests = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.cost = cost
        self.unpriced_requests = 0

    def __repr__(self) -> str:
        return (
            f"ModelTotals(requests={self.requests}, prompt_tokens={self.prompt_tokens}, "
            f"completion_tokens={self.completion_tokens}, cost={self.cost!r})"
        )


class UsageTotals:
    """`client.usage`: counts since the client was built.

    `cost` is the USD of every reply a price is known for (bundled, or given with
    ``prices=``); `unpriced` names the models whose replies could not be priced, so a total
    with a part missing says so. `cost` is `None` only when no reply could be priced at all.
    """

    __slots__ = (
        "by_model",
        "completion_tokens",
        "failures",
        "prices",
        "prompt_tokens",
        "requests",
        "retries",
        "table",
    )

    def __init__(self, prices: Prices | None = None, *, table: PriceTable | None = None) -> None:
        self.requests = 0
        self.failures = 0
        self.retries = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.by_model: dict[str, ModelTotals] = {}
        self.prices: Prices = dict(prices or {})  # the user's own, as given
        self.table = table if table is not None else PriceTable(self.prices)

    def __repr__(self) -> str:
        unpriced = f", unpriced={self.unpriced!r}" if self.unpriced else ""
        return (
            f"UsageTotals(requests={self.requests}, failures={self.failures}, "
            f"retries={self.retries}, prompt_tokens={self.prompt_tokens}, "
            f"completion_tokens={self.completion_tokens}, cost={self.cost!r}{unpriced})"
        )

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def cost(self) -> float | None:
        """USD of the priced replies (see `unpriced` for what is left out)."""
        costs = [m.cost for m in self.by_model.values() if m.cost is not None]
        return sum(costs) if costs else None

    @property
    def unpriced(self) -> list[str]:
        """The models used whose replies (some or all) have no price, sorted."""
        return sorted(name for name, m in self.by_model.items() if m.unpriced_requests)

    def describe_cost(self) -> str:
        """The cost as a line for people: ``$0.0123``, ``$0.0123 + unknown for x (...)``, or
        ``unknown for x (...)``."""
        cost = self.cost
        shown = None if cost is None else format_usd(cost)
        missing = self.unpriced
        if not missing:
            return shown or "$0"
        what = f"unknown for {', '.join(missing)} (no price, or no usage reported)"
        return what if shown is None else f"{shown} + {what}"

    def price_of(self, model: str | None, requested: str | None = None) -> Price | None:
        return self.table.price_of(model, requested)

    def record(
        self, model: str | None, usage: Usage | None, requested: str | None = None
    ) -> float | None:
        """Count one successful reply from `model` to a call that asked for `requested`;
        return its cost (`None` when unknown)."""
        self.requests += 1
        key = model or requested or "unknown"
        totals = self.by_model.get(key)
        if totals is None:
            totals = self.by_model[key] = ModelTotals()
        totals.requests += 1
        if usage is None:
            totals.unpriced_requests += 1  # no counts: whatever it cost is not known here
            return None
        self.prompt_tokens += usage.prompt_tokens
        self.completion_tokens += usage.completion_tokens
        totals.prompt_tokens += usage.prompt_tokens
        totals.completion_tokens += usage.completion_tokens
        price = self.table.price_of(model, requested)
        if price is None:
            totals.unpriced_requests += 1
            return None
        cost = price.cost(usage)
        totals.cost = cost if totals.cost is None else totals.cost + cost
        return cost


def format_usd(amount: float) -> str:
    """Small sums keep their leading digits: a few cheap prompts are not "$0.0000"."""
    return f"${amount:.6f}" if 0 < amount < 0.01 else f"${amount:,.4f}"
