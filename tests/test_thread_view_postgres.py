"""`xthink view --db postgresql://... --thread NAME`: a conversation kept in a real PostgreSQL server (started by
tests/test_postgres_threads.py's `pg` fixture) is viewed like a SQLite one; a database that refuses the login
is one line, exit 3, with no password in it."""

from __future__ import annotations

from typer.testing import CliRunner

from graphs.cli.app import app
from tests.test_postgres_threads import pg  # noqa: F401 - the PostgreSQL server fixture
from tests.test_viewer import Page, browser  # noqa: F401 - the browser fixture


def test_a_postgres_thread_is_viewed_like_a_sqlite_one(pg, browser, tiny, image_path, tmp_path, monkeypatch):  # noqa: F811
    from graphs.api import AskOptions, ExtractThink
    from graphs.conversation import open_checkpointer
    from tools.tiny.forced import Script, tool_call
    from tools.backends.hf_reasoner import TransformersReasoner

    monkeypatch.setenv("XTHINK_IMAGE_STORE", str(tmp_path / "store"))
    url = pg.new_database("viewed")
    script = Script(tool_call("the colour of the square", region=[0, 0, 0.5, 1]), "Answer: red",
                    "Still red.\nAnswer: red")
    agent = ExtractThink(reasoner=TransformersReasoner(str(tiny.reasoner), extra_logits_processors=script),
                         perceiver=str(tiny.perceivers["llava_onevision"]), device="cpu",
                         checkpointer=open_checkpointer(url))  # fmt: skip
    fast = AskOptions(greedy=True, perceiver_max_new_tokens=6, max_extractions=2)
    chats = [agent.chat("What colour?", [image_path], thread_id="demo", settings=fast),
             agent.chat("Sure?", thread_id="demo", settings=fast)]
    runner, env = CliRunner(), {"HF_HUB_OFFLINE": "1", "XTHINK_IMAGE_STORE": str(tmp_path / "store")}
    done = runner.invoke(app, ["view", "--db", url, "--thread", "demo", "-o", str(tmp_path / "pg.html")], env=env)
    assert done.exit_code == 0, done.output
    page = Page(browser, tmp_path / "pg.html")
    turns = page.page.locator("section.turn")
    assert turns.count() == 2
    assert [turns.nth(i).locator(".reply pre").text_content() for i in range(2)] == [c.reply for c in chats]
    assert turns.nth(0).locator("svg rect.box").count() == 1 and page.page.locator(".figure img").count() == 2
    page.check_offline()
    page.close()
    unknown = runner.invoke(app, ["view", "--db", url, "--thread", "nope", "-o", str(tmp_path / "v.html")], env=env)
    assert unknown.exit_code == 2 and "no thread 'nope'; its threads: demo" in unknown.output
    refused = runner.invoke(app, ["view", "--db", pg.url("viewed", password="wrong-secret"), "--thread", "demo",
                                  "-o", str(tmp_path / "v.html")], env=env)  # fmt: skip
    assert refused.exit_code == 3 and refused.output.strip().count("\n") == 0, refused.output
    assert "wrong-secret" not in refused.output and "Traceback" not in refused.output
