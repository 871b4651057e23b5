"""Token log probabilities as OpenAI and Gemini send them, read into `TokenLogprob`s.

Like the other optional fields of a reply, a malformed entry (no token, a logprob that is no
number) is skipped rather than failing a reply whose text is fine; a field of the wrong type
altogether reads as no log probabilities (`None`).
"""

from __future__ import annotations

from typing import Any

from .._types import TokenLogprob

_NO_TOP: tuple[TokenLogprob, ...] = ()


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _entry(raw: Any, token_key: str, logprob_key: str) -> TokenLogprob | None:
    if not isinstance(raw, dict):
        return None
    token, logprob = raw.get(token_key), _number(raw.get(logprob_key))
    if not isinstance(token, str) or logprob is None:
        return None
    return TokenLogprob(token=token, logprob=logprob)


def openai_logprobs(raw: Any) -> tuple[TokenLogprob, ...] | None:
    """A chat choice's ``logprobs`` object: its ``content`` entries, each with its
    ``top_logprobs``. `None` when the choice has none (not asked for)."""
    if not isinstance(raw, dict):
        return None
    content = raw.get("content")
    if not isinstance(content, list):
        return None
    out = []
    for item in content:
        entry = _entry(item, "token", "logprob")
        if entry is None:
            continue
        top = item.get("top_logprobs")
        if isinstance(top, list) and top:
            alternatives = tuple(
                alt for alt in (_entry(t, "token", "logprob") for t in top) if alt is not None
            )
            entry = TokenLogprob(token=entry.token, logprob=entry.logprob, top=alternatives)
        out.append(entry)
    return tuple(out)


def gemini_logprobs(raw: Any) -> tuple[TokenLogprob, ...] | None:
    """A candidate's ``logprobsResult``: ``chosenCandidates[i]`` with ``topCandidates[i]``'s
    ``candidates`` as its alternatives. `None` when the candidate has none."""
    if not isinstance(raw, dict):
        return None
    chosen = raw.get("chosenCandidates")
    if not isinstance(chosen, list):
        return None
    tops = raw.get("topCandidates")
    if not isinstance(tops, list):
        tops = []
    out = []
    for position, item in enumerate(chosen):
        entry = _entry(item, "token", "logProbability")
        if entry is None:
            continue
        top = tops[position] if position < len(tops) else None
        candidates = top.get("candidates") if isinstance(top, dict) else None
        if isinstance(candidates, list) and candidates:
            alternatives = tuple(
                alt
                for alt in (_entry(c, "token", "logProbability") for c in candidates)
                if alt is not None
            )
            entry = TokenLogprob(token=entry.token, logprob=entry.logprob, top=alternatives)
        out.append(entry)
    return tuple(out)
