"""The trace pages in a real browser (Debian's headless Chromium, driven by Playwright) opened from file://.

Checked: no console error and no network request; one box per region extraction; the filters select
exactly the items the synthetic run's pattern says; two runs show their flips; keyboard navigation;
a screenshot of each view under the test's temp folder.
"""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from evals.synthetic.run_folder import correct, write_run
from evals.viewer.page import write_page
from graphs.cli.app import app

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert CHROMIUM, "Chromium is needed for the viewer tests: apt-get install chromium (.ci/run installs it)"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


class Page:
    """A page opened from file:// that records console errors and every request it makes."""

    def __init__(self, browser, path):
        self.page = browser.new_page(viewport={"width": 1400, "height": 900})
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(path.resolve().as_uri())

    def check_offline(self):
        assert self.errors == []
        assert [u for u in self.requests if not u.startswith(("file://", "data:"))] == []

    def ids(self) -> list[str]:
        return self.page.eval_on_selector_all("#rows tr", "rows => rows.map(r => r.dataset.key.split('/')[1])")

    def close(self):
        self.page.close()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return write_run(root / "run_a", items=24), write_run(root / "run_b", items=24, flip=1)


def test_answer_page_boxes_match_the_region_extractions(browser, tiny, tmp_path):
    from graphs.api import AskOptions, ExtractThink
    from tools.tiny.forced import Script, think, tool_call
    from tools.backends.hf_reasoner import TransformersReasoner

    from PIL import Image, ImageDraw

    image = tmp_path / "scene.png"
    img = Image.new("RGB", (640, 480), "white")
    ImageDraw.Draw(img).rectangle((400, 40, 500, 200), fill="red")
    img.save(image)
    script = Script(think("Look at the right.") + tool_call("the right half", region=[0.5, 0, 1, 1]),
                    tool_call("the top of that", image="crop_1", region=[0, 0, 1, 0.5]),
                    tool_call("the whole image"), "Answer: A")
    agent = ExtractThink(reasoner=TransformersReasoner(str(tiny.reasoner), extra_logits_processors=script),
                         perceiver=str(tiny.perceivers["llava_onevision"]), device="cpu")
    result = agent.ask("Colour?", [image], ["red", "blue"], settings=AskOptions(greedy=True, perceiver_max_new_tokens=6))
    trace = tmp_path / "trace.json"
    trace.write_text(result.model_dump_json())
    page = Page(browser, write_page([trace], tmp_path / "answer.html"))
    regions = [s for s in result.steps if s.kind == "extract" and s.region]
    assert len(regions) == 2
    assert page.page.locator("svg rect.box").count() == len(regions)
    assert page.page.locator(".crops canvas").count() == len(regions)
    assert page.page.locator("ol.timeline > li").count() == len(result.steps)
    labels = page.page.eval_on_selector_all("svg rect.box", "rs => rs.map(r => Number(r.dataset.step))")
    assert labels == [i + 1 for i, s in enumerate(result.steps) if s in regions], "box numbers match the timeline"
    page.page.screenshot(path=str(tmp_path / "answer.png"), full_page=True)
    page.check_offline()


def test_run_page_filters_select_exactly_the_expected_items(browser, runs, tmp_path):
    page = Page(browser, write_page([runs[0]], tmp_path / "run.html"))
    p = page.page
    assert len(page.ids()) == 24
    p.select_option("#f-a", "run_a|iterative")
    p.select_option("#f-b", "run_a|extract")
    expected = [str(i) for i in range(24) if correct("iterative", i) and not correct("extract", i)]
    assert page.ids() == expected and expected
    p.select_option("#f-rel", "wr")
    assert page.ids() == [str(i) for i in range(24) if not correct("iterative", i) and correct("extract", i)]
    p.select_option("#f-a", "")
    p.select_option("#f-b", "")
    p.check("#f-toolerr")
    assert page.ids() == [str(i) for i in range(24) if i % 7 == 3]
    p.uncheck("#f-toolerr")
    p.check("#f-failed")
    assert page.ids() == [str(i) for i in range(24) if i % 11 == 10]
    p.uncheck("#f-failed")
    p.fill("#f-text", "question number 13:")
    assert page.ids() == ["13"]
    p.fill("#f-text", "")
    p.screenshot(path=str(tmp_path / "run_items.png"))
    p.click("#tab-summary")
    assert p.locator("#summary table").count() >= 3 and p.locator("#summary .plots img").count() == 2
    p.screenshot(path=str(tmp_path / "run_summary.png"), full_page=True)
    page.check_offline()


def test_keyboard_moves_between_items(browser, runs, tmp_path):
    page = Page(browser, write_page([runs[0]], tmp_path / "run.html"))
    p = page.page
    p.keyboard.press("ArrowDown")
    p.keyboard.press("ArrowDown")
    assert p.eval_on_selector("#rows tr.selected", "r => r.dataset.n") == "1"
    p.keyboard.press("Enter")
    assert "mmstar · 1" in p.inner_text("#detail h2")
    assert p.locator("#detail .trace").count() == 4, "every regime's trace side by side"
    p.keyboard.press("j")
    assert "mmstar · 2" in p.inner_text("#detail h2")
    p.screenshot(path=str(tmp_path / "item.png"))
    p.keyboard.press("Escape")
    assert not p.locator("#detail.open").count()
    page.check_offline()


def test_two_runs_show_their_flips(browser, runs, tmp_path):
    page = Page(browser, write_page(list(runs), tmp_path / "compare.html"))
    p = page.page
    p.select_option("#f-a", "run_a|iterative")
    p.select_option("#f-b", "run_b|iterative")
    flips = [str(i) for i in range(24) if correct("iterative", i) and not correct("iterative", i, flip=1)]
    assert page.ids() == flips and flips
    p.screenshot(path=str(tmp_path / "compare.png"))
    page.check_offline()


def test_report_writes_index_html_and_view_cli_errors(runs, tmp_path):
    runner = CliRunner()
    out = tmp_path / "report"
    result = runner.invoke(app, ["report", str(runs[0]), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "index.html").exists() and (out / "trace_index.csv").exists()
    html = (out / "index.html").read_text()
    data = json.loads(html.split('id="xthink-data">', 1)[1].split("</script>", 1)[0])
    assert data["mode"] == "run" and len(data["items"]) == 24
    for args, message in [([str(tmp_path / "missing")], "does not exist"),
                          ([str(tmp_path)], "not a run folder"),
                          ([str(runs[0]), "-o", str(tmp_path)], "is a folder")]:
        args = args if "-o" in args else [*args, "-o", str(tmp_path / "v.html")]
        failed = runner.invoke(app, ["view", *args])
        assert failed.exit_code == 2 and message in failed.output and "Traceback" not in failed.output
    ok = runner.invoke(app, ["view", str(runs[0]), str(runs[1]), "-o", str(tmp_path / "cmp.html")])
    assert ok.exit_code == 0 and (tmp_path / "cmp.html").stat().st_size > 0
