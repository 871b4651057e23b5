"""Configuration profiles: ``llmrelay.toml`` plus the environment, resolved into client settings.

Precedence, field by field: explicit argument > environment (``LLMRELAY_PROVIDER``,
``LLMRELAY_MODEL``, the preset's key and base-URL variables) > the config file's profile >
defaults. The file is the first of ``$LLMRELAY_CONFIG``, ``./llmrelay.toml``,
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

`client_kwargs_from_profile("work")` returns the keyword arguments for `AsyncClient(...)`.
Errors name the file, the key and what was expected.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._config import RateLimit, Timeout
from ._exceptions import ConfigError
from ._usage import Prices

CONFIG_FILE_NAME = "llmrelay.toml"
CONFIG_ENV = "LLMRELAY_CONFIG"
PROFILE_ENV = "LLMRELAY_PROFILE"
PROVIDER_ENV = "LLMRELAY_PROVIDER"
MODEL_ENV = "LLMRELAY_MODEL"
DEFAULT_PROVIDER = "openai"
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
_RATE_KEYS = ("requests_per_minute", "tokens_per_minute")
_TIMEOUT_KEYS = ("connect", "read", "total")
_VAR = re.compile(r"\$\$|\$\{([^}]*)\}")
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigFile:
    """A parsed, checked config file. Profile values are kept as written (``${VAR}`` not yet
    expanded): only the profile in use is expanded, so another profile's variables need not
    be set."""

    path: Path
    label: str  # how errors name the file
    default_profile: str | None
    profiles: Mapping[str, Mapping[str, Any]]

    def profile(self, name: str, environ: Mapping[str, str]) -> dict[str, Any]:
        """Profile `name` with ``${VAR}`` expanded from `environ`."""
        raw = self.profiles.get(name)
        if raw is None:
            known = ", ".join(sorted(self.profiles)) or "none"
            raise ConfigError(f"{self.label}: no profile named {name!r} (profiles: {known})")
        where = f"{self.label}: profiles.{name}"
        return {key: _expand(value, f"{where}.{key}", environ) for key, value in raw.items()}


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Resolved client settings; `sources` tells where each value came from."""

    provider: str
    model: str | None = None
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    timeout: Timeout | None = None
    max_retries: int | None = None
    max_concurrency: int | None = None
    rate_limit: RateLimit | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    prices: Prices = field(default_factory=dict)
    profile: str | None = None
    config_path: Path | None = None
    sources: Mapping[str, str] = field(default_factory=dict)

    def client_kwargs(self, **extra: Any) -> dict[str, Any]:
        """Keyword arguments for `AsyncClient(...)` (unset values left to its defaults), plus
        `extra` ones that are not settings (`retry`, `http_client`...). A `retry=` policy
        carries its own retry count, so it replaces a `max_retries` that did not come from an
        explicit argument."""
        kwargs: dict[str, Any] = {"provider": self.provider}
        for name in (
            "model",
            "base_url",
            "api_key",
            "timeout",
            "max_retries",
            "max_concurrency",
            "rate_limit",
        ):
            value = getattr(self, name)
            if value is not None:
                kwargs[name] = value
        if self.headers:
            kwargs["headers"] = dict(self.headers)
        if self.prices:
            kwargs["prices"] = dict(self.prices)
        if "retry" in extra and self.sources.get("max_retries") != "argument":
            kwargs.pop("max_retries", None)
        kwargs.update(extra)
        return kwargs


def find_config_file(
    cwd: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Path | None:
    """The config file in use, or `None`: ``$LLMRELAY_CONFIG`` (which must exist), else
    ``llmrelay.toml`` in `cwd`, else the user config directory's."""
    env = os.environ if environ is None else environ
    explicit = env.get(CONFIG_ENV)
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"{CONFIG_ENV} names {explicit!r}, which is not a file")
        return path
    here = Path(cwd) if cwd is not None else Path.cwd()
    candidates = [here / CONFIG_FILE_NAME]
    xdg = env.get("XDG_CONFIG_HOME")
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
        with path.open("rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"{label}: cannot read the file: {exc.strerror or exc}") from None
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
        profiles[name] = {
            key: _check_key(key, value, f"{where}.{key}") for key, value in table.items()
        }
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


def resolve_settings(
    profile: str | None = None,
    *,
    config_path: str | os.PathLike[str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    provider: str | None = None,
    model: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    timeout: Timeout | float | None = None,
    max_retries: int | None = None,
    max_concurrency: int | None = None,
    rate_limit: RateLimit | Mapping[str, float] | None = None,
    headers: Mapping[str, str] | None = None,
    prices: Prices | None = None,
) -> Settings:
    """Resolve every setting: explicit argument > environment > config profile > default.

    The profile is `profile`, else ``$LLMRELAY_PROFILE``, else the file's `default_profile`
    (none at all when the file has no default: the environment and defaults apply).
    """
    env = os.environ if environ is None else environ
    path = Path(config_path) if config_path is not None else find_config_file(cwd, env)
    config = load_config(path, cwd=cwd) if path is not None else None
    name = profile or env.get(PROFILE_ENV) or (config.default_profile if config else None)
    values: dict[str, Any] = {}
    if name is not None:
        if config is None:
            raise ConfigError(
                f"profile {name!r} asked for, but no {CONFIG_FILE_NAME} was found (looked in "
                f"the working directory and the user config directory; or set {CONFIG_ENV})"
            )
        values = config.profile(name, env)
    where = f"{config.label}: profiles.{name}" if config and name else ""
    sources: dict[str, str] = {}

    def pick(key: str, explicit: Any, env_names: tuple[str, ...] = ()) -> Any:
        if explicit is not None:
            sources[key] = "argument"
            return explicit
        for var in env_names:
            if env.get(var):
                sources[key] = f"environment ({var})"
                return env[var]
        if key in values:
            sources[key] = f"{where}.{key}"
            return values[key]
        return None

    chosen_provider = pick("provider", provider, (PROVIDER_ENV,)) or DEFAULT_PROVIDER
    sources.setdefault("provider", "default")
    key_env, url_env = _preset_env(chosen_provider, sources["provider"])
    rate = pick("rate_limit", rate_limit)
    if isinstance(rate, Mapping):
        rate = RateLimit(**rate)
    merged_headers = {**values.get("headers", {}), **(headers or {})}
    if merged_headers:
        sources["headers"] = "argument" if headers else f"{where}.headers"
    merged_prices = {
        model: (float(price[0]), float(price[1]))
        for model, price in {**values.get("prices", {}), **(prices or {})}.items()
    }
    if merged_prices:
        sources["prices"] = "argument" if prices else f"{where}.prices"
    return Settings(
        provider=chosen_provider,
        model=pick("model", model, (MODEL_ENV,)),
        base_url=pick("base_url", base_url, url_env),
        api_key=pick("api_key", api_key, key_env),
        timeout=_timeout(pick("timeout", timeout)),
        max_retries=pick("max_retries", max_retries),
        max_concurrency=pick("max_concurrency", max_concurrency),
        rate_limit=rate,
        headers=merged_headers,
        prices=merged_prices,
        profile=name,
        config_path=path,
        sources=sources,
    )


def client_kwargs_from_profile(
    name: str | None = None,
    *,
    config_path: str | os.PathLike[str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Keyword arguments for `AsyncClient(...)` from profile `name` of ``llmrelay.toml``.

    `overrides` win over everything (explicit arguments; `headers` and `prices` are merged
    into the profile's, entry by entry); arguments that are not settings (`http_client`,
    `retry`...) are passed through untouched::

        client = AsyncClient(**client_kwargs_from_profile("work", model="gpt-4o"))
    """
    settable = {key: overrides.pop(key) for key in PROFILE_KEYS if key in overrides}
    settings = resolve_settings(name, config_path=config_path, cwd=cwd, environ=environ, **settable)
    return settings.client_kwargs(**overrides)


# -- checking ----------------------------------------------------------------------------------


def _label(path: Path, cwd: Path) -> str:
    try:
        return str(path.resolve().relative_to(cwd.resolve()))
    except ValueError:
        return str(path)


def _preset_env(name: str, source: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    from .providers import get_provider

    try:
        preset = get_provider(name)
    except ConfigError as exc:
        if source == "argument":  # the caller knows what it passed
            raise
        raise ConfigError(f"{source}: {exc}") from None
    return preset.api_key_env, preset.base_url_env


def _check_key(key: str, value: Any, where: str) -> Any:
    if key not in PROFILE_KEYS:
        raise ConfigError(f"{where}: unknown key (allowed: {', '.join(PROFILE_KEYS)})")
    if key in ("provider", "model", "base_url", "api_key"):
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where}: expected a non-empty string, got {value!r}")
        if (
            key == "base_url"
            and "${" not in value
            and not value.startswith(("http://", "https://"))
        ):
            raise ConfigError(
                f"{where}: expected a URL starting with http:// or https://, got {value!r}"
            )
        return value
    if key == "max_concurrency":
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{where}: expected a positive integer, got {value!r}")
        return value
    if key == "max_retries":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{where}: expected a whole number >= 0, got {value!r}")
        return value
    if key == "timeout":
        if isinstance(value, dict):
            _check_table(value, _TIMEOUT_KEYS, where, "a number of seconds")
            return value
        _check_seconds(value, where, "a number of seconds or a table {connect, read, total}")
        return value
    if key == "prices":
        _check_prices(value, where)
        return value
    if key == "rate_limit":
        if not isinstance(value, dict):
            raise ConfigError(
                f"{where}: expected a table {{requests_per_minute, tokens_per_minute}}, "
                f"got {value!r}"
            )
        _check_table(value, _RATE_KEYS, where, "a positive number")
        return value
    # headers
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a table of header names to strings, got {value!r}")
    for name, text in value.items():
        if not isinstance(text, str):
            raise ConfigError(f"{where}.{name}: expected a string, got {text!r}")
    return value


def _check_table(table: dict[str, Any], allowed: tuple[str, ...], where: str, what: str) -> None:
    for name, value in table.items():
        if name not in allowed:
            raise ConfigError(f"{where}.{name}: unknown key (allowed: {', '.join(allowed)})")
        _check_seconds(value, f"{where}.{name}", what)


def _check_prices(value: Any, where: str) -> None:
    if not isinstance(value, dict):
        raise ConfigError(
            f"{where}: expected a table of model names to [prompt, completion] prices per "
            f'million tokens, e.g. {{ "gpt-4o-mini" = [0.15, 0.60] }}, got {value!r}'
        )
    for model, price in value.items():
        if not (
            isinstance(price, list)
            and len(price) == 2
            and all(_is_number(p) and p >= 0 for p in price)
        ):
            raise ConfigError(
                f"{where}.{model}: expected [prompt, completion] prices per million tokens "
                f"(two numbers >= 0), got {price!r}"
            )


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def _check_seconds(value: Any, where: str, what: str) -> None:
    if not _is_number(value) or value <= 0:
        raise ConfigError(f"{where}: expected {what}, got {value!r}")


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

    expanded = _VAR.sub(replace, value)
    if where.endswith(".base_url") and not expanded.startswith(("http://", "https://")):
        raise ConfigError(
            f"{where}: expected a URL starting with http:// or https://, got {expanded!r}"
        )
    return expanded


def _timeout(value: Any) -> Timeout | None:
    if value is None or isinstance(value, Timeout):
        return value
    if isinstance(value, Mapping):
        return Timeout(**{key: float(seconds) for key, seconds in value.items()})
    return Timeout.coerce(value)
