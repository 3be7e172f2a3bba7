"""Imports flow one way: ingest <- retrieval <- app <- ui, with no cycle between modules.

Every import counts, the ones inside functions too: a lazy import that hides a cycle is still one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.helpers import REPO

# Lowest first: a module may import its own package and the ones before it, never one after.
LAYERS = ("ingest", "retrieval", "app", "ui")
# Outside the layers, each with the highest package it may use.
USERS = {"training": "retrieval"}


def modules() -> dict[str, Path]:
    """Every module of the layered packages and their users, by dotted name."""
    found = {}
    for package in (*LAYERS, *USERS):
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imported(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules `name` imports anywhere in its file (a package when no module matches)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                targets.add(submodule if submodule in known else base)
    return {target for target in targets if target.split(".")[0] in (*LAYERS, *USERS)}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imported(name, path, known) for name, path in known.items()}


def test_every_layered_package_is_found():
    names = modules()
    for package in LAYERS:
        assert package in names, f"{package}/__init__.py is missing"
    assert "app.service" in names and "ingest.sentences" in names


def test_no_module_imports_a_higher_package():
    rank = {package: i for i, package in enumerate(LAYERS)}
    wrong = []
    for name, targets in graph().items():
        top = name.split(".")[0]
        highest = rank[USERS.get(top, top)]
        wrong += [f"{name} imports {target}" for target in sorted(targets) if rank.get(target.split(".")[0], -1) > highest]
        if top in USERS:
            wrong += [f"{name} imports {target}" for target in sorted(targets) if target.split(".")[0] not in (top, *LAYERS)]
    assert wrong == []


def test_no_import_cycle_between_modules():
    edges = graph()
    cycles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        path.append(name)
        for target in sorted(edges.get(name, ())):
            if target == name or target not in edges:
                continue
            if state.get(target) == 1:
                cycles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target)
        path.pop()
        state[name] = 2

    for name in sorted(edges):
        if name not in state:
            visit(name)
    assert cycles == []


@pytest.mark.parametrize("package", LAYERS)
def test_each_package_says_what_it_holds(package):
    docstring = ast.get_docstring(ast.parse((REPO / package / "__init__.py").read_text(encoding="utf-8")))
    assert docstring, f"{package}/__init__.py has no docstring"
