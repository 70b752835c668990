"""The docs say what the code does: the table reference is generated from the declarations, and
every Sphinx-style reference in a docstring (``:func:`x```, ``:class:``, ``:meth:``, ``:mod:``,
``:data:``, ``:attr:``, ``:exc:``) names something that exists."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from types import ModuleType

import pytest

from schemas.__main__ import tables_markdown

ROOT = Path(__file__).resolve().parents[2]
REF = re.compile(r":(?:func|class|meth|mod|data|attr|exc):`~?([\w.]+)`")
PACKAGES = ("adspark", "schemas", "jobs", "benchmarks")


def test_the_table_reference_is_current():
    assert (ROOT / "docs" / "tables.md").read_text(encoding="utf-8") == tables_markdown(), (
        "docs/tables.md is stale: run `.venv/bin/python -m schemas`")


def _modules() -> list[tuple[str, Path]]:
    out = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            out.append((".".join(parts), path))
    return out


def _follow(obj: object, names: list[str]) -> bool:
    for name in names:
        if not hasattr(obj, name):
            return False
        obj = getattr(obj, name)
    return True


def _resolves(name: str, module: ModuleType) -> bool:
    parts = name.split(".")
    if _follow(module, parts):  # relative to the module: its own names and imports
        return True
    if any(isinstance(v, type) and _follow(v, parts) for v in vars(module).values()):  # a class's own
        return True
    for i in range(len(parts), 0, -1):  # absolute: the longest importable prefix, then attributes
        try:
            found = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        return _follow(found, parts[i:])
    return False


@pytest.mark.parametrize("package", PACKAGES)
def test_every_docstring_reference_resolves(package):
    broken = []
    for dotted, path in _modules():
        if dotted.split(".")[0] != package or dotted.endswith("__main__"):
            continue
        refs = REF.findall(path.read_text(encoding="utf-8"))
        if not refs:
            continue
        module = importlib.import_module(dotted)
        broken += [f"{path.relative_to(ROOT)}: {ref}" for ref in refs if not _resolves(ref, module)]
    assert not broken, "docstring references to nothing:\n" + "\n".join(broken)


def test_every_relative_link_in_the_docs_points_at_a_file():
    broken = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if "://" not in target and not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert not broken, "links to nothing:\n" + "\n".join(broken)
