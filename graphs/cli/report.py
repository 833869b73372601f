"""`xthink report DIR...`: every report regenerated from the stored records alone (tables, plots, the page).

Reports are never edited by hand or kept as state: `xthink eval` prints the same report, and this command
writes it again from the records, for one run or several side by side.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console

from graphs.cli.common import EXIT_INPUT, fail


def report_command(
    dirs: list[Path] = typer.Argument(..., metavar="DIR [DIR...]", help="run folders made by xthink eval"),
    json_out: bool = typer.Option(False, "--json", help="print the table as JSON rows"),
    out: Path | None = typer.Option(None, help="write the report files here (default: DIR/report for one DIR)"),
) -> None:
    """Regenerate every report from the stored records alone."""
    from evals.report import REPORT_FILES, ReportError, build_report, to_markdown, write_report
    from tools.files.folders import NotOurFolderError, claim_folder

    try:
        report = build_report(list(dirs))
        target = out or (dirs[0] / "report" if len(dirs) == 1 else None)
        if out is not None:  # overwrite only a report's own files, in a folder that holds nothing else
            claim_folder(out, "--out", "a report folder", own_names=REPORT_FILES)
    except (ReportError, NotOurFolderError) as exc:
        fail(str(exc), EXIT_INPUT)
    if target is not None and target.exists() and not target.is_dir():
        fail(f"'{target}' is a file; pass --out with a folder for the report files", EXIT_INPUT)
    if target is not None:
        write_report(report, target)
        _write_index(list(dirs), target, report)
    if json_out:
        sys.stdout.write(json.dumps(report.json_rows(), indent=2) + "\n")
    else:
        Console().print(to_markdown(report), markup=False, highlight=False)


def _write_index(dirs: list[Path], target: Path, report) -> None:
    """`report/index.html`: the run's page (xthink view), next to the tables and plots just written."""
    from evals.viewer.page import write_page

    write_page(dirs, target / "index.html", report=report, plots_dir=target)
