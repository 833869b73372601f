"""`xthink view --db FILE --thread NAME`: a real conversation on tiny models kept in SQLite, read back from its
checkpoints, rendered, and opened in headless Chromium (as tests/test_viewer.py).

Checked: the turns read back are the turns `chat` returned; every turn's question, reply, steps and zoom boxes
show; the conversation's images are embedded from the image store and listed, and nothing else is (a file
outside the store, a store file whose bytes do not match its name); refused and paused turns are shown as
such; hostile text stays text; bad databases and names fail in one line with exit 2.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from graphs.cli.app import app
from tests.test_viewer import Page, browser  # noqa: F401 - the browser fixture

HOSTILE = ("<!-- a comment <script>window.pwned = 1</script> and on --> </script><script>window.pwned = 2</script>"
           "<img src=x onerror=\"window.pwned = 3\"> & &amp; \u2028 line")


@dataclass
class Conversation:
    db: Path
    store: Path
    demo: list  # the ChatTurns of thread "demo", as chat returned them
    odd: list  # thread "odd": a refused input, then a turn paused before its extraction
    hostile: object  # thread "hostile": one turn whose question and reply are hostile text


@pytest.fixture(scope="module")
def conversation(tiny, image_path, second_image, tmp_path_factory) -> Conversation:
    from graphs.api import AskOptions, ExtractThink
    from graphs.conversation import sqlite_checkpointer
    from tools.tiny.forced import Script, think, tool_call
    from tools.backends.hf_reasoner import TransformersReasoner

    root = tmp_path_factory.mktemp("threads")
    fast = AskOptions(greedy=True, perceiver_max_new_tokens=6, max_extractions=2)
    script = Script(think("The square is on the left.") + tool_call("the colour of the square", region=[0, 0, 0.5, 1]),
                    "Answer: red", tool_call("the new image's colour", image="image_2", region=[0.2, 0.2, 0.8, 0.8]),
                    "Answer: blue", tool_call("the colour"), f"{HOSTILE}\nAnswer: A")  # fmt: skip
    with pytest.MonkeyPatch.context() as env:
        env.setenv("XTHINK_IMAGE_STORE", str(root / "store"))
        agent = ExtractThink(reasoner=TransformersReasoner(str(tiny.reasoner), extra_logits_processors=script),
                             perceiver=str(tiny.perceivers["llava_onevision"]), device="cpu",
                             checkpointer=sqlite_checkpointer(root / "chats.sqlite"))  # fmt: skip
        demo = [agent.chat("What colour is the square?", [image_path], thread_id="demo", settings=fast),
                agent.chat("And this one?", [second_image], thread_id="demo", settings=fast)]
        odd = [agent.chat("", [image_path], thread_id="odd", settings=fast),
               agent.chat("What colour?", [image_path], thread_id="odd", settings=fast, interrupt_before_extract=True)]
        hostile = agent.chat(HOSTILE, [image_path], thread_id="hostile", settings=fast)
    assert not script.texts and odd[0].error and odd[1].interrupt and demo[1].result.extraction_calls == 1
    return Conversation(root / "chats.sqlite", root / "store", demo, odd, hostile)


def view(conversation: Conversation, *args: str, store: Path | None = None):
    env = {"XTHINK_IMAGE_STORE": str(store or conversation.store), "HF_HUB_OFFLINE": "1"}
    return CliRunner().invoke(app, ["view", *args], env=env)


def page_for(browser, conversation, thread: str, out: Path, store: Path | None = None) -> Page:  # noqa: F811
    done = view(conversation, "--db", str(conversation.db), "--thread", thread, "-o", str(out), store=store)
    assert done.exit_code == 0, done.output
    return Page(browser, out)


def test_turns_read_back_are_the_turns_chat_returned(conversation):
    from graphs.conversation import open_checkpointer
    from graphs.threads import read_thread, thread_ids

    checkpointer = open_checkpointer(conversation.db)
    assert thread_ids(checkpointer) == ["demo", "hostile", "odd"]
    turns = read_thread(checkpointer, "demo")
    assert [t.question for t in turns] == ["What colour is the square?", "And this one?"]
    assert [t.reply for t in turns] == [c.reply for c in conversation.demo]
    assert [t.result for t in turns] == [c.result for c in conversation.demo], "every turn's Result, not the last"
    assert [t.status for t in turns] == ["ok", "ok"]
    odd = read_thread(checkpointer, "odd")
    assert [t.status for t in odd] == ["error", "unfinished"] and odd[0].error == conversation.odd[0].error
    assert odd[1].question == "What colour?" and odd[1].result is None


def test_thread_page_shows_every_turn_its_trace_and_boxes(browser, conversation, tmp_path):  # noqa: F811
    page = page_for(browser, conversation, "demo", tmp_path / "thread.html")
    p = page.page
    turns = p.locator("section.turn")
    assert turns.count() == 2
    for n, chat in enumerate(conversation.demo):
        turn = turns.nth(n)
        assert turn.locator(".question").text_content() == ["What colour is the square?", "And this one?"][n]
        assert turn.locator(".reply pre").text_content() == chat.reply
        assert turn.locator("ol.timeline > li").count() == len(chat.result.steps)
        regions = [i + 1 for i, s in enumerate(chat.result.steps) if s.kind == "extract" and s.region]
        labels = turn.locator("svg rect.box").evaluate_all("rs => rs.map(r => Number(r.dataset.step))")
        assert labels == regions and regions, "one box per zoom, numbered as the timeline"
        assert turn.locator(".crops canvas").count() == len(regions)
    figures = turns.nth(1).locator(".figure img")
    assert figures.count() == 2, "the second turn shows both images of the conversation"
    assert all(src.startswith("data:image/jpeg;base64,") for src in figures.evaluate_all("is => is.map(i => i.src)"))
    stored = [str(Path(i.path).resolve()) for i in conversation.demo[1].result.images]
    assert p.inner_text("header .embedded") == "Images embedded from: " + ", ".join(stored)
    assert all(Path(s).parent == conversation.store.resolve() for s in stored)
    p.screenshot(path=str(tmp_path / "thread.png"), full_page=True)
    page.check_offline()
    page.close()


def test_images_only_from_the_image_store_with_matching_bytes(browser, conversation, tmp_path):  # noqa: F811
    page = page_for(browser, conversation, "demo", tmp_path / "elsewhere.html", store=tmp_path / "other_store")
    assert page.page.locator(".figure img").count() == 0
    assert page.page.inner_text("header .embedded") == "No image files embedded."
    assert "not in the image store" in page.page.locator(".not-embedded").first.inner_text()
    notes = page.page.locator("#items > p.small").all_inner_texts()
    assert len(notes) == 2 and all("not in the image store" in n for n in notes), "one note per image, not per turn"
    page.close()
    tampered = tmp_path / "store"
    shutil.copytree(conversation.store, tampered)
    first = Path(conversation.demo[0].result.images[0].path).name
    (tampered / first).write_bytes((tampered / first).read_bytes() + b"\0")
    from evals.viewer.data import ThreadTurn, thread_page

    result = conversation.demo[1].result
    moved = result.model_copy(update={"images": [i.model_copy(update={"path": str(tampered / Path(i.path).name)})
                                                 for i in result.images]})  # fmt: skip
    data = thread_page("t", [ThreadTurn("q", "r", moved)], tampered)
    reasons = [i["not_embedded"] for i in data.items[0]["images"]]
    assert reasons[0] == "its bytes do not match its name in the image store" and reasons[1] is None
    assert data.embedded == [str((tampered / Path(result.images[1].path).name).resolve())]
    secret = result.model_copy(update={"images": [result.images[0].model_copy(update={"path": "/etc/passwd"})]})
    data = thread_page("t", [ThreadTurn("q", "r", secret)], conversation.store)
    assert data.images == {} and data.items[0]["images"][0]["not_embedded"] == "not an image store file"


def test_refused_and_paused_turns_are_marked(browser, conversation, tmp_path):  # noqa: F811
    page = page_for(browser, conversation, "odd", tmp_path / "odd.html")
    turns = page.page.locator("section.turn")
    assert turns.count() == 2
    assert turns.nth(0).locator(".pill.bad").inner_text() == "input refused"
    assert turns.nth(0).locator(".refused").inner_text() == "error: " + conversation.odd[0].error
    assert turns.nth(1).locator(".pill.warn").inner_text().startswith("unfinished")
    assert turns.nth(1).locator(".question").inner_text() == "What colour?"
    page.check_offline()
    page.close()


def test_hostile_question_and_reply_stay_text(browser, conversation, tmp_path):  # noqa: F811
    page = page_for(browser, conversation, "hostile", tmp_path / "hostile.html")
    turn = page.page.locator("section.turn")
    assert turn.locator(".question").text_content() == HOSTILE
    reply = conversation.hostile.reply
    assert turn.locator(".reply pre").text_content() == reply and HOSTILE in reply
    assert page.page.evaluate("window.pwned") is None, "no script from the database ran"
    assert page.page.locator("section.turn img[src=x]").count() == 0
    page.check_offline()
    page.close()


def test_bad_databases_and_names_fail_in_one_line(conversation, tmp_path):
    not_ours = tmp_path / "other.sqlite"
    with sqlite3.connect(not_ours) as conn:
        conn.execute("CREATE TABLE notes (x TEXT)")
    before = hashlib.sha256(not_ours.read_bytes()).hexdigest()
    out = ["-o", str(tmp_path / "v.html")]
    db = str(conversation.db)
    cases = [
        (["--db", str(tmp_path / "missing.sqlite"), "--thread", "demo", *out], "no database file"),
        (["--db", str(Path(__file__)), "--thread", "demo", *out], "is not a SQLite database"),
        (["--db", str(not_ours), "--thread", "demo", *out], "holds no conversations"),
        (["--db", db, "--thread", "nope", *out], "no thread 'nope'; its threads: demo, hostile, odd"),
        (["--db", db, *out], "pass --thread NAME; " + f"'{db}': its threads: demo, hostile, odd"),
        (["--thread", "demo", *out], "--thread needs --db"),
        (["--db", db, "--thread", "demo"], "pass -o"),
        (["--db", db, "--thread", "demo", str(tmp_path), *out], "not both"),
    ]  # fmt: skip
    for args, message in cases:
        failed = view(conversation, *args)
        assert failed.exit_code == 2, (args, failed.output)
        assert message in failed.output and failed.output.strip().count("\n") == 0, failed.output
        assert "Traceback" not in failed.output
    assert not (tmp_path / "missing.sqlite").exists(), "viewing never creates a database"
    assert hashlib.sha256(not_ours.read_bytes()).hexdigest() == before, "a database not ours is left unchanged"
    assert not (tmp_path / "v.html").exists()
