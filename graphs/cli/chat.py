"""`xthink chat IMAGE...`: a conversation in the terminal, each step shown as it happens.

Lines starting with `/` are commands: `/image PATH` adds an image to the next message, `/mode NAME`
switches the regime, `/trace PATH` saves the last turn's Result JSON, `/quit` ends. `--thread NAME --db FILE`
keeps the conversation in a SQLite file, so the same command later continues it; `--db postgresql://...` keeps
it in a PostgreSQL database that several processes (or machines) share.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from agent.trace import MODES
from graphs.cli import flags
from graphs.cli.common import EXIT_INPUT, EXIT_MODEL, EXIT_SERVER, check_image_settings, fail, is_trace, start_telemetry
from graphs.cli.settings import with_settings
from tools.files.folders import NotOurFolderError, claim_file

HELP = "commands: /image PATH, /mode iterative|extract|caption|direct, /trace PATH, /quit"


@with_settings()
def chat_command(
    images: list[Path] = typer.Argument(None, metavar="[IMAGE...]", help="images for the first message"),
    reasoner: str | None = flags.reasoner(),
    perceiver: str | None = flags.perceiver(),
    pair: str | None = flags.pair(),
    mode: str = typer.Option("iterative", "--mode", "-m", help="iterative | extract | caption | direct"),
    thread: str = typer.Option("default", "--thread", help="conversation name (with --db, to continue it later)"),
    db: str | None = typer.Option(None, "--db", help="SQLite file or postgresql:// URL that keeps conversations"),
    device: str = flags.device(),
    dtype: str = flags.dtype(),
    otel_endpoint: str | None = flags.otel(),
    settings=None,  # AskOptions from the generation-setting flags (graphs/cli/settings.py), for every turn
) -> None:
    """Talk about images: follow-up questions reuse what the reasoner already saw."""
    from graphs.api import ExtractThink, InputError, resolve_models
    from graphs.conversation import ConversationStoreError, close_checkpointer, open_checkpointer
    from tools.backends.loading import quiet_transformers

    if mode not in MODES:
        fail(f"unknown mode '{mode}'; choose one of {', '.join(MODES)}", EXIT_INPUT)
    check_image_settings()
    start_telemetry(otel_endpoint)
    try:
        reasoner, perceiver = resolve_models(pair, reasoner, perceiver)
    except InputError as exc:
        fail(str(exc), EXIT_INPUT)
    quiet_transformers()
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)  # its reconnect attempts: our one line says it
    try:
        checkpointer = open_checkpointer(db) if db else None
    except ConversationStoreError as exc:
        fail(str(exc), EXIT_MODEL)
    agent = ExtractThink(reasoner=reasoner, perceiver=perceiver, device=device, dtype=dtype, checkpointer=checkpointer)
    try:
        Session(agent, thread, mode, settings, [str(p) for p in images or []]).run()
    finally:
        close_checkpointer(checkpointer)  # a Postgres pool's connections go back at once, not at the server's timeout


class Session:
    """The read-eval loop: commands change the session, other lines are messages."""

    def __init__(self, agent, thread: str, mode: str, settings, images: list[str]):
        self.agent, self.thread, self.mode, self.settings = agent, thread, mode, settings
        self.pending = images
        self.last = None
        self.out = Console(highlight=False)

    def run(self) -> None:
        self.out.print(f"[dim]thread '{escape(self.thread)}', mode {self.mode}. {HELP}[/]")
        while True:
            line = self._read()
            if line is None or line.strip() in ("/quit", "/exit"):
                return
            if line.strip():
                self._handle(line.strip())

    def _read(self) -> str | None:
        try:
            return input("you> " if sys.stdin.isatty() else "")
        except EOFError:
            return None

    def _handle(self, line: str) -> None:
        command, _, arg = line.partition(" ")
        if command == "/image":
            self._add_image(arg.strip())
        elif command == "/mode":
            self._set_mode(arg.strip())
        elif command == "/trace":
            self._save_trace(arg.strip())
        elif command.startswith("/"):
            self.out.print(f"[yellow]unknown command {escape(command)}; {HELP}[/]")
        else:
            self._turn(line)

    def _add_image(self, path: str) -> None:
        if not path or not Path(path).is_file():
            self.out.print(f"[red]no image file '{escape(path)}'[/]")
            return
        self.pending.append(path)
        self.out.print(f"[dim]{escape(path)} goes with your next message[/]")

    def _set_mode(self, mode: str) -> None:
        if mode not in MODES:
            self.out.print(f"[red]unknown mode '{escape(mode)}'; choose one of {', '.join(MODES)}[/]")
            return
        self.mode = mode
        self.out.print(f"[dim]mode {mode}[/]")

    def _save_trace(self, path: str) -> None:
        if self.last is None or self.last.result is None:
            self.out.print("[red]no finished turn to save yet[/]")
            return
        target = Path(path or "trace.json")
        try:
            claim_file(target, "/trace", "a trace", is_trace)
        except NotOurFolderError as exc:
            self.out.print(f"[red]{escape(str(exc))}[/]")
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.last.result.model_dump_json(indent=2))
        self.out.print(f"[dim]trace saved to {escape(str(target))}[/]")

    def _turn(self, message: str) -> None:
        from agent.settings import InputError
        from graphs.cli.render import print_step
        from graphs.conversation import ChatTurn, ConversationStoreError, Token
        from tools.backends.http_client import EndpointError
        from tools.backends.loading import ModelLoadError
        from tools.images.pixels import ImageError

        index = 0
        try:
            for event in self.agent.chat_stream(message, self.pending, self.thread, self.mode, self.settings):
                if isinstance(event, ChatTurn):
                    self._show(event)
                elif not isinstance(event, Token):
                    index += 1
                    print_step(self.out, index, event)
        except (InputError, ImageError) as exc:
            self.out.print(f"[red]{escape(str(exc))}[/]")
            return
        except (ModelLoadError, ConversationStoreError) as exc:
            fail(str(exc), EXIT_MODEL)
        except EndpointError as exc:
            fail(f"model server failed: {exc}", EXIT_SERVER)
        self.pending = []

    def _show(self, turn) -> None:
        self.last = turn
        if turn.error:
            self.out.print(f"[red]{escape(turn.error)}[/]")
            return
        steps = f"{turn.result.extraction_calls} extractions, {turn.result.seconds:.1f}s" if turn.result else ""
        self.out.print(f"[bold green]assistant>[/] {escape(turn.reply)}  [dim]({steps})[/]")
