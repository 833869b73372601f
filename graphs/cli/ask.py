"""`xthink ask IMAGE... QUESTION`: one question, each step printed as it happens (or one JSON object)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console

from agent.trace import MODES
from graphs.cli import flags
from graphs.cli.common import EXIT_INPUT, EXIT_MODEL, EXIT_SERVER, claim_trace_file, fail, start_telemetry
from graphs.cli.settings import with_settings


@with_settings()
def ask_command(
    args: list[str] = typer.Argument(..., metavar="IMAGE [IMAGE...] QUESTION", help="image files, then the question"),
    option: list[str] = typer.Option([], "--option", "-o", help="a multiple-choice option; repeat for A, B, ..."),
    mode: str = typer.Option("iterative", "--mode", "-m", help="iterative | extract | caption | direct"),
    reasoner: str | None = flags.reasoner(),
    perceiver: str | None = flags.perceiver(),
    pair: str | None = flags.pair(),
    json_out: bool = typer.Option(False, "--json", help="print one JSON object (answer, mode, steps, ...)"),
    trace_out: Path | None = typer.Option(None, "--trace-out", help="write the full result JSON here"),
    request: str | None = typer.Option(None, help="precomputed 'contents to observe' request (extract mode)"),
    device: str = flags.device(),
    dtype: str = flags.dtype(),
    otel_endpoint: str | None = flags.otel(),
    settings=None,  # AskOptions from the generation-setting flags (graphs/cli/settings.py)
) -> None:
    """Answer a question about one or more images, showing each step as it happens."""
    from graphs.api import InputError, resolve_models

    if len(args) < 2:
        fail("pass at least one image and then the question: xthink ask IMAGE QUESTION", EXIT_INPUT)
    if mode not in MODES:
        fail(f"unknown mode '{mode}'; choose one of {', '.join(MODES)}", EXIT_INPUT)
    try:
        reasoner, perceiver = resolve_models(pair, reasoner, perceiver)
    except InputError as exc:
        fail(str(exc), EXIT_INPUT)
    if trace_out is not None:
        claim_trace_file(trace_out)  # before the models load: never overwrite a user's file
    start_telemetry(otel_endpoint)
    result = _run_ask(
        args[:-1], args[-1], option, mode, reasoner, perceiver, request, settings, device, dtype, json_out,
    )  # fmt: skip
    if trace_out is not None:
        trace_out.parent.mkdir(parents=True, exist_ok=True)
        trace_out.write_text(result.model_dump_json(indent=2))
    if json_out:
        sys.stdout.write(result.model_dump_json(indent=2) + "\n")


def _run_ask(images, question, options, mode, reasoner, perceiver, request, settings, device, dtype, quiet):
    """Stream the run, printing each step unless `quiet` (--json); a user's mistake is one line and its code."""
    from agent.trace import Result
    from graphs.api import ExtractThink, InputError
    from graphs.cli.render import print_result, print_step
    from tools.backends.http_client import EndpointError
    from tools.backends.loading import ModelLoadError, quiet_transformers
    from tools.backends.spec import ModelSpecError
    from tools.images.pixels import ImageError

    quiet_transformers()
    out = Console()
    try:
        agent = ExtractThink(reasoner=reasoner, perceiver=perceiver, device=device, dtype=dtype)
        index = 0
        for event in agent.stream(question, images, options, mode, request, settings):
            if isinstance(event, Result):
                if not quiet:
                    print_result(out, event)
                return event
            index += 1
            if not quiet:
                print_step(out, index, event)
    except (InputError, ImageError, ModelSpecError) as exc:
        fail(str(exc), EXIT_INPUT)
    except ModelLoadError as exc:
        fail(str(exc), EXIT_MODEL)
    except EndpointError as exc:
        fail(f"model server failed: {exc}", EXIT_SERVER)
    raise RuntimeError("the run ended without a result")
