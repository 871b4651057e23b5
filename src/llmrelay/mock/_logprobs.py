"""Log probabilities for the echo model's tokens (its word pieces), as OpenAI and Gemini send them.

The chosen token's log probability is a small deterministic number derived from its text; the
alternatives (``top_logprobs``) are the token with a marker, each less likely than the last.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from ._common import JSONObject

MAX_TOP_LOGPROBS = 20  # OpenAI's limit for top_logprobs; Gemini's is lower, the mock is lenient


def token_logprob(token: str) -> float:
    """Between -0.1 and 0: the echo model is sure of what it says."""
    digest = hashlib.sha256(token.encode()).digest()
    return -round(int.from_bytes(digest[:2], "big") / 655_360, 6)


def _alternatives(token: str, count: int) -> list[tuple[str, float]]:
    chosen = token_logprob(token)
    return [(token, chosen)] + [
        (f"{token.strip() or token}~{rank}", round(chosen - 2.0 * rank, 6))
        for rank in range(1, count)
    ]


def openai_logprobs(tokens: Sequence[str], top: int) -> JSONObject:
    """A choice's ``logprobs`` object: one ``content`` entry per token."""

    def entry(token: str, logprob: float) -> JSONObject:
        return {"token": token, "logprob": logprob, "bytes": list(token.encode())}

    content = [
        {
            **entry(token, token_logprob(token)),
            "top_logprobs": [entry(alt, lp) for alt, lp in _alternatives(token, top)]
            if top
            else [],
        }
        for token in tokens
    ]
    return {"content": content, "refusal": None}


def gemini_logprobs(tokens: Sequence[str], top: int) -> JSONObject:
    """A candidate's ``logprobsResult`` and ``avgLogprobs`` fields."""
    logprobs = [token_logprob(token) for token in tokens]
    chosen = [{"token": t, "logProbability": lp} for t, lp in zip(tokens, logprobs, strict=True)]
    result: JSONObject = {"chosenCandidates": chosen}
    if top:
        result["topCandidates"] = [
            {
                "candidates": [
                    {"token": alt, "logProbability": lp} for alt, lp in _alternatives(token, top)
                ]
            }
            for token in tokens
        ]
    average = sum(logprobs) / len(logprobs) if logprobs else 0.0
    return {"logprobsResult": result, "avgLogprobs": round(average, 6)}
