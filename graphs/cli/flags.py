"""The flags several `xthink` commands share, each declared once: the models, where they run, the engine
knobs and telemetry. The generation settings are graphs/cli/settings.py's (one flag per AskOptions field).

Commands use them as `reasoner: str | None = flags.reasoner()`, so ask, chat, eval and serve cannot drift
apart in a flag's name, default or help. Engine flags take their defaults from EngineOptions.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import typer

from tools.backends.options import EngineOptions

MODEL_FORMS = "hub id, local folder, vllm:MODEL or server URL"


def reasoner() -> Any:
    """`--reasoner`: one model string (tools/backends/spec.py parses it)."""
    return typer.Option(None, help=f"reasoner LLM: {MODEL_FORMS}")


def perceiver() -> Any:
    """`--perceiver`: one model string (tools/backends/spec.py parses it)."""
    return typer.Option(None, help=f"perception VLM: {MODEL_FORMS}")


def pair() -> Any:
    """`--pair`: the paper's pairs (agent/settings.py PAIRS); --reasoner and --perceiver win over it."""
    return typer.Option(None, help="the paper's pair: small (0.6B/1.7B) or large (1.7B/4B)")


def device() -> Any:
    """`--device` for a command that loads the reasoner and the perceiver in this process."""
    return typer.Option("auto", help="auto | cpu | cuda | cuda:N")


def dtype() -> Any:
    """`--dtype` for every command that loads models in this process."""
    return typer.Option("auto", help="auto | float32 | bfloat16 | float16")


def otel() -> Any:
    """`--otel-endpoint`, the same on every command that runs the agent."""
    return typer.Option(None, "--otel-endpoint", help="export OpenTelemetry traces to this OTLP/HTTP URL, e.g. "
                        "http://127.0.0.1:6006 for Phoenix (default: OTEL_EXPORTER_OTLP_ENDPOINT)")


def engine(name: str, help: str, **limits) -> Any:
    """`--name` for an EngineOptions field, its default the field's (eval and serve share them)."""
    default = next(f.default for f in fields(EngineOptions) if f.name == name)
    if isinstance(default, float) and default.is_integer():
        default = int(default)  # the help shows [default: 2048]; a float flag still hands the command a float
    return typer.Option(default, "--" + name.replace("_", "-"), help=help, **limits)
