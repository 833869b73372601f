"""The `xthink` typer app: every command registered under its name, in the order `xthink --help` lists them.

Each command lives in its own module here (graphs/cli/ask.py holds `xthink ask`, ...); this module only names
them. The command modules import typer and rich at the top and everything heavy (torch, transformers, the
models) inside the command, so building the app, and `xthink --help`, loads no model code. Exit codes and the
one-line error are graphs/cli/common.py's.
"""

from __future__ import annotations

import typer

from graphs.cli.ask import ask_command
from graphs.cli.cache import cache_app
from graphs.cli.chat import chat_command
from graphs.cli.convert import convert_command
from graphs.cli.eval import eval_command
from graphs.cli.export import export_command
from graphs.cli.report import report_command
from graphs.cli.schema import schema_command
from graphs.cli.selftest import selftest_command
from graphs.cli.serve import serve_command
from graphs.cli.vet_data import vet_data_command
from graphs.cli.vet_train import vet_train_command
from graphs.cli.view import view_command

COMMANDS = {
    "ask": ask_command,
    "selftest": selftest_command,
    "schema": schema_command,
    "convert": convert_command,
    "eval": eval_command,
    "report": report_command,
    "export": export_command,
    "view": view_command,
    "chat": chat_command,
    "serve": serve_command,
    "vet-data": vet_data_command,
    "vet-train": vet_train_command,
}


def build_app() -> typer.Typer:
    """The root app: the commands above, then the `cache` group."""
    root = typer.Typer(add_completion=False, no_args_is_help=True, help="Small models that see and reason.")
    for name, command in COMMANDS.items():
        root.command(name)(command)
    root.add_typer(cache_app, name="cache")
    return root


app = build_app()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
