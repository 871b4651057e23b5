"""Configuration profiles: ``llmrelay.toml`` found, read, checked and turned into a `Profile`,
one layer of the settings `_settings.resolve_profile_config` resolves.

The file is the first of ``$LLMRELAY_CONFIG``, ``./llmrelay.toml``,
``$XDG_CONFIG_HOME/llmrelay/llmrelay.toml`` (or ``~/.config/llmrelay/llmrelay.toml``)::

    default_profile = "work"

    [profiles.work]
    provider = "openai"
    model = "gpt-4o-mini"
    api_key = "${WORK_OPENAI_KEY}"      # ${VAR} is read from the environment; $$ is a literal $
    max_concurrency = 8
    rate_limit = { requests_per_minute = 500 }
    headers = { "x-team" = "search" }
    prices = { "gpt-4o-mini" = [0.15, 0.60] }   # per million tokens: [prompt, completion]

Every profile is checked when the file is read, with the same checks as the client's
arguments (`_settings.check_setting`); errors name the file, the key and what was expected.
The environment is never read here: callers pass the `environ` mapping the resolver uses.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._decoding import decode_text
from ._exceptions import ConfigError
from ._settings import Place, check_setting, check_text

CONFIG_FILE_NAME = "llmrelay.toml"
CONFIG_ENV = "LLMRELAY_CONFIG"
PROFILE_ENV = "LLMRELAY_PROFILE"
PROFILE_KEYS = (
    "api_key",
    "base_url",
    "headers",
    "max_concurrency",
    "max_retries",
    "model",
    "prices",
    "provider",
    "rate_limit",
    "timeout",
)
_TOP_KEYS = ("default_profile", "profiles")
_VAR = re.compile(r"\$\$|\$\{([^}]*)\}")
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    """One profile, ready for the resolver: its values with ``${VAR}`` expanded, and `where`
    (``llmrelay.toml: profiles.NAME``) to name them in errors and `ClientConfig.sources`."""

    name: str
    where: str
    values: Mapping[str, Any]
    path: Path


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigFile:
    """A parsed, checked config file. Profile values are kept as written (``${VAR}`` not yet
    expanded): only the profile in use is expanded, so another profile's variables need not
    be set."""

    path: Path
    label: str  # how errors name the file
    default_profile: str | None
    profiles: Mapping[str, Mapping[str, Any]]

    def profile(self, name: str, environ: Mapping[str, str]) -> Profile:
        """Profile `name` with ``${VAR}`` expanded from `environ`."""
        raw = self.profiles.get(name)
        if raw is None:
            known = ", ".join(sorted(self.profiles)) or "none"
            raise ConfigError(f"{self.label}: no profile named {name!r} (profiles: {known})")
        where = f"{self.label}: profiles.{name}"
        values = {key: _expand(value, f"{where}.{key}", environ) for key, value in raw.items()}
        return Profile(name=name, where=where, values=values, path=self.path)


def select_profile(
    name: str | None = None,
    *,
    config_path: str | os.PathLike[str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str],
) -> Profile | None:
    """The profile in use: `name`, else ``$LLMRELAY_PROFILE``, else the file's
    `default_profile`; `None` when none is named (the environment and defaults apply)."""
    path = Path(config_path) if config_path is not None else find_config_file(cwd, environ)
    config = load_config(path, cwd=cwd) if path is not None else None
    chosen = name or environ.get(PROFILE_ENV) or (config.default_profile if config else None)
    if chosen is None:
        return None
    if config is None:
        raise ConfigError(
            f"profile {chosen!r} asked for, but no {CONFIG_FILE_NAME} was found (looked in "
            f"the working directory and the user config directory; or set {CONFIG_ENV})"
        )
    return config.profile(chosen, environ)


def find_config_file(cwd: str | os.PathLike[str] | None, environ: Mapping[str, str]) -> Path | None:
    """The config file in use, or `None`: ``$LLMRELAY_CONFIG`` (which must exist), else
    ``llmrelay.toml`` in `cwd`, else the user config directory's."""
    explicit = environ.get(CONFIG_ENV)
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"{CONFIG_ENV} names {explicit!r}, which is not a file")
        return path
    here = Path(cwd) if cwd is not None else Path.cwd()
    candidates = [here / CONFIG_FILE_NAME]
    xdg = environ.get("XDG_CONFIG_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".config"
    candidates.append(base / "llmrelay" / CONFIG_FILE_NAME)
    return next((path for path in candidates if path.is_file()), None)


def load_config(
    path: str | os.PathLike[str], *, cwd: str | os.PathLike[str] | None = None
) -> ConfigFile:
    """Read and check a config file (types and keys; ``${VAR}`` is expanded later)."""
    path = Path(path)
    label = _label(path, Path(cwd) if cwd is not None else Path.cwd())
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{label}: cannot read the file: {exc.strerror or exc}") from None
    # Decoded here, not by tomllib: a byte that is not UTF-8 (a file saved as Latin-1) is
    # named by line and offset instead of escaping as a UnicodeDecodeError.
    text = decode_text(raw, label, hint="save the file as UTF-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{label}: not valid TOML: {exc}") from None
    for key in data:
        if key not in _TOP_KEYS:
            raise ConfigError(
                f"{label}: {key}: unknown key (expected default_profile and [profiles.NAME] tables)"
            )
    profiles_raw = data.get("profiles", {})
    if not isinstance(profiles_raw, dict):
        raise ConfigError(f"{label}: profiles: expected a table of [profiles.NAME] tables")
    profiles: dict[str, dict[str, Any]] = {}
    for name, table in profiles_raw.items():
        where = f"{label}: profiles.{name}"
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: expected a table, got {table!r}")
        for key, value in table.items():
            _check_key(key, value, Place(key, f"{where}.{key}"))
        profiles[name] = table
    default = data.get("default_profile")
    if default is not None:
        if not isinstance(default, str) or not default:
            raise ConfigError(f"{label}: default_profile: expected a profile name, got {default!r}")
        if default not in profiles:
            known = ", ".join(sorted(profiles)) or "none"
            raise ConfigError(
                f"{label}: default_profile: no profile named {default!r} (profiles: {known})"
            )
    return ConfigFile(path=path, label=label, default_profile=default, profiles=profiles)


def _label(path: Path, cwd: Path) -> str:
    try:
        return str(path.resolve().relative_to(cwd.resolve()))
    except ValueError:
        return str(path)


def _check_key(key: str, value: Any, place: Place) -> None:
    """Check a profile value as written, so that a mistake in any profile shows at once. A
    string holding ``${VAR}`` is checked after expansion, by the resolver, when it is used."""
    if key not in PROFILE_KEYS:
        raise place.unknown(PROFILE_KEYS)
    if isinstance(value, str) and "${" in value:
        check_text(value, place)
    else:
        check_setting(key, value, place)


def _expand(value: Any, where: str, environ: Mapping[str, str]) -> Any:
    """Expand ``${VAR}`` in strings (nested tables too); ``$$`` is a literal ``$``."""
    if isinstance(value, dict):
        return {key: _expand(item, f"{where}.{key}", environ) for key, item in value.items()}
    if not isinstance(value, str) or "$" not in value:
        return value

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        var = match.group(1)
        if not _VAR_NAME.fullmatch(var):
            raise ConfigError(f"{where}: ${{{var}}} is not a valid environment variable name")
        if var not in environ:
            raise ConfigError(
                f"{where}: environment variable {var} is not set (used as ${{{var}}})"
            )
        return environ[var]

    return _VAR.sub(replace, value)
