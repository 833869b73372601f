"""The trace page in a real browser with hostile data: text stays text, no script runs, and a run's page embeds
only files inside its run folder (Chromium via Playwright, as tests/test_viewer.py)."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from tools.files.folders import safe_name
from evals.synthetic.run_folder import write_run
from evals.viewer.page import write_page
from tests.test_viewer import Page, browser  # noqa: F401 - the browser fixture

# Each would break or hijack a page that escaped only "</": an HTML comment that opens a <script> (the rest of
# the page becomes script text), script and img tags, a line separator, and a very long line.
HOSTILE = ("<!-- a comment <script>window.pwned = 1</script> and on --> </script><script>window.pwned = 2</script>"
           "<img src=x onerror=\"window.pwned = 3\"> & &amp; \u2028 line \u2029 paragraph ]]> <\\/script> "
           + "z" * 100_000)


def hostile_run(root):
    """A 3-item run whose question, options, thinking, visible text, perceiver output and error are hostile."""
    run = write_run(root, items=3, regimes=("iterative", "direct"))
    for trace in (run / "traces").rglob("*.json"):
        data = json.loads(trace.read_text())
        data["question"], data["options"] = HOSTILE, [HOSTILE[:120], "<b>bold</b>", "-->", "<!--"]
        for step in data["steps"]:
            for key in ("thinking", "text", "output"):
                if step.get(key):
                    step[key] = HOSTILE
        trace.write_text(json.dumps(data))
    lines = [json.loads(line) for line in (run / "records.jsonl").read_text().splitlines()]
    for line in lines:
        line.update(category="<!--<script>", error="</script><!--" if line["error"] else None)
    (run / "records.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return run


def open_item(page: Page):
    page.page.click("#rows tr >> nth=0")
    return page.page.inner_text("#detail .question")


def test_hostile_text_shows_as_text_and_runs_nothing(browser, tmp_path):  # noqa: F811
    page = Page(browser, write_page([hostile_run(tmp_path / "run")], tmp_path / "run.html"))
    assert len(page.ids()) == 3, "the page rendered every row"
    open_item(page)
    assert page.page.eval_on_selector("#detail .question", "q => q.textContent") == HOSTILE
    options = page.page.eval_on_selector_all("#detail .options li", "ls => ls.map(l => l.textContent)")
    assert options[1].startswith("B. <b>bold</b>") and options[3].startswith("D. <!--")
    texts = page.page.eval_on_selector_all("#detail pre", "ps => ps.map(p => p.textContent)")
    assert HOSTILE in texts, "model output is shown as text"
    assert page.page.locator("#detail b:text-is('bold')").count() == 0, "no markup from data"
    assert page.page.evaluate("window.pwned") is None, "no script from data ran"
    page.check_offline()
    page.close()


def test_answer_page_with_hostile_text_lists_its_embedded_files(browser, tmp_path):  # noqa: F811
    run = hostile_run(tmp_path / "run")
    trace = next((run / "traces" / "iterative").rglob("*.json"))
    page = Page(browser, write_page([trace], tmp_path / "answer.html"))
    assert page.page.eval_on_selector("#detail .question", "q => q.textContent") == HOSTILE
    assert page.page.evaluate("window.pwned") is None
    image = json.loads(trace.read_text())["images"][0]["path"]
    assert page.page.inner_text("header .embedded") == f"Images embedded from: {image}"
    page.check_offline()
    page.close()


@pytest.fixture()
def run_naming_outside_files(tmp_path):
    """Item 0's trace names /etc/passwd, item 1's a real image outside the run, item 2's a symlink out of it."""
    run = write_run(tmp_path / "run", items=3, regimes=("direct",))
    secret = tmp_path / "private" / "secret.png"
    secret.parent.mkdir()
    Image.new("RGB", (40, 30), (1, 2, 3)).save(secret)
    for i, target in enumerate(["/etc/passwd", str(secret), None]):
        own = next((run / "images" / "mmstar").glob(safe_name(str(i)) + ".*"))
        own.unlink()
        if target is None:  # a link inside the run folder that leads out of it
            own.symlink_to(secret)
            target = str(own)
        trace = next((run / "traces").rglob(f"{safe_name(str(i))}.json"))
        data = json.loads(trace.read_text())
        data["images"][0]["path"] = target
        trace.write_text(json.dumps(data))
    return run


def test_run_page_embeds_only_files_inside_the_run(browser, run_naming_outside_files, tmp_path):  # noqa: F811
    out = write_page([run_naming_outside_files], tmp_path / "run.html")
    html = out.read_text()
    data = json.loads(html.split('id="xthink-data">', 1)[1].split("</script>", 1)[0])
    assert data["images"] == {}, "nothing outside the run folder is embedded"
    reasons = [item["images"][0]["not_embedded"] for item in data["items"]]
    assert reasons == ["outside the run folder"] * 3
    page = Page(browser, out)
    open_item(page)
    assert "image not embedded (outside the run folder" in page.page.inner_text("#detail .imagepanel")
    page.check_offline()
    page.close()


def test_script_safe_json_reads_back_the_same_and_holds_no_markup():
    from evals.viewer.page import script_safe

    value = {"q<": HOSTILE[:300], "n": -0.5}
    text = script_safe(json.dumps(value, ensure_ascii=False))
    assert json.loads(text) == value
    assert not set(text) & {"<", ">", "&", "\u2028", "\u2029"}
