"""Conversations from Python: `ExtractThink.chat` / `chat_stream` / `resume` run the `assistant` graph on a thread.

A thread lives in the checkpointer: in memory by default; `sqlite_checkpointer(path)` keeps it in a file one
process at a time can use (so `xthink chat --thread NAME --db FILE` can come back to it later);
`postgres_checkpointer(url)` keeps it in a PostgreSQL database that every worker of a deployment shares.
`open_checkpointer(spec)` turns the one string users give (`--db`, `ExtractThink(checkpointer=...)`) into one of
those. A store that cannot be opened, or drops mid-turn, raises ConversationStoreError: one line naming the store
(never a password); the turn that failed is not saved, earlier turns are untouched. Images given here are the
caller's own files: they are copied into the content-addressed store and sent as references, never as pixels.
"""

from __future__ import annotations

import sqlite3
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage
from pydantic import BaseModel

from agent.settings import AskOptions, InputError
from agent.state import AgentContext
from agent.trace import MODES, Result, Step
from graphs import assistant
from tools.images.inputs import ImagePolicy
from tools.images.store import ImageInputError
from tools.images.pixels import load_image

# Our state types, allowed explicitly so checkpoints load without LangGraph's unregistered-type warnings.
STATE_TYPES = [
    ("tools.backends.base", "Message"), ("tools.backends.output_parsing", "ToolCall"),
    ("tools.backends.output_parsing", "ToolCallError"), ("agent.trace", "ImageInfo"),
    ("agent.trace", "ReasonStep"), ("agent.trace", "ExtractStep"), ("agent.trace", "ToolCallRecord"),
    ("agent.extract_tool", "CropInfo"),
]  # fmt: skip


def serializer():
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    return JsonPlusSerializer(allowed_msgpack_modules=STATE_TYPES)


def memory_checkpointer():
    from langgraph.checkpoint.memory import InMemorySaver

    return InMemorySaver(serde=serializer())


POSTGRES_SCHEMES = ("postgresql://", "postgres://")
# Connections one process keeps to the database: a chat needs one, a server's concurrent runs a few more.
POOL_MAX = 4
# Seconds to wait for a connection (at opening, and for each checkpoint write): a dead database fails fast.
CONNECT_TIMEOUT = 5
# Any number, the same in every process: serialises the table creation of workers that start together.
SETUP_LOCK = 0x7874_6869_6E6B
# Seconds a worker waits for another to finish creating the tables (it takes well under one).
SETUP_WAIT = 60


class ConversationStoreError(RuntimeError):
    """The conversation store cannot be opened or failed during a turn (the CLI exits 3 on it)."""


def open_checkpointer(spec: str | Path | None, *, create: bool = True):
    """The checkpointer a user names: None keeps threads in memory, a `postgresql://` (or `postgres://`) URL in
    that database, anything else is a SQLite file. `create=False` (a reader) refuses a SQLite file that does
    not exist instead of creating an empty one."""
    if spec is None:
        return memory_checkpointer()
    if str(spec).startswith(POSTGRES_SCHEMES):
        return postgres_checkpointer(str(spec))
    if not create and not Path(spec).is_file():
        raise ConversationStoreError(f"no conversation file '{spec}'")
    return sqlite_checkpointer(spec)


def sqlite_checkpointer(path: str | Path):
    """Conversations kept in a SQLite file (created if missing), usable from several processes in turn."""
    from langgraph.checkpoint.sqlite import SqliteSaver

    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        saver = SqliteSaver(sqlite3.connect(str(path), check_same_thread=False), serde=serializer())
        saver.setup()
    except (OSError, sqlite3.Error) as exc:
        raise ConversationStoreError(f"cannot open the conversation file '{path}': {exc}") from None
    return saver


def postgres_checkpointer(url: str):
    """Conversations kept in PostgreSQL, shared by every process that names the same database. The login is
    checked and the tables created (once, under a lock) before this returns; a pool then serves the turns and
    replaces connections that died, so a restarted database is usable again without restarting us."""
    psycopg, pool_module, saver_class = _postgres_modules()
    where = describe_url(url)
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT) as conn:
            _setup_tables(conn, saver_class)
    except psycopg.Error as exc:
        raise ConversationStoreError(f"cannot open the conversation store {where}: {_reason(exc, url)}") from None
    from psycopg.rows import dict_row

    # reconnect_timeout: the pool stops retrying a lost connection in the background after a few seconds (its
    # back-off would otherwise grow to minutes), so the first turn after the database is back connects at once.
    pool = pool_module.ConnectionPool(
        url, min_size=1, max_size=POOL_MAX, timeout=CONNECT_TIMEOUT, reconnect_timeout=CONNECT_TIMEOUT,
        check=pool_module.ConnectionPool.check_connection, name=f"xthink {where}", open=True,
        kwargs={"autocommit": True, "row_factory": dict_row, "prepare_threshold": 0, "connect_timeout": CONNECT_TIMEOUT},
    )  # fmt: skip
    return saver_class(pool, serde=serializer())


def _postgres_modules():
    try:
        import psycopg
        import psycopg_pool
        from langgraph.checkpoint.postgres import PostgresSaver
    except ImportError:
        raise ConversationStoreError(
            "Postgres threads need the postgres extra: pip install 'extract-think[postgres]'"
        ) from None
    return psycopg, psycopg_pool, PostgresSaver


def _setup_tables(conn, saver_class) -> None:
    """`setup()` under an advisory lock: two workers starting on an empty database would otherwise both
    create the tables and one would fail. The lock is polled, not waited for: a session blocked in
    `pg_advisory_lock` holds a transaction open, which the holder's CREATE INDEX CONCURRENTLY waits on
    (a deadlock)."""
    from psycopg.rows import dict_row

    conn.row_factory = dict_row
    deadline = time.monotonic() + SETUP_WAIT
    while not conn.execute("SELECT pg_try_advisory_lock(%s) AS got", (SETUP_LOCK,)).fetchone()["got"]:
        if time.monotonic() > deadline:
            raise ConversationStoreError(f"another process held the table set-up lock for over {SETUP_WAIT}s")
        time.sleep(0.1)
    try:
        saver_class(conn, serde=serializer()).setup()
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (SETUP_LOCK,))


def describe_url(url: str) -> str:
    """The database a URL names, as a user would recognise it, without the password."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    user = f"{parts.username}@" if parts.username else ""
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"postgresql://{user}{parts.hostname or 'localhost'}{port}{parts.path}"


def _reason(exc: BaseException, url: str) -> str:
    """The driver's message on one line, with the password cut out should the driver ever repeat it."""
    from urllib.parse import unquote, urlsplit

    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = "; ".join(lines) or type(exc).__name__
    password = urlsplit(url).password
    return text.replace(unquote(password), "***") if password else text


def close_checkpointer(checkpointer) -> None:
    """Release what a checkpointer from open_checkpointer holds (a reader is done with it): the Postgres pool
    and its threads, or the SQLite connection. In-memory checkpointers hold nothing."""
    conn = getattr(checkpointer, "conn", None)
    if conn is not None and hasattr(conn, "close"):
        conn.close()


def store_failure(checkpointer, exc: BaseException) -> ConversationStoreError | None:
    """A ConversationStoreError for an exception the checkpointer's database raised, else None."""
    if isinstance(exc, sqlite3.Error):
        return ConversationStoreError(f"the conversation file failed during this turn (not saved): {exc}")
    psycopg = sys.modules.get("psycopg")
    if psycopg is None or not isinstance(exc, psycopg.Error):
        return None
    conninfo = getattr(getattr(checkpointer, "conn", None), "conninfo", "") or ""
    where = describe_url(conninfo) if conninfo.startswith(POSTGRES_SCHEMES) else "in PostgreSQL"
    return ConversationStoreError(
        f"the conversation store {where} failed during this turn (not saved; earlier turns are kept): "
        f"{_reason(exc, conninfo)}"
    )


@dataclass(frozen=True)
class Token:
    """A piece of the reasoner's output as it is generated."""

    node: str
    phase: str  # thinking | answer
    text: str


class ChatTurn(BaseModel):
    """One turn: the visible reply, the reasoning behind it, the Result (None when the input was unusable),
    or the proposed extraction the run paused on (interrupt_before_extract)."""

    thread_id: str
    reply: str = ""
    reasoning: str = ""
    result: Result | None = None
    error: str | None = None
    interrupt: dict | None = None


@dataclass
class TurnSettings:
    mode: str = "iterative"
    settings: AskOptions | None = None
    interrupt_before_extract: bool = False
    # Set by the caller to stop the turn: every model call of it ends at its next token and raises Cancelled.
    cancel: threading.Event | None = None
    # The reasoner's text as Token events while it is generated. A caller that only wants the ChatTurn (a plain,
    # unstreamed HTTP answer) turns it off: the model's worker then decodes and relays nothing per token.
    stream_text: bool = True


def user_message(text: str, images: Sequence[str | Path], max_pixels: int) -> dict:
    """A chat message with the caller's image files stored by content and referenced by digest."""
    store = ImagePolicy.from_env(max_pixels=max_pixels).store
    blocks: list[dict[str, Any]] = [{"type": "text", "text": text}]
    for path in images:
        load_image(path, max_pixels)  # a bad file fails here, naming the file
        try:
            stored = store.put(Path(path).read_bytes(), label=f"image '{path}'")
        except ImageInputError as exc:
            raise InputError(str(exc)) from None
        blocks.append({"type": "image", "file_id": stored.digest})
    return {"role": "user", "content": blocks}


def context_for(agent, turn: TurnSettings) -> AgentContext:
    if turn.mode not in MODES:
        raise InputError(f"unknown mode '{turn.mode}'; choose one of {', '.join(MODES)}")
    from tools.backends.cancel import with_cancel

    reasoner, perceiver = with_cancel(agent.reasoner, agent.perceiver, turn.cancel)
    return AgentContext.build(reasoner, perceiver, turn.settings or AskOptions(), mode=turn.mode,
                              interrupt_before_extract=turn.interrupt_before_extract, stream_text=turn.stream_text)


def run_turn(agent, graph, graph_input, thread_id: str, turn: TurnSettings) -> Iterator[Step | Token | ChatTurn]:
    """Stream one turn (or its resumption): steps and tokens as they come, then the ChatTurn."""
    ctx = context_for(agent, turn)
    agent.load_models(turn.mode)
    limit = assistant.recursion_limit(ctx.max_extractions)
    config = {"configurable": {"thread_id": thread_id}, "recursion_limit": limit}
    paused, values = None, {}
    # Without "custom" (the token stream) LangGraph runs a lone node on this thread instead of a pool it starts.
    modes = ["updates", "custom", "values"] if turn.stream_text else ["updates", "values"]
    for kind, chunk in _guarded(graph, graph.stream(graph_input, config=config, context=ctx, stream_mode=modes)):
        if kind == "values":
            values = chunk
            continue
        if kind == "custom":
            yield Token(chunk.get("node", ""), chunk.get("phase", ""), chunk.get("text", ""))
            continue
        if "__interrupt__" in chunk:
            paused = chunk["__interrupt__"][0].value
            continue
        for update in chunk.values():
            yield from (update or {}).get("steps", [])
    yield finish_turn(values, thread_id, paused)


def _guarded(graph, events: Iterator) -> Iterator:
    """The graph's events, with a failure of the conversation store turned into a ConversationStoreError."""
    try:
        yield from events
    except Exception as exc:
        failure = store_failure(graph.checkpointer, exc)
        if failure is None:
            raise
        raise failure from None


def finish_turn(values: dict, thread_id: str, paused: dict | None) -> ChatTurn:
    if paused is not None:
        return ChatTurn(thread_id=thread_id, interrupt=paused)
    last = next((m for m in reversed(values.get("messages", [])) if isinstance(m, AIMessage)), None)
    result = values.get("result")
    return ChatTurn(
        thread_id=thread_id, reply=last.text if last else "", error=values.get("error"),
        reasoning=(last.additional_kwargs.get("reasoning_content", "") if last else ""),
        result=Result.model_validate(result) if result else None,
    )  # fmt: skip
