"""The generation settings as command-line flags, declared once, from AskOptions.

Every command that runs the agent (ask, chat, eval) takes the same setting flags, with the same names,
defaults and help: `with_settings` adds one typer option per AskOptions field to a command and hands it one
checked AskOptions as `settings`. A setting added to AskOptions reaches every command; none re-declares a
default. The flag names are a contract: `--field-name`, except `--no-think` for `thinking` (on by default:
agent/settings.py OFF_SWITCHES). A value out of range is one line naming the flag and exit 2, from the same
rules as every other edge. The other shared flags (models, device, engine knobs) are graphs/cli/flags.py's.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import fields
from typing import Any, get_type_hints

import typer

from agent.settings import OFF_SWITCHES, AskOptions, SettingError, from_switches
from graphs.cli.common import EXIT_INPUT, fail

PANEL = "Generation settings"


def flag(name: str) -> str:
    """The command-line flag of an AskOptions field: its name, or its off switch's (`--no-think`)."""
    return "--" + OFF_SWITCHES.get(name, name).replace("_", "-")


def setting_parameters(skip: tuple[str, ...] = ()) -> list[inspect.Parameter]:
    """One keyword parameter per AskOptions field (minus `skip`), its default the field's."""
    hints = get_type_hints(AskOptions)
    params = []
    for f in fields(AskOptions):
        if f.name in skip:
            continue
        name, default, annotation = f.name, f.default, hints[f.name]
        if f.name in OFF_SWITCHES:
            name, default, annotation = OFF_SWITCHES[f.name], False, bool
        option = typer.Option(default, flag(f.name), help=f.metadata.get("help"), rich_help_panel=PANEL)
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation))
    return params


def settings_from_flags(values: dict[str, Any]) -> AskOptions:
    """The AskOptions the flags describe; a value out of range ends the command with one line naming its flag."""
    try:
        return AskOptions(**from_switches(values))
    except SettingError as exc:
        fail(f"{flag(exc.field)} {exc.problem}", EXIT_INPUT)
        raise  # fail() always exits; this keeps type checkers content


def with_settings(skip: tuple[str, ...] = ()) -> Callable:
    """Give a command every setting flag; it receives them as `settings: AskOptions` (fields in `skip` keep
    their defaults there, for the command to set from flags of its own)."""

    def decorate(command: Callable) -> Callable:
        signature = inspect.signature(command)
        hints = get_type_hints(command)
        own = [p.replace(annotation=hints.get(p.name, p.annotation))
               for p in signature.parameters.values() if p.name != "settings"]  # fmt: skip
        added = setting_parameters(skip)
        names = {p.name for p in added}

        @functools.wraps(command)
        def run(**kwargs):
            settings = settings_from_flags({k: kwargs.pop(k) for k in names})
            return command(settings=settings, **kwargs)

        run.__signature__ = signature.replace(parameters=own + added)
        run.__annotations__ = {p.name: p.annotation for p in own + added}
        return run

    return decorate

