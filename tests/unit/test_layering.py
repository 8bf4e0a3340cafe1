"""Layering: the pure core (riskactors/domain) imports the standard library and numpy only (no
infrastructure library), and reads no clock."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import riskactors.domain

DOMAIN = Path(riskactors.domain.__file__).resolve().parent
FORBIDDEN = {"ray", "fastapi", "starlette", "uvicorn", "msgpack", "pydantic", "pydantic_settings"}
DOMAIN_FILES = sorted(DOMAIN.rglob("*.py"))
#: the one third-party library the core may use (columnar valuation, ``domain/columnar.py``)
ALLOWED_THIRD_PARTY = {"numpy"}


def _imported_top_level_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) in {
                "import_module", "__import__"} and node.args and isinstance(node.args[0], ast.Constant):
            found.add(str(node.args[0].value).split(".")[0])
    return found


def test_domain_package_has_modules_to_check():
    names = {p.name for p in DOMAIN_FILES}
    assert {"account.py", "checks.py", "model.py", "limits.py", "marks.py"} <= names


@pytest.mark.parametrize("path", DOMAIN_FILES, ids=lambda p: p.name)
def test_domain_module_imports_no_infrastructure_library(path):
    bad = _imported_top_level_modules(path) & FORBIDDEN
    assert not bad, f"{path.name} imports {sorted(bad)}"


@pytest.mark.parametrize("path", DOMAIN_FILES, ids=lambda p: p.name)
def test_domain_module_does_not_read_the_clock(path):
    # time is an argument (``now``); time.time(), datetime.now() and friends are not used in the core
    tree = ast.parse(path.read_text(encoding="utf-8"))
    calls = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            calls.add(f"{node.value.id}.{node.attr}")
    clocks = {"time.time", "time.monotonic", "time.perf_counter", "time.time_ns", "datetime.now", "datetime.utcnow",
              "date.today"}
    assert not calls & clocks, f"{path.name} reads the clock: {sorted(calls & clocks)}"


@pytest.mark.parametrize("path", DOMAIN_FILES, ids=lambda p: p.name)
def test_domain_module_imports_only_the_standard_library_and_numpy(path):
    other = {m for m in _imported_top_level_modules(path)
             if m not in sys.stdlib_module_names and m not in ALLOWED_THIRD_PARTY and m != "riskactors"}
    assert not other, f"{path.name} imports {sorted(other)}"


def test_the_standard_library_check_detects_a_third_party_import(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import numpy as np\nimport orjson\nfrom collections import Counter\n", encoding="utf-8")
    imported = _imported_top_level_modules(probe)
    assert {m for m in imported if m not in sys.stdlib_module_names and m not in ALLOWED_THIRD_PARTY} == {"orjson"}


def test_the_layering_check_detects_a_forbidden_import(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import ray.util\nfrom fastapi import APIRouter\nfrom . import model\n", encoding="utf-8")
    assert _imported_top_level_modules(probe) & FORBIDDEN == {"ray", "fastapi"}


def _domain_imports(path: Path) -> set[str]:
    """Modules of ``riskactors.domain`` that ``path`` imports anywhere in it: at the top, in a
    function, or under ``TYPE_CHECKING`` (a type-only import is still a dependency)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                if node.module:
                    found.add(node.module.split(".")[0])
                else:
                    found.update(alias.name for alias in node.names)
            elif node.level == 0 and node.module and node.module.startswith("riskactors.domain."):
                found.add(node.module.split(".")[2])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[2] for a in node.names if a.name.startswith("riskactors.domain."))
    return found - {"__init__"}


def _import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every elementary cycle's first sighting (depth-first), as the list of modules on it."""
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


def test_the_domain_has_no_import_circle():
    graph = {p.stem: _domain_imports(p) for p in DOMAIN_FILES if p.stem != "__init__"}
    assert {"account", "checks", "rules", "challenge", "valuation"} <= set(graph)
    assert _import_cycles(graph) == []


def test_the_circle_check_finds_a_circle_through_a_type_only_import(tmp_path):
    a = tmp_path / "a.py"
    b = tmp_path / "b.py"
    a.write_text("from .b import thing\n", encoding="utf-8")
    b.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import other\n", encoding="utf-8")
    graph = {"a": _domain_imports(a), "b": _domain_imports(b)}
    assert _import_cycles(graph) == [["a", "b", "a"]]
