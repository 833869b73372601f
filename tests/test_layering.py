"""Imports run one way: graphs -> agent -> tools. The backends never import the agent."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_backends_do_not_import_agent_or_graphs():
    for path in sorted((ROOT / "tools" / "backends").glob("*.py")):
        upward = {m for m in imported_modules(path) if m.split(".")[0] in ("agent", "graphs", "evals")}
        assert not upward, f"{path.name} imports {sorted(upward)}"


def test_agent_does_not_import_graphs_or_evals():
    for path in sorted((ROOT / "agent").glob("*.py")):
        upward = {m for m in imported_modules(path) if m.split(".")[0] in ("graphs", "evals")}
        assert not upward, f"{path.name} imports {sorted(upward)}"
