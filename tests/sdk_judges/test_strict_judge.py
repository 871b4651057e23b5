"""The judge itself: strict validation rejects what a careless mock could send."""

from __future__ import annotations

import json
from typing import Any

import pytest
from anthropic.types import Message
from google.genai.types import GenerateContentResponse
from openai.types.chat import ChatCompletion

from ._strict import strict

COMPLETION = {
    "id": "c",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "hi"},
            "finish_reason": "stop",
            "logprobs": None,
        }
    ],
}
MESSAGE = {
    "id": "m",
    "type": "message",
    "role": "assistant",
    "model": "m",
    "content": [{"type": "text", "text": "hi"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 1, "output_tokens": 1},
}
GEMINI = {"candidates": [{"content": {"role": "model", "parts": [{"text": "hi"}]}}]}


@pytest.mark.parametrize(
    ("type_", "good", "has_required"),
    # Every field of google-genai's types is optional: the Gemini tests check presence themselves.
    [
        (ChatCompletion, COMPLETION, True),
        (Message, MESSAGE, True),
        (GenerateContentResponse, GEMINI, False),
    ],
)
def test_good_passes_and_unknown_missing_or_coerced_fields_fail(
    type_: Any, good: Any, has_required: bool
) -> None:
    strict(type_, json.dumps(good))
    with pytest.raises((AssertionError, ValueError)):
        strict(type_, json.dumps(good | {"invented": 1}))
    if has_required:
        first = next(iter(good))
        with pytest.raises(ValueError):
            strict(type_, json.dumps({k: v for k, v in good.items() if k != first}))


def test_nested_unknown_fields_and_coercion_fail() -> None:
    nested = json.loads(json.dumps(COMPLETION))
    nested["choices"][0]["message"]["surprise"] = True
    with pytest.raises(AssertionError, match="surprise"):
        strict(ChatCompletion, json.dumps(nested))
    with pytest.raises(ValueError):
        strict(ChatCompletion, json.dumps(COMPLETION | {"created": "1"}))
