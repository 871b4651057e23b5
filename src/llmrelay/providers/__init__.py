"""Provider presets, the registry, and the adapter contract.

`get_provider("deepseek")` returns the preset; names that are not built in are looked up among
the installed `llmrelay.providers` entry points. An entry point may name a `Provider`, a
zero-argument callable returning one, or a module with a `provider` attribute that is either::

    [project.entry-points."llmrelay.providers"]
    acme = "acme_llm"              # the module acme_llm defines `provider`

Built-in names win over plugins of the same name. A plugin's stream parser raises the typed
error of an error event with `make_status_error` (re-exported here). See docs/plugins.md.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any

from .._exceptions import ConfigError, make_status_error
from ._base import Adapter, ErrorInfo, Provider, StreamParser

__all__ = [
    "Adapter",
    "ErrorInfo",
    "Provider",
    "StreamParser",
    "get_provider",
    "make_status_error",
    "plugin_names",
    "preset_names",
]

ENTRY_POINT_GROUP = "llmrelay.providers"


def _openai_compatible(
    name: str,
    base_url: str,
    key_env: tuple[str, ...],
    *,
    base_url_env: tuple[str, ...] = (),
    key_required: bool = True,
    stream_usage: bool = True,
    **options: Any,
) -> Callable[[], Provider]:
    def build() -> Provider:
        from . import openai

        return Provider(
            name=name,
            adapter=openai,
            base_url=base_url,
            api_key_env=key_env,
            base_url_env=base_url_env,
            key_required=key_required,
            stream_usage=stream_usage,
            options=options,
        )

    return build


def _mock() -> Provider:
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


# Built lazily: naming a preset imports only its own adapter.
_PRESETS: dict[str, Callable[[], Provider]] = {
    "openai": _openai_compatible(
        "openai",
        "https://api.openai.com/v1",
        ("OPENAI_API_KEY",),
        base_url_env=("OPENAI_BASE_URL",),
        max_tokens_field="max_completion_tokens",
    ),
    "mock": _mock,
}


def register_preset(name: str, factory: Callable[[], Provider]) -> None:
    """Add a built-in preset (used by the family modules at import time)."""
    _PRESETS[name] = factory


def preset_names() -> list[str]:
    """The built-in preset names, sorted."""
    _load_families()
    return sorted(_PRESETS)


def _load_families() -> None:
    import_module(".presets", __name__)


def plugin_names() -> list[str]:
    """Names registered by installed packages in the `llmrelay.providers` entry-point group."""
    from importlib.metadata import entry_points

    return sorted({entry.name for entry in entry_points(group=ENTRY_POINT_GROUP)})


def get_provider(name: str) -> Provider:
    """The preset called `name`, or a provider registered by a third-party package."""
    _load_families()
    factory = _PRESETS.get(name)
    if factory is not None:
        return factory()
    from importlib.metadata import entry_points

    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name == name:
            return _from_entry_point(name, entry.value, entry.load)
    plugins = plugin_names()
    installed = f"; installed plugins: {', '.join(plugins)}" if plugins else ""
    raise ConfigError(
        f"unknown provider {name!r}; built-in presets are: {', '.join(preset_names())}"
        f"{installed} (third-party providers register in the {ENTRY_POINT_GROUP!r} "
        "entry-point group, or pass a Provider object)"
    )


def _from_entry_point(name: str, value: str, load: Callable[[], Any]) -> Provider:
    where = f"entry point {name!r} ({value}) in {ENTRY_POINT_GROUP!r}"
    try:
        target = load()
    except Exception as exc:  # a broken plugin must not look like a bug of ours
        raise ConfigError(f"could not load {where}: {type(exc).__name__}: {exc}") from exc
    provider = target if isinstance(target, Provider) else getattr(target, "provider", target)
    if callable(provider) and not isinstance(provider, Provider):
        provider = provider()
    if not isinstance(provider, Provider):
        raise ConfigError(
            f"{where} does not give a Provider (got {type(provider).__name__}); it must name "
            "a Provider, a function returning one, or a module with a `provider` attribute"
        )
    return provider
