"""`xthink view`: write one self-contained HTML page for a trace, a run folder, run folders to compare, or a
conversation kept in a database (`--db FILE_OR_URL --thread NAME`)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from graphs.cli.common import EXIT_INPUT, EXIT_STORE, fail


def view_command(
    paths: list[Path] = typer.Argument(None, metavar="PATH", help="a trace JSON (ask --trace-out), a run "
                                       "folder, or two or more run folders to compare"),
    out: Path = typer.Option(None, "--out", "-o", help="the HTML file to write"),
    db: str = typer.Option(None, "--db", help="a conversation database: the SQLite file of xthink chat --db, or "
                           "a postgresql:// URL"),
    thread: str = typer.Option(None, "--thread", help="with --db: the conversation to show, every turn's trace"),
) -> None:
    """Write one HTML page (opens from file://, no network) to inspect answers, a conversation, a run, or runs
    side by side."""
    paths = list(paths or [])
    if db is None and thread is not None:
        fail("--thread needs --db, the database that keeps the conversation", EXIT_INPUT)
    if db is not None and paths:
        fail("pass trace/run paths or --db with --thread, not both", EXIT_INPUT)
    if db is None and not paths:
        fail("pass a trace JSON, run folder(s), or --db FILE_OR_URL --thread NAME", EXIT_INPUT)
    if out is None:
        fail("pass -o, the HTML file to write, e.g. -o view.html", EXIT_INPUT)
    _claim(out)
    written = _thread(db, thread, out) if db is not None else _paths(paths, out)
    Console().print(f"wrote {written} ({written.stat().st_size / 1e6:.1f} MB)", markup=False, highlight=False)


def _claim(out: Path) -> None:
    from evals.viewer.page import is_page
    from tools.files.folders import NotOurFolderError, claim_file

    if out.exists() and out.is_dir():
        fail(f"-o '{out}' is a folder; pass the HTML file to write, e.g. {out / 'view.html'}", EXIT_INPUT)
    try:  # overwrite only a page written before, never a user's file
        claim_file(out, "-o", "a page", is_page)
    except NotOurFolderError as exc:
        fail(str(exc), EXIT_INPUT)


def _paths(paths: list[Path], out: Path) -> Path:
    from evals.viewer.data import ViewError
    from evals.viewer.page import write_page

    if len(paths) > 1 and any(p.is_file() for p in paths):
        fail("pass one trace JSON, or run folders only (two or more are compared)", EXIT_INPUT)
    try:
        return write_page(paths, out)
    except ViewError as exc:
        fail(str(exc), EXIT_INPUT)


def _thread(db: str, thread: str | None, out: Path) -> Path:
    """Read the thread's turns from the database, then render them: a bad name is exit 2, a database that
    cannot be opened or read exit 3 (as `xthink chat` for a store that cannot be loaded)."""
    from agent.settings import InputError
    from evals.viewer.page import write_thread_page
    from graphs import threads
    from graphs.conversation import close_checkpointer, open_checkpointer
    from tools.images.inputs import ImagePolicy
    from tools.images.store import ImageInputError

    try:
        store = ImagePolicy.from_env().store.root
        if not threads.is_url(db):
            threads.check_sqlite_file(Path(db))
        checkpointer = open_checkpointer(db, create=False)
    except (threads.ThreadError, InputError, ImageInputError) as exc:
        fail(str(exc), EXIT_INPUT)
    except Exception as exc:  # a driver's own error (a server down, a login refused): one line, never a traceback
        fail(_store_failure("cannot open", db, exc), EXIT_STORE)
    try:  # (typer.Exit is an Exception too: fail only outside this block)
        turns = threads.read_thread(checkpointer, thread) if thread is not None else None
        listing = threads.named_threads(checkpointer) if thread is None else ""
    except threads.ThreadError as exc:
        turns, listing = None, f"in '{threads.shown(db)}': {exc}"
    except Exception as exc:
        fail(_store_failure("cannot read", db, exc), EXIT_STORE)
    finally:
        close_checkpointer(checkpointer)
    if turns is None:
        fail(listing if thread is not None else f"pass --thread NAME; '{threads.shown(db)}': {listing}", EXIT_INPUT)
    return write_thread_page(f"thread {thread}", turns, store, out)


def _store_failure(what: str, db: str, exc: Exception) -> str:
    """One line for a database that failed: the store's own message (ConversationStoreError), else the
    driver's first line."""
    from graphs import threads
    from graphs.conversation import ConversationStoreError

    if isinstance(exc, ConversationStoreError):
        return str(exc)
    return f"{what} '{threads.shown(db)}': {_first_line(exc)}"


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"
