"""The generation settings as command-line flags, declared once, from AskOptions.

Every command that runs the agent (ask, chat, eval) takes the same setting flags, with the same names,
defaults and help: `with_settings` adds one typer option per AskOptions field to a command and hands it one
checked AskOptions as `settings`. A setting added to AskOptions reaches every command; none re-declares a
default. The flag names are a contract: `--field-name`, except `--no-think` for `thinking` (on by default).
A value out of range is one line naming the flag and exit 2, from the same rules as every other edge.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import fields
from typing import Any, get_type_hints

import typer

from agent.settings import AskOptions, SettingError
from graphs.cli.common import EXIT_INPUT, fail

PANEL = "Generation settings"
INVERTED = {"thinking": ("no_think", "--no-think")}  # field -> (parameter, flag): on unless the flag is given


def flag(name: str) -> str:
    """The command-line flag of an AskOptions field."""
    return INVERTED[name][1] if name in INVERTED else "--" + name.replace("_", "-")


def setting_parameters(skip: tuple[str, ...] = ()) -> list[inspect.Parameter]:
    """One keyword parameter per AskOptions field (minus `skip`), its default the field's."""
    hints = get_type_hints(AskOptions)
    params = []
    for f in fields(AskOptions):
        if f.name in skip:
            continue
        name, default, annotation = f.name, f.default, hints[f.name]
        if f.name in INVERTED:
            name, default, annotation = INVERTED[f.name][0], False, bool
        option = typer.Option(default, flag(f.name), help=f.metadata.get("help"), rich_help_panel=PANEL)
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation))
    return params


def settings_from_flags(values: dict[str, Any]) -> AskOptions:
    """The AskOptions the flags describe; a value out of range ends the command with one line naming its flag."""
    values = dict(values)
    for field_name, (param, _) in INVERTED.items():
        if param in values:
            values[field_name] = not values.pop(param)
    try:
        return AskOptions(**values)
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
