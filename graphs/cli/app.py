"""The `xthink` command line: a thin typer layer over the Python API.

User mistakes (bad files, bad options, models that cannot load) end with one red line on stderr and a
non-zero exit, never a traceback. Exit codes: 0 ok, 1 selftest failure, 2 bad input, 3 model not loadable,
4 a model server failed during the run.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console

from agent.trace import MODES
from graphs.cli.common import EXIT_INPUT, EXIT_MODEL, EXIT_SERVER, claim_trace_file, fail, otel_option, start_telemetry
from graphs.cli.settings import with_settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Small models that see and reason.")
_fail = fail


@app.command()
@with_settings()
def ask(
    args: list[str] = typer.Argument(..., metavar="IMAGE [IMAGE...] QUESTION", help="image files, then the question"),
    option: list[str] = typer.Option([], "--option", "-o", help="a multiple-choice option; repeat for A, B, ..."),
    mode: str = typer.Option("iterative", "--mode", "-m", help="iterative | extract | caption | direct"),
    reasoner: str | None = typer.Option(None, help="reasoner LLM: hub id, local folder, vllm:MODEL or server URL"),
    perceiver: str | None = typer.Option(None, help="perception VLM: hub id, local folder, vllm:MODEL or server URL"),
    pair: str | None = typer.Option(None, help="the paper's pair: small (0.6B/1.7B) or large (1.7B/4B)"),
    json_out: bool = typer.Option(False, "--json", help="print one JSON object (answer, mode, steps, ...)"),
    trace_out: Path | None = typer.Option(None, "--trace-out", help="write the full result JSON here"),
    request: str | None = typer.Option(None, help="precomputed 'contents to observe' request (extract mode)"),
    device: str = typer.Option("auto", help="auto | cpu | cuda | cuda:N"),
    dtype: str = typer.Option("auto", help="auto | float32 | bfloat16 | float16"),
    otel_endpoint: str | None = otel_option(),
    settings=None,  # AskOptions from the generation-setting flags (graphs/cli/settings.py)
) -> None:
    """Answer a question about one or more images, showing each step as it happens."""
    from graphs.api import InputError, resolve_models

    if len(args) < 2:
        _fail("pass at least one image and then the question: xthink ask IMAGE QUESTION", EXIT_INPUT)
    if mode not in MODES:
        _fail(f"unknown mode '{mode}'; choose one of {', '.join(MODES)}", EXIT_INPUT)
    try:
        reasoner, perceiver = resolve_models(pair, reasoner, perceiver)
    except InputError as exc:
        _fail(str(exc), EXIT_INPUT)
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
        _fail(str(exc), EXIT_INPUT)
    except ModelLoadError as exc:
        _fail(str(exc), EXIT_MODEL)
    except EndpointError as exc:
        _fail(f"model server failed: {exc}", EXIT_SERVER)
    raise RuntimeError("the run ended without a result")


@app.command()
def selftest(
    keep: Path | None = typer.Option(None, help="build the tiny models in this folder and keep them"),
    device: str = typer.Option("cpu", help="cpu, or auto/cuda to check the GPU path (bfloat16)"),
) -> None:
    """Build tiny random-weight models offline and run every regime end to end; exit 0 only if all pass."""
    from graphs.cli.selftest import run_selftest

    ok = run_selftest(Console(), keep, device)
    raise typer.Exit(0 if ok else 1)


@app.command()
def schema() -> None:
    """Print the JSON schema of a run's result and trace (what --json and --trace-out write)."""
    import json

    from agent.trace import Result

    sys.stdout.write(json.dumps(Result.model_json_schema(), indent=2) + "\n")


@app.command()
def convert(
    source: str = typer.Argument(..., help="LLaVA-NeXT checkpoint: hub id (e.g. markendo/llava-extract-qwen3-0.6B) or folder"),
    dest: Path = typer.Argument(..., help="folder to write the transformers LlavaOnevision model into"),
    tokenizer: str | None = typer.Option(None, help="tokenizer to use when the checkpoint ships none"),
) -> None:
    """Convert a perception checkpoint from LLaVA-NeXT training format to transformers format."""
    from tools.backends.checkpoint_convert import convert as run_convert
    from tools.backends.llava_next_mapping import ConversionError

    looks_local = source.startswith(("/", "./", "../", "~")) or Path(source).exists()
    if looks_local and not Path(source).expanduser().is_dir():
        _fail(f"'{source}' is not a folder; pass a checkpoint folder or a hub id", EXIT_INPUT)
    if dest.exists() and not dest.is_dir():
        _fail(f"'{dest}' is a file; pass a folder to write the converted model into", EXIT_INPUT)
    try:
        report = run_convert(source, dest, tokenizer)
    except ConversionError as exc:
        _fail(str(exc), EXIT_INPUT)
    Console().print(
        f"converted {source} -> {report.dest}: {report.mapped} tensors mapped, {len(report.ignored)} unused "
        f"source tensors ignored, {len(report.filled)} filled (see conversion.json)", markup=False, highlight=False
    )


def _register_eval_commands() -> None:
    from graphs.cli.eval import eval_command, export_command, report_command

    app.command("eval")(eval_command)
    app.command("report")(report_command)
    app.command("export")(export_command)
    from graphs.cli.view import view_command

    app.command("view")(view_command)
    from graphs.cli.chat import chat_command
    from graphs.cli.serve import serve_command

    app.command("chat")(chat_command)
    app.command("serve")(serve_command)
    from graphs.cli.vet import vet_data_command, vet_train_command

    app.command("vet-data")(vet_data_command)
    app.command("vet-train")(vet_train_command)
    from graphs.cli.cache import cache_app

    app.add_typer(cache_app, name="cache")


_register_eval_commands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
