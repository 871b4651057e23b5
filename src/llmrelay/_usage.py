"""Running totals of what a client has used: requests, retries, tokens and cost per model.

Plain slotted classes rather than dataclasses: they are mutable counters, and each dataclass
costs about a millisecond of `import llmrelay`.
"""

from __future__ import annotations

from collections.abc import Mapping

from ._types import Usage

# Price per million tokens: (prompt, completion) in any currency you like.
Prices = Mapping[str, tuple[float, float]]


class ModelTotals:
    """Totals for one model."""

    __slots__ = ("completion_tokens", "cost", "prompt_tokens", "requests")

    def __init__(self, cost: float | None = None) -> None:
        self.requests = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.cost = cost

    def __repr__(self) -> str:
        return (
            f"ModelTotals(requests={self.requests}, prompt_tokens={self.prompt_tokens}, "
            f"completion_tokens={self.completion_tokens}, cost={self.cost!r})"
        )


class UsageTotals:
    """`client.usage`: counts since the client was built. `cost` is `None` when no price is
    known for a model that was used (give prices with `AsyncClient(prices={...})`)."""

    __slots__ = (
        "by_model",
        "completion_tokens",
        "failures",
        "prices",
        "prompt_tokens",
        "requests",
        "retries",
    )

    def __init__(self, prices: Prices | None = None) -> None:
        self.requests = 0
        self.failures = 0
        self.retries = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.by_model: dict[str, ModelTotals] = {}
        self.prices: Prices = dict(prices or {})

    def __repr__(self) -> str:
        return (
            f"UsageTotals(requests={self.requests}, failures={self.failures}, "
            f"retries={self.retries}, prompt_tokens={self.prompt_tokens}, "
            f"completion_tokens={self.completion_tokens}, cost={self.cost!r})"
        )

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def cost(self) -> float | None:
        costs = [m.cost for m in self.by_model.values()]
        if not costs or any(c is None for c in costs):
            return None
        return sum(c for c in costs if c is not None)

    def record(self, model: str | None, usage: Usage | None) -> None:
        """Count one successful reply."""
        self.requests += 1
        key = model or "unknown"
        totals = self.by_model.get(key)
        if totals is None:
            totals = self.by_model[key] = ModelTotals(0.0 if key in self.prices else None)
        totals.requests += 1
        if usage is None:
            return
        self.prompt_tokens += usage.prompt_tokens
        self.completion_tokens += usage.completion_tokens
        totals.prompt_tokens += usage.prompt_tokens
        totals.completion_tokens += usage.completion_tokens
        price = self.prices.get(key)
        if price is not None and totals.cost is not None:
            totals.cost += (
                usage.prompt_tokens * price[0] + usage.completion_tokens * price[1]
            ) / 1e6
