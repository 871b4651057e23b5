"""The official SDKs and llmrelay read the same token log probabilities from the same mock reply."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from google import genai
from google.genai import types

import llmrelay
from llmrelay import TokenLogprob

PROMPT = "Judge these log probabilities"


def from_openai(content: Any) -> tuple[TokenLogprob, ...]:
    return tuple(
        TokenLogprob(
            token=entry.token,
            logprob=entry.logprob,
            top=tuple(TokenLogprob(token=t.token, logprob=t.logprob) for t in entry.top_logprobs),
        )
        for entry in content
    )


@pytest.mark.parametrize("top", [None, 3])
async def test_openai_sdk_agrees(mock_url: str, top: int | None) -> None:
    extra: dict[str, Any] = {} if top is None else {"top_logprobs": top}
    with openai.OpenAI(base_url=f"{mock_url}/v1", api_key="k", max_retries=0) as sdk:
        completion = sdk.chat.completions.create(
            model="mock-echo",
            messages=[{"role": "user", "content": PROMPT}],
            logprobs=True,
            **extra,
        )
        streamed: list[Any] = []
        for chunk in sdk.chat.completions.create(
            model="mock-echo",
            messages=[{"role": "user", "content": PROMPT}],
            logprobs=True,
            stream=True,
            **extra,
        ):
            if chunk.choices and chunk.choices[0].logprobs and chunk.choices[0].logprobs.content:
                streamed.extend(chunk.choices[0].logprobs.content)
    assert completion.choices[0].logprobs is not None
    theirs = from_openai(completion.choices[0].logprobs.content)
    assert theirs and from_openai(streamed) == theirs
    async with llmrelay.AsyncClient(
        provider="openai", base_url=f"{mock_url}/v1", api_key="k", model="mock-echo"
    ) as client:
        reply = await client.chat(PROMPT, logprobs=True, top_logprobs=top)
        async with client.stream(PROMPT, logprobs=True, top_logprobs=top) as stream:
            final = await stream.final()
    assert reply.logprobs == theirs
    assert final.logprobs == theirs


async def test_google_genai_sdk_agrees(mock_url: str) -> None:
    sdk = genai.Client(
        api_key="k", http_options=types.HttpOptions(base_url=mock_url, api_version="v1beta")
    )
    config = types.GenerateContentConfig(response_logprobs=True, logprobs=2)
    response = sdk.models.generate_content(model="mock-echo", contents=PROMPT, config=config)
    result = response.candidates[0].logprobs_result if response.candidates else None
    assert result is not None and result.chosen_candidates and result.top_candidates
    theirs = tuple(
        TokenLogprob(
            token=chosen.token or "",
            logprob=chosen.log_probability or 0.0,
            top=tuple(
                TokenLogprob(token=c.token or "", logprob=c.log_probability or 0.0)
                for c in top.candidates or []
            ),
        )
        for chosen, top in zip(result.chosen_candidates, result.top_candidates, strict=True)
    )
    async with llmrelay.AsyncClient(
        provider="gemini", base_url=f"{mock_url}/v1beta", api_key="k", model="mock-echo"
    ) as client:
        reply = await client.chat(PROMPT, logprobs=True, top_logprobs=2)
    assert reply.logprobs == theirs
