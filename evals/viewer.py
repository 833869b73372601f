"""`xthink view`: one self-contained HTML page for an answer, a run, or runs side by side.

The page is the template in `viewer_assets/` with its CSS, script and data inlined; a Content Security
Policy forbids every network request, so what a reader sees is exactly what was written.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from evals.report import Report
from evals.viewer_data import PageData, load_page


def render(page: PageData) -> str:
    assets = resources.files("evals") / "viewer_assets"
    html = (assets / "page.html").read_text(encoding="utf-8")
    data = page.to_json().replace("</", "<\\/")  # the JSON cannot close its <script> element
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
    """Render the page for `paths` (see viewer_data.load_page) into `out`."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(load_page(paths, report, plots_dir)), encoding="utf-8")
    return out
