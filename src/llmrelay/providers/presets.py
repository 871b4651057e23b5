"""The built-in presets: name → factory. Factories run when a client is built (so env vars are
read then, never at import) and import only their own adapter module."""

from __future__ import annotations

from importlib import import_module

from . import Provider, _openai_compatible, register_preset


def _family(module: str) -> Provider:
    preset: Provider = import_module(f".{module}", __package__).preset()
    return preset


register_preset("anthropic", lambda: _family("anthropic"))
register_preset("gemini", lambda: _family("gemini"))
register_preset("azure", lambda: _family("azure"))

# OpenAI-compatible services.
for _name, _factory in {
    "deepseek": _openai_compatible(
        "deepseek", "https://api.deepseek.com", ("DEEPSEEK_API_KEY",), replay_reasoning=True
    ),
    "ollama": _openai_compatible(
        "ollama",
        "http://localhost:11434/v1",
        (),
        key_required=False,
        base_url_env=("OLLAMA_BASE_URL",),
    ),
    "vllm": _openai_compatible(
        "vllm",
        "http://localhost:8000/v1",
        ("VLLM_API_KEY",),
        key_required=False,
        base_url_env=("VLLM_BASE_URL",),
    ),
}.items():
    register_preset(_name, _factory)
