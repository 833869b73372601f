"""Postgres threads against a real PostgreSQL server this module starts (Debian's initdb and pg_ctl, run as the
`postgres` user, in a temporary folder, on a free port): two processes on one thread in turn, two processes on
two threads at once, a refused login, and the server stopped in the middle of a turn. Each test has its own
database, so the tables are created on first use every time."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
from pathlib import Path

import pytest
from transformers import LogitsProcessor

from graphs.api import AskOptions, ExtractThink
from graphs.conversation import ConversationStoreError, close_checkpointer, open_checkpointer
from tools.tiny.forced import Script, tool_call
from tools.backends.hf_reasoner import TransformersReasoner

ROOT = Path(__file__).resolve().parents[1]
FAST = AskOptions(greedy=True, perceiver_max_new_tokens=8, max_extractions=2)
PASSWORD = "pg-test-secret"


def postgres_bin() -> Path:
    """Debian keeps the server binaries out of PATH, in /usr/lib/postgresql/<version>/bin."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if not versions:
        raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql (.ci/run does)")
    return versions[-1].parent


class PostgresServer:
    """One initdb'd cluster: its URL per database, and stop/start for the mid-turn test."""

    def __init__(self, folder: Path):
        self.folder, self.bin = folder, postgres_bin()
        self.data = folder / "data"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]

    def _run(self, *args: str) -> None:
        as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*as_postgres, *args], check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        (self.folder / "pw").write_text(PASSWORD + "\n")
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "xthink", "--auth=scram-sha-256",
                  f"--pwfile={self.folder / 'pw'}", "-E", "UTF8", "--no-sync")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.folder / "log"), "-o", options,
                  "-w", "start")

    def stop(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def url(self, db: str = "postgres", password: str = PASSWORD) -> str:
        return f"postgresql://xthink:{password}@127.0.0.1:{self.port}/{db}"

    def new_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@pytest.fixture(scope="module")
def pg():
    if os.geteuid() == 0:
        subprocess.run(["id", "postgres"], check=True, capture_output=True)
    folder = Path(tempfile.mkdtemp(prefix="xthink-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    server = PostgresServer(folder)
    server.init()
    server.start()
    yield server
    try:
        server.stop()
    except subprocess.CalledProcessError:
        pass  # already stopped
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(autouse=True)
def image_store(tmp_path, monkeypatch):
    monkeypatch.setenv("XTHINK_IMAGE_STORE", str(tmp_path / "store"))


# A separate process holding one conversation turn (or two): the tiny models, the reasoner forced by script.
# With `wait_for`, processes meet before opening the store, so they create its tables and run their turns at once.
CHILD = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from graphs.api import AskOptions, ExtractThink
    from tools.tiny.forced import Script
    from tools.backends.hf_reasoner import TransformersReasoner
    job = json.loads(sys.argv[1])
    script = Script(*job["script"])
    reasoner = TransformersReasoner(job["reasoner"], extra_logits_processors=script)
    Path(job["ready"]).touch()
    while not all(Path(p).exists() for p in job["wait_for"]):
        time.sleep(0.01)
    agent = ExtractThink(reasoner=reasoner, perceiver=job["perceiver"], device="cpu", checkpointer=job["db"])
    fast = AskOptions(greedy=True, perceiver_max_new_tokens=8, max_extractions=2)
    for message in job["messages"]:
        images = job["images"] if message == job["messages"][0] else []
        turn = agent.chat(message, images, thread_id=job["thread"], settings=fast)
        print(json.dumps({"reply": turn.reply, "error": turn.error,
                          "seen": [[m.role, m.content] for m in script.requests[-1].messages]}))
""")


def child(tiny, tmp_path, name: str, db: str, thread: str, messages: list[str], script: list[str],
          images=(), wait_for=()) -> subprocess.Popen:
    job = {"reasoner": str(tiny.reasoner), "perceiver": str(tiny.perceivers["llava_onevision"]), "db": db,
           "thread": thread, "messages": messages, "script": script, "images": [str(p) for p in images],
           "ready": str(tmp_path / f"ready-{name}"), "wait_for": [str(tmp_path / f"ready-{w}") for w in wait_for]}
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "XTHINK_IMAGE_STORE": str(tmp_path / "store")}
    return subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(job)], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finished(proc: subprocess.Popen) -> list[dict]:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def thread_messages(db: str, thread: str) -> list:
    """The thread as any later reader sees it: through open_checkpointer, in this process."""
    from graphs import assistant

    checkpointer = open_checkpointer(db, create=False)
    try:
        graph = assistant.build().compile(checkpointer=checkpointer)
        return graph.get_state({"configurable": {"thread_id": thread}}).values.get("messages", [])
    finally:
        close_checkpointer(checkpointer)


def texts(messages) -> list[tuple[str, str]]:
    return [(m.type, m.text) for m in messages]


def test_two_processes_continue_one_thread_in_turn(pg, tiny, image_path, tmp_path):
    db = pg.new_database("one_thread")
    cli = [sys.executable, "-m", "graphs.cli.app", "chat", "--reasoner", str(tiny.reasoner), "--perceiver",
           str(tiny.perceivers["llava_onevision"]), "--greedy", "--max-new-tokens", "12", "--thinking-budget", "6",
           "--perceiver-max-new-tokens", "6", "--max-extractions", "1", "--device", "cpu",
           "--thread", "shared", "--db", db, str(image_path)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "XTHINK_IMAGE_STORE": str(tmp_path / "store")}
    first = subprocess.run(cli, input="What colour is the square?\n", env=env, check=False, capture_output=True, text=True,
                           timeout=600, cwd=ROOT)
    assert first.returncode == 0 and "assistant>" in first.stdout, first.stderr[-2000:]
    assert "Traceback" not in first.stderr and "psycopg" not in first.stderr
    [turn] = finished(child(tiny, tmp_path, "b", db, "shared", ["And the background?"], ["Answer: white"]))
    assert turn["error"] is None and turn["reply"] == "Answer: white"
    users = [content for role, content in turn["seen"] if role == "user"]
    assert "What colour is the square?" in users[0] and users[-1].startswith("Follow-up question: And the background?")
    messages = thread_messages(db, "shared")
    humans = [text for kind, text in texts(messages) if kind == "human"]
    assert humans == ["What colour is the square?", "And the background?"]
    assert texts(messages)[-1] == ("ai", "Answer: white")


def test_two_processes_write_two_threads_at_once(pg, tiny, image_path, tmp_path):
    db = pg.new_database("two_threads")  # empty: both processes create the tables at the same moment
    procs = [child(tiny, tmp_path, name, db, f"thread-{name}", [f"{name} one?", f"{name} two?"],
                   [f"Answer: {name}1", f"Answer: {name}2"], [image_path], wait_for=["a", "b"]) for name in "ab"]
    outcomes = [finished(proc) for proc in procs]
    assert [[t["reply"] for t in turns] for turns in outcomes] == [["Answer: a1", "Answer: a2"],
                                                                   ["Answer: b1", "Answer: b2"]]
    for name in "ab":
        assert texts(thread_messages(db, f"thread-{name}")) == [
            ("human", f"{name} one?"), ("ai", f"Answer: {name}1"), ("human", f"{name} two?"), ("ai", f"Answer: {name}2")]


@pytest.mark.parametrize("why", ["wrong password", "nothing listening"])
def test_a_store_that_cannot_be_opened_is_one_line_and_exit_3(pg, tiny, tmp_path, why):
    wrong = "wr0ng-s3cret"
    if why == "wrong password":
        db = pg.url("postgres", password=wrong)
    else:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            db = f"postgresql://xthink:{wrong}@127.0.0.1:{s.getsockname()[1]}/gone"
    with pytest.raises(ConversationStoreError) as raised:
        ExtractThink(reasoner=str(tiny.reasoner), perceiver=str(tiny.perceivers["llava_onevision"]), checkpointer=db)
    assert "127.0.0.1" in str(raised.value) and wrong not in str(raised.value)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "XTHINK_IMAGE_STORE": str(tmp_path / "store")}
    proc = subprocess.run([sys.executable, "-m", "graphs.cli.app", "chat", "--reasoner", str(tiny.reasoner),
                           "--perceiver", str(tiny.perceivers["llava_onevision"]), "--db", db],
                          input="Hello?\n", env=env, check=False, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 3, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot open the conversation store postgresql://xthink@")
    assert ("password authentication failed" if why == "wrong password" else "gone") in lines[0]
    assert wrong not in proc.stderr + proc.stdout and "Traceback" not in proc.stderr


class Gate(LogitsProcessor):
    """Holds generation at its first step until the test opens it: the turn is provably in flight."""

    def __init__(self, entered: threading.Event, opened: threading.Event):
        self.entered, self.opened = entered, opened

    def __call__(self, input_ids, scores):
        self.entered.set()
        self.opened.wait(timeout=120)
        return scores


class HeldScript(Script):
    """A Script whose calls from `hold_from` on wait at a gate."""

    def __init__(self, *texts: str, hold_from: int):
        super().__init__(*texts)
        self.hold_from = hold_from
        self.entered, self.opened = threading.Event(), threading.Event()

    def __call__(self, request, tokenizer):
        held = len(self.requests) >= self.hold_from
        processors = super().__call__(request, tokenizer)
        return [*processors, Gate(self.entered, self.opened)] if held else processors


def test_server_stopped_mid_turn_fails_that_turn_and_keeps_the_earlier_ones(pg, tiny, image_path):
    db = pg.new_database("mid_turn")
    script = HeldScript(tool_call("the colour"), "Answer: red", "Answer: never saved", "Answer: back again",
                        hold_from=2)
    reasoner = TransformersReasoner(str(tiny.reasoner), extra_logits_processors=script)
    agent = ExtractThink(reasoner=reasoner, perceiver=str(tiny.perceivers["llava_onevision"]), device="cpu",
                         checkpointer=db)
    assert agent.chat("What colour?", [image_path], thread_id="t", settings=FAST).reply == "Answer: red"
    failures: list[BaseException] = []

    def second_turn():
        try:
            agent.chat("Still red?", thread_id="t", settings=FAST)
        except BaseException as exc:  # noqa: BLE001 - the test inspects what the turn raised
            failures.append(exc)

    worker = threading.Thread(target=second_turn)
    worker.start()
    assert script.entered.wait(timeout=300), "the second turn never reached the reasoner"
    pg.stop()
    script.opened.set()
    worker.join(timeout=120)
    assert not worker.is_alive()
    pg.start()
    [failure] = failures
    assert isinstance(failure, ConversationStoreError), repr(failure)
    message = str(failure)
    assert "\n" not in message and f"127.0.0.1:{pg.port}/mid_turn" in message and "not saved" in message
    assert PASSWORD not in message
    kept = texts(thread_messages(db, "t"))
    assert ("human", "What colour?") in kept and ("ai", "Answer: red") in kept
    assert ("ai", "Answer: never saved") not in kept
    again = agent.chat("Are you back?", thread_id="t", settings=FAST)  # the same process: its pool reconnects
    assert again.error is None and again.reply == "Answer: back again"
    assert texts(thread_messages(db, "t"))[-1] == ("ai", "Answer: back again")


def test_close_releases_the_pool_it_opened_and_the_thread_stays(pg, tiny, image_path):
    """A process that makes an ExtractThink per job must get the pool's connections and thread back."""
    db = pg.new_database("closing")
    reasoner = TransformersReasoner(str(tiny.reasoner), extra_logits_processors=Script("Answer: red"))
    with ExtractThink(reasoner=reasoner, perceiver=str(tiny.perceivers["llava_onevision"]), device="cpu",
                      checkpointer=db) as agent:  # fmt: skip
        assert agent.chat("What colour?", [image_path], thread_id="t", settings=FAST).reply == "Answer: red"
        pool = agent.checkpointer.conn
        assert not pool.closed
    assert pool.closed, "leaving the block closed the pool"
    agent.close()  # a second close does nothing
    assert ("ai", "Answer: red") in texts(thread_messages(db, "t"))
