"""`xthink view`: one self-contained HTML page for an answer, a conversation, a run, or runs side by side.

The page is the template in `assets/` with its CSS, script and data inlined; a Content Security
Policy forbids every network request, so what a reader sees is exactly what was written.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from evals.report import Report
from evals.viewer.data import PageData, ThreadTurn, load_page, thread_page


# Inside <script>, the HTML parser looks for `</script` and also for `<!--` ... `<script`, which turns a
# later `</script>` into text and swallows the rest of the page. JSON may spell any character of a string
# as \uXXXX, so no `<`, `>` or `&` ever reaches the parser; U+2028/2029 are escaped for old JS parsers.
_SCRIPT_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def script_safe(json_text: str) -> str:
    """JSON text that reads back the same and cannot end, or change the parsing of, its <script> element."""
    return json_text.translate(str.maketrans(_SCRIPT_ESCAPES))


def render(page: PageData) -> str:
    assets = resources.files("evals.viewer") / "assets"
    html = (assets / "page.html").read_text(encoding="utf-8")
    data = script_safe(page.to_json())
    return (html.replace("/*CSS*/", (assets / "page.css").read_text(encoding="utf-8"))
            .replace("/*JS*/", (assets / "page.js").read_text(encoding="utf-8"))
            .replace("/*DATA*/", data))  # fmt: skip


def is_page(path: Path) -> bool:
    """Whether a file is a page this module wrote (its template's title sits in the first few hundred bytes)."""
    try:
        with Path(path).open("rb") as handle:
            return b"<title>extract-think</title>" in handle.read(2048)
    except OSError:
        return False


def write_page(paths: list[Path], out: Path, report: Report | None = None, plots_dir: Path | None = None) -> Path:
    """Render the page for `paths` (see evals/viewer/data.py: load_page) into `out`."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(load_page(paths, report, plots_dir)), encoding="utf-8")
    return out


def write_thread_page(title: str, turns: list[ThreadTurn], store_root: Path, out: Path) -> Path:
    """Render a conversation's turns (read from its checkpoints by graphs/threads.py) into `out`."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(thread_page(title, turns, store_root)), encoding="utf-8")
    return out
