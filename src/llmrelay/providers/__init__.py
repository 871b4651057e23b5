"""Provider presets, the registry, and the adapter contract.

`get_provider("deepseek")` returns the preset. The built-in presets are one literal table,
`presets.PRESETS` (name → factory called with the environment mapping); names that are not in
it are looked up among the installed `llmrelay.providers` entry points, found on the first
such lookup. An entry point may name a `Provider`, a
zero-argument callable returning one, or a module with a `provider` attribute that is either::

    [project.entry-points."llmrelay.providers"]
    acme = "acme_llm"              # the module acme_llm defines `provider`

Built-in names win over plugins of the same name. A plugin's stream parser raises the typed
error of an error event with `make_status_error` (re-exported here). See docs/guides/plugins.md.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

from .. import _constants as C
from .._exceptions import ConfigError, make_status_error
from ._base import Adapter, ErrorInfo, Provider, StreamParser

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    from .presets import PresetFactory

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


def _built_in() -> Mapping[str, PresetFactory]:
    # Imported on first use: `import llmrelay` stays light, and naming a preset imports only
    # its own adapter module.
    from .presets import PRESETS

    return PRESETS


def preset_names() -> list[str]:
    """The built-in preset names, sorted."""
    return sorted(_built_in())


def plugin_names() -> list[str]:
    """Names registered by installed packages in the `llmrelay.providers` entry-point group."""
    return sorted(_plugin_entries())


@cache
def _plugin_entries() -> Mapping[str, EntryPoint]:
    """The group's entry points by name (the first one wins), found once per process: the
    scan of installed distributions costs milliseconds, and plugins rarely appear mid-run."""
    from importlib.metadata import entry_points

    found: dict[str, EntryPoint] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(entry.name, entry)
    return found


def get_provider(name: str, environ: Mapping[str, str] | None = None) -> Provider:
    """The preset called `name`, or a provider registered by a third-party package.

    A built-in preset reads its settings from `environ` (default: the process environment),
    the mapping the client's settings are resolved from (e.g. ``OLLAMA_HOST``).
    """
    factory = _built_in().get(name)
    if factory is not None:
        return factory(os.environ if environ is None else environ)
    entry = _plugin_entries().get(name)
    if entry is not None:
        return _from_entry_point(name, entry.value, entry.load)
    plugins = plugin_names()
    installed = f"; installed plugins: {', '.join(plugins)}" if plugins else ""
    guess = _closest(name, [*preset_names(), *plugins])
    did_you_mean = f" (did you mean {guess!r}?)" if guess else ""
    raise ConfigError(
        f"unknown provider {name!r}{did_you_mean}; built-in presets are: "
        f"{', '.join(preset_names())}{installed} (third-party providers register in the "
        f"{ENTRY_POINT_GROUP!r} entry-point group, or pass a Provider object)"
    )


def _closest(name: str, known: list[str]) -> str | None:
    """The known name `name` most likely misspells (``opnai`` → ``openai``, ``OpenAI`` →
    ``openai``), or `None` when none is close enough to suggest."""
    folded = name.strip().lower()
    by_folded = {candidate.lower(): candidate for candidate in known}
    if folded in by_folded:
        return by_folded[folded]
    matches = difflib.get_close_matches(
        folded, list(by_folded), n=1, cutoff=C.PROVIDER_SUGGEST_CUTOFF
    )
    return by_folded[matches[0]] if matches else None


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
