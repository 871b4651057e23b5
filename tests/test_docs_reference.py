"""The API reference (docs/reference/*.md, rendered by mkdocstrings) documents every public name:
a new export in `llmrelay.__all__` without an entry there fails here, not silently on the site.
`mkdocs build --strict` in CI then checks that every entry resolves and renders."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
import yaml

import llmrelay

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "reference"
DIRECTIVE = re.compile(r"^:::\s+(?P<target>[\w.]+)\s*$", re.MULTILINE)


def directives() -> dict[str, Path]:
    """{dotted target of a `::: target` line: the page it is on}."""
    return {
        match["target"]: page
        for page in sorted(REFERENCE.glob("*.md"))
        for match in DIRECTIVE.finditer(page.read_text(encoding="utf-8"))
    }


def resolve(target: str) -> object:
    """The object a mkdocstrings target names (a module, or an attribute of one)."""
    module_name, _, attribute = target.rpartition(".")
    try:
        return importlib.import_module(target)
    except ImportError:
        return getattr(importlib.import_module(module_name), attribute)


def test_every_public_name_has_a_reference_entry() -> None:
    targets = directives()
    documented = {t.removeprefix("llmrelay.") for t in targets if t.count(".") == 1}
    # An entry under another path (`llmrelay._sync.Client`) counts when it is the same object.
    same_objects = {id(resolve(t)) for t in targets if t.count(".") != 1}
    missing = [
        name
        for name in llmrelay.__all__
        if name not in documented and id(getattr(llmrelay, name)) not in same_objects
    ]
    assert not missing, f"add `::: llmrelay.NAME` to a page of docs/reference/ for: {missing}"


@pytest.mark.parametrize("target", sorted(directives()))
def test_every_reference_entry_names_a_real_object(target: str) -> None:
    resolve(target)


def _nav_pages(node: object) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [page for item in node for page in _nav_pages(item)]
    if isinstance(node, dict):
        return [page for value in node.values() for page in _nav_pages(value)]
    return []


def test_the_nav_names_only_pages_that_exist() -> None:
    # mkdocs.yml uses no custom YAML tags, so the safe loader reads it.
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    pages = _nav_pages(config["nav"])
    assert "reference/index.md" in pages
    missing = [page for page in pages if not (ROOT / "docs" / page).is_file()]
    assert not missing, missing
    reference_pages = {f"reference/{p.name}" for p in REFERENCE.glob("*.md")}
    assert reference_pages <= set(pages), reference_pages - set(pages)
