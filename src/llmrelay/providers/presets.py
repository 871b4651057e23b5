"""Presets for the OpenAI-compatible services (base URL, key env var, known quirks)."""

from __future__ import annotations

from . import _openai_compatible, register_preset

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
