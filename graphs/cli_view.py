"""`xthink view`: write one self-contained HTML page for a trace, a run folder, or run folders to compare."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

err = Console(stderr=True)
EXIT_INPUT = 2


def view_command(
    paths: list[Path] = typer.Argument(..., metavar="PATH [PATH...]", help="a trace JSON (ask --trace-out), a run "
                                       "folder, or two or more run folders to compare"),
    out: Path = typer.Option(..., "--out", "-o", help="the HTML file to write"),
) -> None:
    """Write one HTML page (opens from file://, no network) to inspect answers, a run, or runs side by side."""
    from evals.viewer import is_page, write_page
    from evals.viewer_data import ViewError
    from tools.folders import NotOurFolderError, claim_file

    if out.exists() and out.is_dir():
        _fail(f"-o '{out}' is a folder; pass the HTML file to write, e.g. {out / 'view.html'}")
    try:  # overwrite only a page written before, never a user's file
        claim_file(out, "-o", "a page", is_page)
    except NotOurFolderError as exc:
        _fail(str(exc))
    if len(paths) > 1 and any(p.is_file() for p in paths):
        _fail("pass one trace JSON, or run folders only (two or more are compared)")
    try:
        written = write_page(list(paths), out)
    except ViewError as exc:
        _fail(str(exc))
    Console().print(f"wrote {written} ({written.stat().st_size / 1e6:.1f} MB)", markup=False, highlight=False)


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_INPUT)
