"""Configuration profiles: ``llmrelay.toml`` (or ``llmrelay.yaml``) found, read, checked and
turned into a `Profile`, one layer of the settings `_settings.resolve_profile_config` resolves.

The file is ``$LLMRELAY_CONFIG`` if set, else the first directory of ``.`` and
``$XDG_CONFIG_HOME/llmrelay`` (or ``~/.config/llmrelay``) holding ``llmrelay.toml``,
``llmrelay.yaml`` or ``llmrelay.yml``; two of them in one directory is an error, since which
one is edited cannot be guessed. A name ending in ``.yaml``/``.yml`` is read as YAML (PyYAML,
the ``[yaml]`` extra, imported only then), any other as TOML::

    default_profile = "work"

    [profiles.work]
    provider = "openai"
    model = "gpt-4o-mini"
    api_key = "${WORK_OPENAI_KEY}"      # ${VAR} is read from the environment; $$ is a literal $
    max_concurrency = 8
    rate_limit = { requests_per_minute = 500 }
    headers = { "x-team" = "search" }
    prices = { "gpt-4o-mini" = [0.15, 0.60] }   # per million tokens: [prompt, completion]

The YAML form has the same keys (``profiles: {work: {provider: openai, ...}}``).
Every profile is checked when the file is read, with the same checks as the client's
arguments (`_settings.check_setting`); errors name the file, the key and what was expected.
The environment is never read here: callers pass the `environ` mapping the resolver uses.
"""

from __future__ import annotations

import datetime
import functools
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._decoding import decode_text
from ._exceptions import ConfigError
from ._settings import Place, check_setting, check_text

if TYPE_CHECKING:
    import yaml

CONFIG_FILE_NAME = "llmrelay.toml"
# Looked for in each directory; more than one in the same directory is an error.
CONFIG_FILE_NAMES = (CONFIG_FILE_NAME, "llmrelay.yaml", "llmrelay.yml")
YAML_SUFFIXES = (".yaml", ".yml")
YAML_INSTALL_HINT = 'pip install "llmrelay[yaml]"'
CONFIG_ENV = "LLMRELAY_CONFIG"
PROFILE_ENV = "LLMRELAY_PROFILE"
PROFILE_KEYS = (
    "api_key",
    "base_url",
    "headers",
    "http",
    "max_concurrency",
    "max_retries",
    "model",
    "prices",
    "provider",
    "rate_limit",
    "timeout",
)
_TOP_KEYS = ("default_profile", "profiles")
_TEXT_KEYS = frozenset({"api_key", "base_url", "headers", "http", "model", "provider"})  # text only
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
            f"profile {chosen!r} asked for, but no {CONFIG_FILE_NAME} or llmrelay.yaml was "
            f"found (looked in the working directory and the user config directory; or set "
            f"{CONFIG_ENV})"
        )
    return config.profile(chosen, environ)


def find_config_file(cwd: str | os.PathLike[str] | None, environ: Mapping[str, str]) -> Path | None:
    """The config file in use, or `None`: ``$LLMRELAY_CONFIG`` (which must exist), else the
    config file in `cwd`, else the user config directory's (see `CONFIG_FILE_NAMES`)."""
    explicit = environ.get(CONFIG_ENV)
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"{CONFIG_ENV} names {explicit!r}, which is not a file")
        return path
    here = Path(cwd) if cwd is not None else Path.cwd()
    xdg = environ.get("XDG_CONFIG_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".config"
    for folder in (here, base / "llmrelay"):
        found = [folder / name for name in CONFIG_FILE_NAMES if (folder / name).is_file()]
        if len(found) > 1:
            names = " and ".join(path.name for path in found)
            raise ConfigError(
                f"{folder}: found {names}, and only one is read: keep one, or name it with "
                f"{CONFIG_ENV} (--config on the command line, config_path= in code)"
            )
        if found:
            return found[0]
    return None


def load_config(
    path: str | os.PathLike[str], *, cwd: str | os.PathLike[str] | None = None
) -> ConfigFile:
    """Read and check a config file, TOML or YAML by its name (types and keys; ``${VAR}`` is
    expanded later)."""
    path = Path(path)
    label = _label(path, Path(cwd) if cwd is not None else Path.cwd())
    text = _read(path, label)
    if path.suffix.lower() in YAML_SUFFIXES:
        return _check_file(_parse_yaml(text, label), path, label, _YAML_WORDS)
    return _check_file(_parse_toml(text, label, path), path, label, _TOML_WORDS)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Words:
    """How errors name the parts of a file in its format's terms, and what they add about the
    format (`hint` of a value of the wrong type)."""

    top: str
    profiles: str
    profile: str
    hint: Callable[[Any, bool], str]


def _check_file(data: Any, path: Path, label: str, words: _Words) -> ConfigFile:
    """Check a parsed file (a TOML table or whatever YAML gave) and keep its profiles."""
    if data is None:  # an empty YAML file (or only comments): no profiles, as an empty TOML file
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{label}: expected a mapping of default_profile and profiles, got {_shown(data)}"
        )
    for key in data:
        if key not in _TOP_KEYS:
            raise ConfigError(f"{label}: {key}: unknown key ({words.top})" + words.hint(key, False))
    profiles_raw = data.get("profiles", {})
    if not isinstance(profiles_raw, dict):
        raise ConfigError(
            f"{label}: profiles: expected {words.profiles}, got {_shown(profiles_raw)}"
            + words.hint(profiles_raw, False)
        )
    profiles: dict[str, dict[str, Any]] = {}
    for name, table in profiles_raw.items():
        if not isinstance(name, str):  # only YAML has keys of other types
            raise ConfigError(
                f"{label}: profiles: a profile name must be text, got {name!r}"
                + words.hint(name, True)
            )
        where = f"{label}: profiles.{name}"
        if not isinstance(table, dict):
            hint = _EMPTY_PROFILE if table is None else words.hint(table, False)
            raise ConfigError(f"{where}: expected {words.profile}, got {table!r}{hint}")
        for key, value in table.items():
            try:
                _check_key(key, value, Place(str(key), f"{where}.{key}"))
            except ConfigError as exc:
                # An unknown key is the mistake, whatever its value: only the key is explained.
                culprit = {key: value} if key in PROFILE_KEYS else key
                hint = words.hint(culprit, key in _TEXT_KEYS)
                if not hint:
                    raise
                raise ConfigError(f"{exc}{hint}") from None
        profiles[name] = table
    default = data.get("default_profile")
    if default is not None:
        if not isinstance(default, str) or not default:
            raise ConfigError(
                f"{label}: default_profile: expected a profile name, got {default!r}"
                + words.hint(default, True)
            )
        if default not in profiles:
            known = ", ".join(sorted(profiles)) or "none"
            raise ConfigError(
                f"{label}: default_profile: no profile named {default!r} (profiles: {known})"
            )
    return ConfigFile(path=path, label=label, default_profile=default, profiles=profiles)


def _read(path: Path, label: str) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{label}: cannot read the file: {exc.strerror or exc}") from None
    # Decoded here, not by the parser: a byte that is not UTF-8 (a file saved as Latin-1) is
    # named by line and offset instead of escaping as a UnicodeDecodeError.
    return decode_text(raw, label, hint="save the file as UTF-8")


def _parse_toml(text: str, label: str, path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # A YAML file under another name is the likely mistake: say how names choose the format.
        note = ""
        if path.suffix.lower() != ".toml":
            note = "; read as TOML: a YAML file's name ends in .yaml or .yml"
        raise ConfigError(f"{label}: not valid TOML: {exc}{note}") from None


def _parse_yaml(text: str, label: str) -> Any:
    try:
        import yaml
    except ImportError:
        raise ConfigError(
            f"{label}: reading a YAML config file needs PyYAML: {YAML_INSTALL_HINT} "
            f"(or use {CONFIG_FILE_NAME})"
        ) from None
    try:
        return yaml.load(text, Loader=_yaml_loader())  # a SafeLoader: plain data only
    except yaml.MarkedYAMLError as exc:
        raise ConfigError(f"{label}: not valid YAML: {_yaml_problem(exc)}") from None
    except yaml.YAMLError as exc:  # PyYAML raises only marked errors on text; to be sure
        raise ConfigError(f"{label}: not valid YAML: {exc}") from None


@functools.cache
def _yaml_loader() -> type[yaml.SafeLoader]:
    """PyYAML's `SafeLoader` (plain data only: no tag builds a Python object), made to refuse
    duplicate keys, which YAML forbids and PyYAML would let the last one win silently."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
            seen: dict[Any, yaml.Node] = {}
            for key_node, _ in node.value if isinstance(node, yaml.MappingNode) else ():
                # Keys merged in with `<<: *base` are overridden, not duplicated: not checked.
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                if not isinstance(key_node, yaml.ScalarNode):
                    continue  # a complex key: PyYAML's own check refuses the unhashable ones
                key = self.construct_object(key_node)
                first = seen.setdefault(key, key_node)
                if first is not key_node:
                    raise yaml.constructor.ConstructorError(
                        problem=f"duplicate key {key!r}",
                        problem_mark=key_node.start_mark,
                        note=f"the first is at line {first.start_mark.line + 1}",
                    )
            return super().construct_mapping(node, deep)

    return UniqueKeyLoader


def _yaml_problem(exc: yaml.MarkedYAMLError) -> str:
    """One line from PyYAML's error, lines and columns counted from 1: what it was doing and
    where that started (an unclosed bracket), what went wrong and where."""
    parts = []
    if exc.context:
        mark = exc.context_mark
        parts.append(exc.context + (f" (at line {mark.line + 1})" if mark is not None else ""))
    if exc.problem:
        mark = exc.problem_mark
        at = f" (at line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        parts.append(exc.problem + at)
    if exc.note:
        parts.append(exc.note)
    if exc.problem and "'\\t'" in exc.problem:  # the usual way to break a YAML file
        parts.append("YAML indents with spaces, not tabs")
    return ", ".join(parts) or "cannot parse"


def _yaml_hint(value: Any, text: bool) -> str:
    """Why a YAML value has a type no setting takes, when YAML's reading of an unquoted word
    is the likely cause (`model: yes` is a boolean, `api_key:` is null, a date is a date, and
    where `text` is expected, `model: 3.10` is the number 3.1)."""
    odd = _coerced(value, 3, text)
    if odd is _NONE_FOUND:
        return ""
    if isinstance(odd, int | float) and not isinstance(odd, bool):
        return " (YAML reads an unquoted number as a number: put it in quotes to keep it text)"
    if isinstance(odd, bool):
        return (
            " (YAML reads an unquoted yes, no, on, off, true or false as a boolean: "
            "put it in quotes to keep it text)"
        )
    if odd is None:
        return " (YAML reads an empty value or ~ as null: give a value, or leave the key out)"
    return " (YAML reads an unquoted date as a date: put it in quotes to keep it text)"


def _no_hint(value: Any, text: bool) -> str:
    return ""


_TOML_WORDS = _Words(
    top="expected default_profile and [profiles.NAME] tables",
    profiles="a table of [profiles.NAME] tables",
    profile="a table",
    hint=_no_hint,
)
_YAML_WORDS = _Words(
    top=(
        "the top level holds default_profile and profiles; "
        "a profile's settings go under profiles: NAME:"
    ),
    profiles="a mapping of profile names to settings",
    profile="a mapping of settings",
    hint=_yaml_hint,
)
_EMPTY_PROFILE = " (YAML reads an empty value as null: write {} for no settings)"


_NONE_FOUND = object()


def _coerced(value: Any, depth: int, numbers: bool) -> Any:
    """The first boolean, null or date in `value` (its keys too; numbers too if `numbers`),
    else `_NONE_FOUND`."""
    if value is None or isinstance(value, bool | datetime.date):
        return value
    if numbers and isinstance(value, int | float):
        return value
    if depth > 0 and isinstance(value, dict | list):
        items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
        for item in items:
            found = _coerced(item, depth - 1, numbers)
            if found is not _NONE_FOUND:
                return found
    return _NONE_FOUND


def _shown(value: Any) -> str:
    """A value of the wrong shape, named briefly (a whole list of profiles is no help)."""
    if isinstance(value, list | tuple | set):
        return f"a {type(value).__name__}"
    return repr(value)


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
