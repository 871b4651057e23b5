"""The budget stage: the outermost stage of a client with ``budget=Budget(...)``.

Before a call goes down the chain, what the client has spent plus this call's estimate must fit
the budget; otherwise `BudgetExceededError` and nothing is sent. The estimate (see `Budget`) is
reserved while the call is in flight, so that many concurrent calls cannot all pass on the same
remaining money: a call that fits only once the calls in flight have settled waits for them
(it holds no slot yet) and is then judged on what they really cost. When a reply is finished
its reservation is replaced by what it reports (its usage, priced for the model that answered,
or for the model asked for). A reply that reports no usage is charged its estimate: a stream
that failed after it started, or that the caller closed before its end, had tokens generated
(and billed) without saying how many.

A provider Batch API's requests (uploads, job creation, polls: ``operation == "batch"``) pass
through: a job's cost is only known from its results, which `batch_results` does not count.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio

from .. import _constants as C
from .._exceptions import BudgetExceededError, ConfigError
from .._request import estimate_tokens
from .._usage import format_usd
from ._base import Call, Reply, Stage

if TYPE_CHECKING:
    from .._exceptions import LLMError
    from .._prices import PriceTable
    from .._routes import Budget
    from .._types import Usage


class BudgetStage:
    def __init__(self, inner: Stage, *, budget: Budget, table: PriceTable) -> None:
        self._inner = inner
        self.budget = budget
        self._table = table
        self.spent_usd = 0.0
        self.spent_tokens = 0
        self._reserved_usd = 0.0
        self._reserved_tokens = 0
        self._settled: anyio.Event | None = None  # made by the first call that waits

    def estimate(self, call: Call) -> tuple[int, float | None]:
        """(tokens, USD) a call may use, before it is sent (USD `None`: no cost bound)."""
        request = call.request
        if request is not None:
            prompt = estimate_tokens(request.messages, C.CHARS_PER_TOKEN_ESTIMATE)
            params = request.params
            completion = params.get("max_tokens", C.BUDGET_DEFAULT_COMPLETION_TOKENS)
            completion *= params.get("n", 1)
        else:  # embeddings: the input only
            prompt, completion = call.estimated_tokens, 0
        if self.budget.max_cost_usd is None:
            return prompt + completion, None
        price = self._table.price_of(call.model)
        if price is None:
            raise ConfigError(
                f"a budget in dollars needs a price for model {call.model!r}: give "
                f"prices={{{call.model!r}: (input, output)}} (USD per million tokens)"
            )
        return prompt + completion, price.estimate(prompt, completion)

    async def send(self, call: Call) -> Reply:
        if call.method == "GET" or call.operation == "batch":  # a model list costs nothing
            return await self._inner.send(call)
        tokens, usd = self.estimate(call)
        while not self._fits(tokens, usd, reserved=True):
            self._check(tokens, usd)  # raises when it cannot fit even once the others settle
            if self._settled is None:
                self._settled = anyio.Event()
            await self._settled.wait()  # it may fit once the calls in flight have settled
        self._reserved_tokens += tokens
        self._reserved_usd += usd or 0.0
        try:
            reply = await self._inner.send(call)
        except BaseException:
            self._release(tokens, usd)
            raise
        value: Any = reply.value
        model = getattr(value, "model", None)

        def settle(usage: Usage | None, error: LLMError | None) -> None:
            self._release(tokens, usd)
            if usage is not None:
                self.spent_tokens += usage.total_tokens or (
                    usage.prompt_tokens + usage.completion_tokens
                )
                price = self._table.price_of(model, call.model)
                self.spent_usd += price.cost(usage) if price is not None else (usd or 0.0)
            else:  # a stream that broke off or was closed early: charged its estimate
                self.spent_tokens += tokens
                self.spent_usd += usd or 0.0

        reply.on_finish(settle)
        return reply

    def _release(self, tokens: int, usd: float | None) -> None:
        self._reserved_tokens -= tokens
        self._reserved_usd -= usd or 0.0
        settled, self._settled = self._settled, None
        if settled is not None:
            settled.set()

    def _fits(self, tokens: int, usd: float | None, *, reserved: bool) -> bool:
        budget = self.budget
        if budget.max_tokens is not None:
            committed = self.spent_tokens + (self._reserved_tokens if reserved else 0)
            if committed + tokens > budget.max_tokens:
                return False
        if budget.max_cost_usd is not None and usd is not None:
            committed_usd = self.spent_usd + (self._reserved_usd if reserved else 0.0)
            if committed_usd + usd > budget.max_cost_usd:
                return False
        return True

    def _check(self, tokens: int, usd: float | None) -> None:
        """Raise `BudgetExceededError` if the call cannot fit even with nothing in flight."""
        budget = self.budget
        if budget.max_tokens is not None:
            committed = self.spent_tokens
            if committed + tokens > budget.max_tokens:
                raise self._error(
                    "max_tokens",
                    f"the token budget of {budget.max_tokens:,} would be passed: "
                    f"{committed:,} spent, this call may take {tokens:,}",
                    tokens,
                    usd,
                )
        if budget.max_cost_usd is not None and usd is not None:
            committed_usd = self.spent_usd
            if committed_usd + usd > budget.max_cost_usd:
                raise self._error(
                    "max_cost_usd",
                    f"the budget of {format_usd(budget.max_cost_usd)} would be passed: "
                    f"{format_usd(committed_usd)} spent, this call may cost "
                    f"{format_usd(usd)}",
                    tokens,
                    usd,
                )

    def _error(
        self, limit: str, message: str, tokens: int, usd: float | None
    ) -> BudgetExceededError:
        return BudgetExceededError(
            message + "; nothing was sent",
            limit=limit,
            spent_usd=self.spent_usd,
            spent_tokens=self.spent_tokens,
            estimate_usd=usd,
            estimate_tokens=tokens,
        )
