"""`xthink export RUN --format lmms-eval|csv`: a run's records in the layout other tools read.

The writers are evals/export.py; this command picks one and its default place under RUN/export/.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from graphs.cli.common import EXIT_INPUT, fail


def export_command(
    run: Path = typer.Argument(..., metavar="RUN", help="a run folder made by xthink eval"),
    fmt: str = typer.Option(..., "--format", help="lmms-eval (its --log_samples JSONL: one "
                            "<run>_samples_<benchmark>_<regime>.jsonl per pair, in a folder) or csv (one row per "
                            "record)"),
    out: Path | None = typer.Option(None, "--out", help="folder (lmms-eval) or file (csv); default: "
                                       "RUN/export/lmms-eval or RUN/export/records.csv"),
) -> None:
    """Write a run's records for other tools: lmms-eval's per-sample logs, or a CSV.

    lmms-eval writes one samples file per task; here a task is a (benchmark,
    regime) pair, so no file holds two answers to a document. Each line:
    doc_id, target, resps, filtered_resps (the extracted letter), exact_match,
    doc_hash, input (question and options), plus regime, category, method,
    extraction_calls.
    """
    from evals.export import FORMATS, ExportError, export_csv, export_lmms_eval

    if fmt not in FORMATS:
        fail(f"unknown --format '{fmt}'; choose {' or '.join(FORMATS)}", EXIT_INPUT)
    try:
        if fmt == "csv":
            written = export_csv(run, out or run / "export" / "records.csv")
        else:
            written = export_lmms_eval(run, out or run / "export" / "lmms-eval")
    except ExportError as exc:
        fail(str(exc), EXIT_INPUT)
    for path in written:
        Console().print(f"wrote {path}", markup=False, highlight=False)
