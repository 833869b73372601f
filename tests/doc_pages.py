"""The documentation pages (README.md and docs/*.md) and their fenced blocks, for the tests that keep them true."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COMMAND_LANGS = ("bash", "sh", "python")  # fences a reader would paste into a shell or an interpreter
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", flags=re.DOTALL | re.MULTILINE)


@dataclass(frozen=True)
class Block:
    page: Path
    lang: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}: {self.text.splitlines()[0][:80]}"


def command_blocks() -> list[Block]:
    return [Block(page, m.group(1), m.group(2)) for page in PAGES for m in FENCE.finditer(page.read_text())
            if m.group(1) in COMMAND_LANGS]


def prose(page: Path) -> str:
    """A page without its fenced blocks: where links are written."""
    return FENCE.sub("", page.read_text())
