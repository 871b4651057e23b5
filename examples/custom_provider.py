"""A custom provider in a few lines: a `Provider` whose adapter reuses the OpenAI functions and
changes only the login header, run offline against llmrelay's mock engine.

Run: python examples/custom_provider.py
"""

from __future__ import annotations

import anyio
import httpx

import llmrelay
from llmrelay.mock import MockTransport
from llmrelay.providers import Provider, openai


class AcmeAdapter:
    """Acme speaks OpenAI's JSON; it logs in with an `x-acme-key` header."""

    request_id_header = "x-acme-request-id"

    def auth_headers(self, provider: Provider, api_key: str | None) -> dict[str, str]:
        return {"x-acme-key": api_key} if api_key else {}

    build_chat = staticmethod(openai.build_chat)
    parse_chat = staticmethod(openai.parse_chat)
    new_stream_parser = staticmethod(openai.new_stream_parser)
    build_embed = staticmethod(openai.build_embed)
    parse_embed = staticmethod(openai.parse_embed)
    build_models = staticmethod(openai.build_models)
    parse_models = staticmethod(openai.parse_models)
    parse_error = staticmethod(openai.parse_error)


ACME = Provider(
    name="acme",
    adapter=AcmeAdapter(),
    base_url="https://api.acme.example/v1",
    api_key_env=("ACME_API_KEY",),
    default_model="mock-echo",  # a model the mock engine knows
)


async def main() -> None:
    # The mock engine answers any base URL in OpenAI's wire format: no network, no real key.
    async with (
        httpx.AsyncClient(transport=MockTransport()) as http,
        llmrelay.AsyncClient(provider=ACME, api_key="acme-demo-key", http_client=http) as client,
    ):
        reply = await client.chat("Hello from a custom provider")
        print(f"chat:   {reply.text!r} via {reply.provider} ({reply.model})")

        async with client.stream("Stream through Acme") as stream:
            pieces = [chunk.text async for chunk in stream]
            final = await stream.final()
        print(f"stream: {len(pieces)} chunks -> {final.text!r} [{final.finish_reason}]")

        models = await client.models()
        print(f"models: {', '.join(m.id for m in models)}")


if __name__ == "__main__":
    anyio.run(main)
