"""Page size and opening time of `xthink view` on a synthetic full-paper-size run (10,000 records).

2,500 items x 4 regimes, traces with 2,000 characters of thinking per turn and a 640x480 image per item
(evals/synthetic/run_folder.py). Prints the seconds to write the page, its size, and the seconds until headless
Chromium has parsed it and shown the first rows, then after filtering all rows and opening an item.
Run: PYTHONPATH=. python scripts/bench_viewer.py [ITEMS]
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

from evals.synthetic.run_folder import write_run
from evals.viewer.page import write_page


def main(items: int = 2500) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        run = write_run(Path(tmp) / "run", items=items, image_side=640, thinking_chars=2000)
        print(f"wrote {items * 4} records in {time.perf_counter() - started:.1f}s")
        started = time.perf_counter()
        page = write_page([run], Path(tmp) / "run.html")
        print(f"page written in {time.perf_counter() - started:.1f}s: {page.stat().st_size / 1e6:.1f} MB")
        _open(page)


def _open(page: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        tab = browser.new_page(viewport={"width": 1400, "height": 900})
        started = time.perf_counter()
        tab.goto(page.as_uri())
        tab.wait_for_selector("#rows tr")
        print(f"opened (first rows shown) in {time.perf_counter() - started:.2f}s")
        started = time.perf_counter()
        tab.select_option("#f-a", tab.eval_on_selector("#f-a option:nth-child(2)", "o => o.value"))
        tab.wait_for_selector("#rows tr")
        print(f"filter applied in {time.perf_counter() - started:.2f}s")
        started = time.perf_counter()
        tab.click("#rows tr")
        tab.wait_for_selector("#detail.open .trace")
        print(f"item opened in {time.perf_counter() - started:.2f}s")
        browser.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2500)
