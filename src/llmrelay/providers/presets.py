"""The built-in presets, as one table: `PRESETS`, name → factory.

A factory is called when a client is built, with the environment mapping the client's settings
are resolved from (so a preset's own variables, such as ``OLLAMA_HOST``, come from that mapping
and never from import time), and imports only its own adapter module. The key and base-URL
variables a preset names (`api_key_env`, `base_url_env`) are read by the resolver, not here.

Each OpenAI-compatible preset names its quirks as adapter options (see `providers.openai`):
who wants reasoning replayed, who rejects `stream_options`, `messages[].name` or long tool-call
ids. `docs/guides/providers.md` has the same facts as a table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .._exceptions import ConfigError
from ._base import Provider

if TYPE_CHECKING:
    from . import anthropic, azure, gemini, openai, openai_responses
    from ._base import Adapter

    # The family modules are their own adapters: mypy checks each against the protocol here.
    _FAMILIES: tuple[Adapter, ...] = (anthropic, azure, gemini, openai, openai_responses)

# Called with the environment mapping; returns a fresh `Provider`.
PresetFactory = Callable[[Mapping[str, str]], Provider]

OLLAMA_DEFAULT_PORT = 11434


def _openai_compatible(
    name: str,
    base_url: str,
    key_env: tuple[str, ...],
    *,
    base_url_env: tuple[str, ...] = (),
    key_required: bool = True,
    stream_usage: bool = True,
    **options: Any,
) -> PresetFactory:
    def build(environ: Mapping[str, str]) -> Provider:
        from . import openai

        return Provider(
            name=name,
            adapter=openai,
            base_url=base_url,
            api_key_env=key_env,
            base_url_env=base_url_env,
            key_required=key_required,
            stream_usage=stream_usage,
            options=dict(options),  # each provider its own copy
        )

    return build


def _anthropic(environ: Mapping[str, str]) -> Provider:
    from . import anthropic

    return anthropic.preset(environ=environ)


def _gemini(environ: Mapping[str, str]) -> Provider:
    from . import gemini

    return gemini.preset()


def _azure(environ: Mapping[str, str]) -> Provider:
    from . import azure

    return azure.preset(environ=environ)


def ollama_base_url(host: str | None) -> str:
    """The OpenAI-compatible base URL for an `OLLAMA_HOST` value, read the way the Ollama CLI
    reads it: ``"127.0.0.1:11434"``, ``"0.0.0.0"``, ``":8080"`` or ``"https://gpu.lan"``.

    Without a scheme the port defaults to 11434; with ``http://``/``https://`` to 80/443.
    """
    host = (host or "").strip()
    scheme, sep, rest = host.partition("://")
    port = OLLAMA_DEFAULT_PORT
    if not sep:
        scheme, rest = "http", host
    elif scheme == "https":
        port = 443
    else:
        port = 80
    parts = urlsplit(f"{scheme}://{rest}")
    try:
        port = parts.port or port
    except ValueError:
        raise ConfigError(f"OLLAMA_HOST={host!r} is not host[:port] or a URL") from None
    hostname = parts.hostname or "127.0.0.1"
    if ":" in hostname:  # IPv6 literal
        hostname = f"[{hostname}]"
    path = parts.path.rstrip("/")
    if not path.endswith("/v1"):
        path += "/v1"
    return f"{scheme}://{hostname}:{port}{path}"


def _ollama(environ: Mapping[str, str]) -> Provider:
    from . import openai

    return Provider(
        name="ollama",
        adapter=openai,
        base_url=ollama_base_url(environ.get("OLLAMA_HOST")),
        key_required=False,  # the server takes no key; one passed anyway is sent as a Bearer
    )


def _mock(environ: Mapping[str, str]) -> Provider:
    from ..mock import MockTransport
    from . import openai

    return Provider(
        name="mock",
        adapter=openai,
        base_url="http://mock.llmrelay.invalid/v1",
        key_required=False,
        default_model="mock-echo",
        transport_factory=MockTransport,
    )


PRESETS: Mapping[str, PresetFactory] = MappingProxyType(
    {
        "openai": _openai_compatible(
            "openai",
            "https://api.openai.com/v1",
            ("OPENAI_API_KEY",),
            base_url_env=("OPENAI_BASE_URL",),
            max_tokens_field="max_completion_tokens",
        ),
        "anthropic": _anthropic,
        "gemini": _gemini,
        "azure": _azure,
        # Reasoning must go back on tool-call turns; `: keep-alive` comments; cache-hit usage.
        "deepseek": _openai_compatible(
            "deepseek",
            "https://api.deepseek.com",
            ("DEEPSEEK_API_KEY",),
            base_url_env=("DEEPSEEK_BASE_URL",),
            replay_reasoning=True,
            structured_output="json_object",
        ),
        # DashScope compatible mode: usage only with include_usage; thinking via extra_body.
        "qwen": _openai_compatible(
            "qwen",
            "https://dashscope.aliyuncs.com/compatible-mode/v1",
            ("DASHSCOPE_API_KEY",),
            base_url_env=("DASHSCOPE_BASE_URL",),
            structured_output="json_object",
        ),
        # Streamed usage arrives in choices[0].usage (read by the parser); reasoning replayed.
        "moonshot": _openai_compatible(
            "moonshot",
            "https://api.moonshot.ai/v1",
            ("MOONSHOT_API_KEY",),
            base_url_env=("MOONSHOT_BASE_URL",),
            replay_reasoning=True,
            structured_output="json_object",
        ),
        # No /v1 in the path; usage comes on the last chunk without asking for it.
        "zhipu": _openai_compatible(
            "zhipu",
            "https://open.bigmodel.cn/api/paas/v4",
            ("ZHIPUAI_API_KEY", "ZHIPU_API_KEY"),
            base_url_env=("ZHIPUAI_BASE_URL",),
            stream_usage=False,
            structured_output="json_object",
        ),
        "qianfan": _openai_compatible(
            "qianfan",
            "https://qianfan.baidubce.com/v2",
            ("QIANFAN_API_KEY",),
            base_url_env=("QIANFAN_BASE_URL",),
        ),
        "siliconflow": _openai_compatible(
            "siliconflow",
            "https://api.siliconflow.cn/v1",
            ("SILICONFLOW_API_KEY",),
            base_url_env=("SILICONFLOW_BASE_URL",),
        ),
        # 400 on messages[].name; usage in x_groq.usage, which needs no stream_options.
        "groq": _openai_compatible(
            "groq",
            "https://api.groq.com/openai/v1",
            ("GROQ_API_KEY",),
            base_url_env=("GROQ_BASE_URL",),
            stream_usage=False,
            strip_message_name=True,
        ),
        # 422 on stream_options (usage comes anyway); tool-call ids must be 9 alphanumerics.
        "mistral": _openai_compatible(
            "mistral",
            "https://api.mistral.ai/v1",
            ("MISTRAL_API_KEY",),
            base_url_env=("MISTRAL_BASE_URL",),
            stream_usage=False,
            tool_call_id_style="mistral",
        ),
        # `: OPENROUTER PROCESSING` comments, `reasoning` field, errors as data after the 200.
        "openrouter": _openai_compatible(
            "openrouter",
            "https://openrouter.ai/api/v1",
            ("OPENROUTER_API_KEY",),
            base_url_env=("OPENROUTER_BASE_URL",),
        ),
        "together": _openai_compatible(
            "together",
            "https://api.together.xyz/v1",
            ("TOGETHER_API_KEY",),
            base_url_env=("TOGETHER_BASE_URL",),
        ),
        "ollama": _ollama,
        # Key only if the server runs with --api-key; errors as {"object": "error"} mid-stream.
        "vllm": _openai_compatible(
            "vllm",
            "http://localhost:8000/v1",
            ("VLLM_API_KEY",),
            key_required=False,
            base_url_env=("VLLM_BASE_URL",),
        ),
        "mock": _mock,
    }
)
