"""The built-in presets: name → factory. Factories run when a client is built (so env vars are
read then, never at import) and import only their own adapter module.

Each OpenAI-compatible preset names its quirks as adapter options (see `providers.openai`):
who wants reasoning replayed, who rejects `stream_options`, `messages[].name` or long tool-call
ids. `docs/providers.md` has the same facts as a table.
"""

from __future__ import annotations

import os
from importlib import import_module
from urllib.parse import urlsplit

from .._exceptions import ConfigError
from . import Provider, _openai_compatible, register_preset

OLLAMA_DEFAULT_PORT = 11434


def _family(module: str) -> Provider:
    preset: Provider = import_module(f".{module}", __package__).preset()
    return preset


register_preset("anthropic", lambda: _family("anthropic"))
register_preset("gemini", lambda: _family("gemini"))
register_preset("azure", lambda: _family("azure"))


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


def _ollama() -> Provider:
    from . import openai

    return Provider(
        name="ollama",
        adapter=openai,
        base_url=ollama_base_url(os.environ.get("OLLAMA_HOST")),
        key_required=False,  # the server takes no key; one passed anyway is sent as a Bearer
    )


register_preset("ollama", _ollama)

# OpenAI-compatible services: name → (base URL, key env vars, base-URL env vars, quirks).
for _name, _factory in {
    # Reasoning must go back on tool-call turns; `: keep-alive` comments; cache-hit usage.
    "deepseek": _openai_compatible(
        "deepseek",
        "https://api.deepseek.com",
        ("DEEPSEEK_API_KEY",),
        base_url_env=("DEEPSEEK_BASE_URL",),
        replay_reasoning=True,
    ),
    # DashScope compatible mode: usage only with include_usage; thinking via extra_body.
    "qwen": _openai_compatible(
        "qwen",
        "https://dashscope.aliyuncs.com/compatible-mode/v1",
        ("DASHSCOPE_API_KEY",),
        base_url_env=("DASHSCOPE_BASE_URL",),
    ),
    # Streamed usage arrives in choices[0].usage (read by the parser); reasoning replayed.
    "moonshot": _openai_compatible(
        "moonshot",
        "https://api.moonshot.ai/v1",
        ("MOONSHOT_API_KEY",),
        base_url_env=("MOONSHOT_BASE_URL",),
        replay_reasoning=True,
    ),
    # No /v1 in the path; usage comes on the last chunk without asking for it.
    "zhipu": _openai_compatible(
        "zhipu",
        "https://open.bigmodel.cn/api/paas/v4",
        ("ZHIPUAI_API_KEY", "ZHIPU_API_KEY"),
        base_url_env=("ZHIPUAI_BASE_URL",),
        stream_usage=False,
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
    # Key only if the server runs with --api-key; errors as {"object": "error"} mid-stream.
    "vllm": _openai_compatible(
        "vllm",
        "http://localhost:8000/v1",
        ("VLLM_API_KEY",),
        key_required=False,
        base_url_env=("VLLM_BASE_URL",),
    ),
}.items():
    register_preset(_name, _factory)
