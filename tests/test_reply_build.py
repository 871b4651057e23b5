"""A reply the adapters build from their choices (`reply_of_choices`, which sets the slots
directly) is the very reply `ChatResponse(...)` gives for the same fields."""

from __future__ import annotations

import dataclasses

import pytest

from llmrelay import ChatResponse, Choice, ReasoningBlock, ToolCall, Usage
from llmrelay.providers._common import reply_of_choices

CALL = ToolCall(id="c1", name="f", arguments="{}", parsed_arguments={})
CHOICES = {
    "text": [Choice(index=0, text="hi", finish_reason="stop")],
    "reasoning": [Choice(index=0, text="", reasoning="think", reasoning_signature="sig")],
    "blocks": [
        Choice(
            index=0,
            text="x",
            reasoning_blocks=(ReasoningBlock(text="a"), ReasoningBlock(redacted="r")),
        )
    ],
    "tools and refusal": [Choice(index=0, text="", tool_calls=(CALL,), refusal="no")],
    "several, out of order": [Choice(index=2, text="c"), Choice(index=0, text="a")],
}


@pytest.mark.parametrize("choices", CHOICES.values(), ids=CHOICES.keys())
def test_the_same_reply_as_the_dataclass_gives(choices: list[Choice]) -> None:
    extra = {
        "usage": Usage(prompt_tokens=1, completion_tokens=2, total_tokens=3),
        "model": "m",
        "id": "r1",
        "request_id": "req",
        "provider": "openai",
    }
    built = reply_of_choices(choices, raw={"raw": True}, **extra)
    ordered = tuple(sorted(choices, key=lambda choice: choice.index))
    first = ordered[0]
    expected = ChatResponse(
        text=first.text,
        finish_reason=first.finish_reason,
        tool_calls=first.tool_calls,
        reasoning=first.reasoning,
        reasoning_signature=first.reasoning_signature,
        reasoning_blocks=first.reasoning_blocks,
        refusal=first.refusal,
        logprobs=first.logprobs,
        choices=ordered,
        raw={"raw": True},
        **extra,  # type: ignore[arg-type]
    )
    assert built == expected
    assert repr(built) == repr(expected)
    assert built.choices[0] is first
    assert built.raw == {"raw": True}
    assert built.parsed is None
    assert dataclasses.replace(built, parsed=1) == dataclasses.replace(expected, parsed=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.text = "changed"  # type: ignore[misc]
