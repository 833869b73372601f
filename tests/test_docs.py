"""What README.md and docs/*.md point at exists: repository paths, Python modules, links and their anchors, and
docs/layout.md names every folder and module. Files move; the pages must move with them."""

from __future__ import annotations

import ast
import re
from glob import glob
from pathlib import Path

from tests.doc_pages import PAGES, ROOT, command_blocks, prose
from tests.test_layering import LAYERS, PACKAGES, source_files

TOP = (*PACKAGES, "tests", "scripts", "docs", ".ci")  # the repository's own folders; `./runs/...` is the reader's
# A repository path starts at one of them, not inside a longer path (`shared/docs/...` is not ours).
PATH = re.compile(rf"(?<![\w./~$-])((?:{'|'.join(map(re.escape, TOP))})/[\w./*-]*)")
MODULE = re.compile(rf"(?<![\w./-])((?:{'|'.join(PACKAGES)})(?:\.\w+)+)")
# In code, only what is imported or run names a module: `agent.chat(...)` there is a variable.
CODE_MODULE = re.compile(rf"(?:\bfrom|\bimport|-m) ((?:{'|'.join(PACKAGES)})(?:\.\w+)*)")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def path_mentions() -> list[tuple[str, str]]:
    return [(page.name, m.group(1).rstrip(".")) for page in PAGES for m in PATH.finditer(page.read_text())]


def module_mentions() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        code = "\n".join(b.text for b in command_blocks() if b.page == page)
        found += [(page.name, m.group(1)) for m in MODULE.finditer(prose(page))]
        found += [(page.name, m.group(1)) for m in CODE_MODULE.finditer(code)]
    return found


def test_every_repository_path_exists():
    missing = [(page, path) for page, path in path_mentions() if not glob(str(ROOT / path))]
    assert not missing, f"paths named in the docs that are not in the repository: {missing}"


def top_level_names(module: Path) -> set[str]:
    tree = ast.parse(module.read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def resolves(dotted: str) -> bool:
    """`graphs.api` or `tools.backends.options.EngineOptions`: a module, or one name defined in a module."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        base = ROOT.joinpath(*parts[:end])
        module = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
        if module.exists():
            rest = parts[end:]
            return not rest or (len(rest) == 1 and rest[0] in top_level_names(module))
    return False


def test_every_python_module_named_exists():
    missing = [(page, name) for page, name in module_mentions() if not resolves(name)]
    assert not missing, f"modules or names in the docs that do not exist: {missing}"


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {slug(h) for h in re.findall(r"^#+ (.*)$", prose(page), flags=re.MULTILINE)}


def test_every_relative_link_resolves():
    broken = []
    for page in PAGES:
        for target in LINK.findall(prose(page)):
            if re.match(r"[a-z]+:", target):
                continue  # http(s), mailto: not ours to check offline
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists():
                broken.append((page.name, target, "no such file"))
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                broken.append((page.name, target, "no such heading"))
    assert not broken, broken


def test_every_page_is_linked_from_the_readme():
    readme = prose(ROOT / "README.md")
    unlinked = [p.name for p in PAGES[1:] if f"](docs/{p.name})" not in readme]
    assert not unlinked, f"pages the README does not link: {unlinked}"


def test_the_layout_page_names_every_folder_and_module():
    layout = (ROOT / "docs" / "layout.md").read_text()
    folders = [folder for peers in LAYERS for folder in peers]
    assert [f for f in folders if f"`{f}/`" not in layout] == [], "a layer folder without its section"
    modules = [str(p.relative_to(ROOT)) for p in source_files() if p.name != "__init__.py"]
    assert [m for m in modules if f"`{m}`" not in layout] == [], "a module docs/layout.md does not name"


def test_the_checks_can_fail():
    assert not resolves("graphs.no_such_module") and not resolves("graphs.api.NoSuchName")
    assert resolves("graphs.api.ExtractThink") and resolves("tools.backends")
    assert PATH.findall("see `tools/backends/nope.py` and shared/docs/method.md") == ["tools/backends/nope.py"]
    assert slug("Deploying: `xthink serve` and LangGraph Server") == "deploying-xthink-serve-and-langgraph-server"
