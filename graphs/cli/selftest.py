"""`xthink selftest`: check an install offline by running every regime on tiny random-weight models.

The models are built with `tools.tiny.models` into a temporary folder and loaded through the same
`from_pretrained` path as real checkpoints. Random weights say nothing about quality; what passes is
the machinery: templates, generate, parsing, the perception tool, every graph and the result schema.
"""

from __future__ import annotations

import tempfile
import time
import traceback
from pathlib import Path

import typer
from rich.console import Console

from agent.trace import MODES, Result
from graphs.cli.common import EXIT_INPUT, fail

EXPECTED_FIRST_STEP = {
    "iterative": ("reason", "iterate"),
    "extract": ("reason", "observe"),
    "caption": ("extract", "caption"),
    "direct": ("extract", "direct"),
}


def selftest_command(
    keep: Path | None = typer.Option(None, help="build the tiny models in this folder and keep them"),
    device: str = typer.Option("cpu", help="cpu, or auto/cuda to check the GPU path (bfloat16)"),
) -> None:
    """Build tiny random-weight models offline and run every regime end to end; exit 0 only if all pass."""
    ok = run_selftest(Console(), keep, device)
    raise typer.Exit(0 if ok else 1)


def _image(path: Path) -> Path:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (96, 64), "white")
    ImageDraw.Draw(img).rectangle((10, 10, 50, 50), fill="red")
    img.save(path)
    return path


def check_result(result: Result, mode: str) -> str | None:
    """Why a selftest result is wrong, or None when it has the shape its regime must have."""
    if not result.steps:
        return "no steps were recorded"
    first = (result.steps[0].kind, result.steps[0].purpose)
    if first != EXPECTED_FIRST_STEP[mode]:
        return f"first step is {first}, expected {EXPECTED_FIRST_STEP[mode]}"
    if mode in ("extract", "caption") and [s.kind for s in result.steps][-2:] != ["extract", "reason"]:
        return "a single-pass run must end with an extraction and then the reasoner's answer"
    if Result.model_validate_json(result.model_dump_json()) != result:
        return "the result does not survive a JSON round trip"
    return None


KEEP_MARKER = "selftest.png"


def claim_keep(keep: Path) -> None:
    """`--keep DIR` overwrites models/, selftest.png, demo_trace.json and trace.html: only in a new or empty
    folder, or one an earlier selftest kept (it holds selftest.png); anything else is the user's mistake."""
    from tools.files.folders import NotOurFolderError, claim_folder

    try:
        claim_folder(keep, "--keep", "a selftest folder", marker=KEEP_MARKER)
    except NotOurFolderError as exc:
        fail(str(exc), EXIT_INPUT)


def run_selftest(console: Console, keep: Path | None = None, device: str = "cpu") -> bool:
    """Every perceiver family x every regime, a table of the outcomes, and with --keep the demo trace."""
    from rich.table import Table

    from graphs.api import AskOptions, ExtractThink
    from tools.backends.loading import quiet_transformers
    from tools.tiny.models import build_all

    quiet_transformers()
    if keep:
        claim_keep(Path(keep))
    with tempfile.TemporaryDirectory(prefix="xthink-selftest-") as tmp:
        root = Path(keep) if keep else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        image = _image(root / KEEP_MARKER)  # first: it marks the folder as a selftest's
        started = time.perf_counter()
        models = build_all(root / "models")
        console.print(f"built tiny models in {time.perf_counter() - started:.1f}s under {root / 'models'}")
        settings = AskOptions(greedy=True, max_new_tokens=24, thinking_budget=16, perceiver_max_new_tokens=16)
        table = Table("perceiver", "mode", "status", "steps", "seconds")
        ok = True
        for family, perceiver in models.perceivers.items():
            agent = ExtractThink(reasoner=str(models.reasoner), perceiver=str(perceiver), device=device)
            for mode in MODES:
                status, steps, seconds = _run_one(agent, image, mode, settings)
                ok &= status == "pass"
                table.add_row(family, mode, status, str(steps), f"{seconds:.2f}")
        console.print(table)
        if keep:
            ok &= _demo(console, models, root, device)
        console.print("[bold green]selftest passed[/]" if ok else "[bold red]selftest FAILED[/]")
        return ok


def _run_one(agent, image: Path, mode: str, settings) -> tuple[str, int, float]:
    started = time.perf_counter()
    try:
        result = agent.ask("What colour is the square?", [image], ["red", "blue"], mode=mode, settings=settings)
    except Exception as exc:  # noqa: BLE001 - a selftest reports every failure instead of stopping
        traceback.print_exc()
        return f"error: {exc}", 0, time.perf_counter() - started
    problem = check_result(result, mode)
    return ("pass" if problem is None else problem), len(result.steps), time.perf_counter() - started


DEMO_SCRIPT = (
    ("I cannot see the image; I need the colour of the square.", {"request": "the colour of the square"}),
    ("Zoom into the square to be sure of its colour.",
     {"request": "the colour and edges of the square", "region": [0.05, 0.1, 0.6, 0.85]}),
)


def _demo(console: Console, models, root: Path, device: str) -> bool:
    """A steered iterative run (two extractions, one with a region) saved as demo_trace.json and trace.html.

    With random weights the reasoner would stop after one turn; forced decoding walks it through the loop
    so a newcomer sees the tool calls, the crops and the trace page.
    """
    from evals.viewer.page import write_page
    from graphs.api import AskOptions, ExtractThink
    from tools.backends.hf_reasoner import TransformersReasoner
    from tools.tiny.forced import Script, think, tool_call

    turns = [think(thought) + tool_call(**args) for thought, args in DEMO_SCRIPT]
    script = Script(*turns, think("The descriptions say the square is red.") + "The square is red.\nAnswer: A")
    reasoner = TransformersReasoner(str(models.reasoner), extra_logits_processors=script)
    perceiver = str(models.perceivers.get("llava_onevision", next(iter(models.perceivers.values()))))
    agent = ExtractThink(reasoner=reasoner, perceiver=perceiver, device=device)
    settings = AskOptions(greedy=True, perceiver_max_new_tokens=24, thinking_budget=64, max_new_tokens=96)
    try:
        result = agent.ask("What colour is the square?", [root / "selftest.png"], ["red", "blue"], settings=settings)
    except Exception:  # noqa: BLE001 - the selftest reports every failure instead of stopping
        traceback.print_exc()
        return False
    trace = root / "demo_trace.json"
    trace.write_text(result.model_dump_json(indent=2))
    page = write_page([trace], root / "trace.html")
    console.print(f"demo: {result.extraction_calls} extractions (one zoomed), answer {result.answer}; "
                  f"trace {trace}, page {page}", markup=False, highlight=False)
    return result.extraction_calls == 2 and result.answer == "A"
