"""Imports run one way, for every folder: a module imports its own folder and the folders below it only.

From the top: the command line; the servers and the lmms-eval model; the graphs and the Python API;
the synthetic data and the viewer over evals; evals; the agent; VET; the perception call and what it
reads; the model backends; images; files; the tiny test models. `scripts/` sits above everything and
never imports `tests/`.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

LAYERS = [  # top to bottom; folders on one line are peers and do not import each other
    ["graphs/cli"],
    ["graphs/server", "graphs/lmms"],
    ["graphs"],
    ["evals/synthetic", "evals/viewer"],
    ["evals"],
    ["agent"],
    ["tools/vet"],
    ["tools"],
    ["tools/backends"],
    ["tools/images"],
    ["tools/files"],
    ["tools/tiny"],
]
RANK = {folder: rank for rank, peers in enumerate(LAYERS) for folder in peers}
PACKAGES = ("agent", "tools", "graphs", "evals")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)  # `from graphs import eval`
    return names


def folder_of(module: str) -> str | None:
    """The layer folder a dotted module (or a name inside one) lives in: its deepest listed folder."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        candidate = "/".join(parts[:end])
        if candidate in RANK and ((ROOT / candidate).is_dir()):
            return candidate
    return None


def source_files() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def test_every_folder_has_a_layer():
    folders = {str(p.parent.relative_to(ROOT)) for p in source_files()}
    assert folders == set(RANK), f"unlisted: {sorted(folders - set(RANK))}; gone: {sorted(set(RANK) - folders)}"


def test_imports_go_down_only():
    problems = []
    for path in source_files():
        own = str(path.parent.relative_to(ROOT))
        for module in sorted(imported_modules(path)):
            target = folder_of(module)
            if target is None or target == own:
                continue
            if RANK[target] <= RANK[own]:
                problems.append(f"{path.relative_to(ROOT)} ({own}) imports {module} ({target})")
    assert not problems, "\n".join(problems)


def test_scripts_do_not_import_tests():
    for path in sorted((ROOT / "scripts").glob("*.py")):
        tests = {m for m in imported_modules(path) if m.split(".")[0] == "tests"}
        assert not tests, f"{path.name} imports {sorted(tests)}"


def test_the_rule_can_fail():
    """The check itself sees an upward import (an evals module naming graphs.api)."""
    assert folder_of("graphs.api") == "graphs" and RANK["graphs"] < RANK["evals"]
    assert folder_of("graphs.cli.app") == "graphs/cli" and folder_of("tools.backends.base") == "tools/backends"
