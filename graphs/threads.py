"""A conversation read back from its checkpoints, turn by turn (`xthink view --db FILE_OR_URL --thread NAME`).

The assistant graph keeps only the latest turn's `result` in state; each earlier one survives in the thread's
checkpoint history. A turn ends at a checkpoint with nothing left to run: its state holds the turn's Result
(or the error that refused its input) and the messages up to the assistant's reply. So the turns are read
from those checkpoints, through the compiled graph (which rebuilds each state exactly as the run saw it),
and handed to the viewer (evals) as plain ThreadTurns: the viewer never opens a database.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from langchain_core.messages import AIMessage, HumanMessage

from agent.assistant_turns import content_text
from agent.trace import Result
from evals.viewer.data import ThreadTurn

MAX_THREADS_LISTED = 50  # an error naming a database's threads lists at most this many
SCAN_CHECKPOINTS = 5_000  # a database without SQL access is scanned this far back for thread names


class ThreadError(ValueError):
    """The database or thread named does not hold a conversation; the message says what to pass."""


def is_url(spec: str) -> bool:
    return "://" in str(spec)


def shown(spec: str) -> str:
    """The database as errors may print it: a URL's password replaced by ***."""
    if not is_url(spec):
        return str(spec)
    parts = urlsplit(str(spec))
    if parts.password is None:
        return str(spec)
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def check_sqlite_file(path: Path) -> None:
    """Refuse, without creating or changing anything, a path that is not a SQLite file of conversations
    (opening a checkpointer on a missing path would create an empty database there)."""
    if not path.exists():
        raise ThreadError(f"no database file '{path}'; pass the file given to xthink chat --db")
    if not path.is_file():
        raise ThreadError(f"'{path}' is not a file; pass the SQLite file given to xthink chat --db")
    try:
        with sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True) as conn:
            found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'checkpoints'").fetchone()
    except sqlite3.DatabaseError as exc:
        raise ThreadError(f"'{path}' is not a SQLite database ({exc})") from None
    if not found:
        raise ThreadError(f"'{path}' holds no conversations (no checkpoints table); pass a file from xthink chat --db")


def thread_ids(checkpointer) -> list[str]:
    """The names of the threads a database holds, sorted (SQL on SQLite; other savers: their newest
    SCAN_CHECKPOINTS checkpoints)."""
    conn = getattr(checkpointer, "conn", None)
    if isinstance(conn, sqlite3.Connection):
        rows = conn.execute("SELECT DISTINCT thread_id FROM checkpoints ORDER BY thread_id").fetchall()
        return [str(row[0]) for row in rows]
    names = {str(t.config["configurable"]["thread_id"]) for t in checkpointer.list(None, limit=SCAN_CHECKPOINTS)}
    return sorted(names)


def named_threads(checkpointer) -> str:
    """A short list of the threads, for an error message."""
    names = thread_ids(checkpointer)
    if not names:
        return "it holds no threads"
    more = f" and {len(names) - MAX_THREADS_LISTED} more" if len(names) > MAX_THREADS_LISTED else ""
    return "its threads: " + ", ".join(names[:MAX_THREADS_LISTED]) + more


def read_thread(checkpointer, thread_id: str) -> list[ThreadTurn]:
    """Every turn of a thread, oldest first; a last turn still paused (or stopped mid-run) comes as unfinished.

    The history is walked newest first and only each turn's end is kept: one checkpoint's state in memory at a
    time, however long the conversation."""
    from graphs import assistant

    graph = assistant.build().compile(checkpointer=checkpointer)
    turns, latest = [], None
    for snapshot in graph.get_state_history({"configurable": {"thread_id": thread_id}}):
        latest = latest or snapshot
        if not snapshot.next and snapshot.metadata.get("source") == "loop":
            turns.append(finished_turn(snapshot.values))
    if latest is None:
        raise ThreadError(f"no thread '{thread_id}'; {named_threads(checkpointer)}")
    turns.reverse()
    if latest.next:
        turns.append(ThreadTurn(question=_question(latest.values.get("messages", [])), reply="", status="unfinished"))
    return turns


def finished_turn(values: dict) -> ThreadTurn:
    """The turn whose last checkpoint holds these values: its question, reply, Result or error."""
    messages = values.get("messages", [])
    replied = bool(messages) and isinstance(messages[-1], AIMessage)
    result, error = None, values.get("error")
    if values.get("result"):
        try:
            result = Result.model_validate(values["result"])
        except ValueError as exc:
            error = f"the turn's trace could not be read: {str(exc)[:200]}"
    return ThreadTurn(question=_question(messages[:-1] if replied else messages),
                      reply=content_text(messages[-1].content) if replied else "", result=result, error=error,
                      status="error" if error else "ok")  # fmt: skip


def _question(messages: list) -> str:
    """The text of the user messages after the last assistant reply: the turn's question."""
    tail = []
    for message in reversed(messages):
        if isinstance(message, AIMessage):
            break
        if isinstance(message, HumanMessage):
            tail.append(content_text(message.content).strip())
    return "\n".join(t for t in reversed(tail) if t)
