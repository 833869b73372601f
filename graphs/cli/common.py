"""What every `xthink` command shares: exit codes, the one-line error, the progress bar, the checks before loading.

User mistakes (bad files, bad options, models that cannot load) end with one red line on stderr and a
non-zero exit, never a traceback. Exit codes: 0 ok, 1 selftest failure, 2 bad input, 3 model (or a
conversation database) not loadable, 4 a model server failed during the run.
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape

EXIT_INPUT, EXIT_MODEL, EXIT_SERVER = 2, 3, 4
EXIT_STORE = EXIT_MODEL  # a conversation database that cannot be opened: as a model that cannot load
err = Console(stderr=True)


def fail(message: str, code: int) -> None:
    """One red line on stderr and a non-zero exit: never a traceback for a user's mistake."""
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def check_image_settings() -> None:
    """Read the XTHINK_* image and store settings before any model loads: a bad one is one line, exit 2."""
    from tools.images.inputs import ImagePolicy
    from tools.images.store import ImageInputError

    try:
        ImagePolicy.from_env()
    except ImageInputError as exc:
        fail(str(exc).replace("the server's ", ""), EXIT_INPUT)


def claim_trace_file(path) -> None:
    """Refuse, before any work, a trace path that holds a file xthink did not write (a trace JSON is ours)."""
    from tools.files.folders import NotOurFolderError, claim_file

    try:
        claim_file(path, "--trace-out", "a trace", is_trace)
    except NotOurFolderError as exc:
        fail(str(exc), EXIT_INPUT)


def is_trace(path) -> bool:
    """A Result JSON we wrote: an object with our schema version and steps (read only when small enough)."""
    import json
    from pathlib import Path

    try:
        if Path(path).stat().st_size > 512 * 1024 * 1024:
            return False
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "schema_version" in data and "steps" in data


def progress_bar(*counters: str):
    """A live bar on stderr per task: done/total, one `NAME {value}` column per counter field, ETA."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = [TextColumn(f"{name} {{task.fields[{name}]}}") for name in counters]
    return Progress(TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(), *columns,
                    TimeRemainingColumn(), console=err)  # fmt: skip


def start_telemetry(endpoint: str | None) -> None:
    """Start exporting spans before any model loads; a missing extra or a bad URL is one line, exit 2."""
    from agent.telemetry import TelemetryError, configure

    try:
        configure(endpoint)
    except TelemetryError as exc:
        fail(str(exc), EXIT_INPUT)
