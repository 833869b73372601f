"""What a trace page shows, gathered from a Result JSON or from run folders into one JSON document.

The page is self-contained: every trace, every table and every image travels inside it, so it opens
from `file://` with no network. Images are embedded downscaled and only from where the page may take them
(evals/viewer/page_images.py). Long thinking is clipped (THINKING_CHARS) so a full paper run (about 10,000
records) stays a page a browser opens in seconds.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from agent.trace import Result
from evals.records import SampleRecord
from evals.report import Report, build_report, run_records
from evals.viewer.page_images import Images

THINKING_CHARS = 6000  # thinking longer than this is clipped in the page (the trace file keeps it whole)
MAX_TURNS = 500  # a thread's page shows at most its last MAX_TURNS turns (and says so)


class ViewError(ValueError):
    """A path given to `view` is neither a Result JSON nor a run folder; the message says what to pass."""


@dataclass
class PageData:
    """The document the page script renders: items with one result per (run, regime), traces, images."""

    mode: str  # "answer", "run" or "compare"
    title: str
    runs: list[str] = field(default_factory=list)
    regimes: list[str] = field(default_factory=list)
    items: list[dict] = field(default_factory=list)
    traces: dict[str, dict] = field(default_factory=dict)
    images: dict[str, str] = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    embedded: list[str] = field(default_factory=list)  # answer/thread pages: the files whose pixels the page holds

    def to_json(self) -> str:
        return json.dumps(self.__dict__, separators=(",", ":"), default=str)


def load_page(paths: list[Path], report: Report | None = None, plots_dir: Path | None = None) -> PageData:
    """A Result JSON file (one answer), one run folder, or two or more run folders to compare.

    `report` and `plots_dir` pass what `xthink report`/`eval` just built and wrote for these folders, so
    the page does not compute the tables and draw the plots a second time.
    """
    paths = [Path(p) for p in paths]
    for path in paths:
        if not path.exists():
            raise ViewError(f"'{path}' does not exist; pass a trace JSON (ask --trace-out) or a run folder")
    if len(paths) == 1 and paths[0].is_file():
        return answer_page(paths[0])
    for path in paths:
        if not (path.is_dir() and (path / "records.jsonl").exists()):
            raise ViewError(f"'{path}' is not a run folder (no records.jsonl); pass folders made by xthink eval, "
                            "or one trace JSON")
    return run_page(paths, report, plots_dir)


def answer_page(path: Path) -> PageData:
    try:
        result = Result.model_validate_json(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ViewError(f"'{path}' is not a Result/trace JSON (xthink ask --trace-out): {str(exc)[:200]}") from None
    page = PageData(mode="answer", title=result.question[:120], runs=[""], regimes=[result.mode])
    images = Images(page, budget_images=len(result.images), listed=True)
    trace_id = "t0"
    page.traces[trace_id] = slim_trace(result)
    item = _item(f"answer/{path.stem}", "", path.stem, "", result, images, [path.parent])
    item["results"] = {f"|{result.mode}": _answer_result(result, trace_id)}
    page.items.append(item)
    return page


def _answer_result(result: Result, trace_id: str) -> dict:
    reasons = [s for s in result.steps if s.kind == "reason"]
    return {"pred": result.answer, "correct": None, "status": "ok", "error": None,
            "calls": result.extraction_calls, "tokens": sum(s.output_tokens for s in result.steps),
            "seconds": round(result.seconds, 2), "budget_spent": result.budget_spent,
            "tool_errors": sum(len(s.tool_errors) for s in reasons) + sum(
                1 for s in result.steps if s.kind == "extract" and s.error), "trace": trace_id}


@dataclass(frozen=True)
class ThreadTurn:
    """One turn of a conversation as its checkpoints hold it: what the user wrote, what the assistant replied,
    and the turn's Result (None when the input could not be used or the turn has not finished)."""

    question: str
    reply: str
    result: Result | None = None
    error: str | None = None
    status: str = "ok"  # ok | error (the input was refused) | unfinished (paused, or stopped mid-turn)


def thread_page(title: str, turns: list[ThreadTurn], store_root: Path) -> PageData:
    """One card per turn, each with its trace and its images (only files of the image store at `store_root`)."""
    page = PageData(mode="thread", title=title, runs=[""])
    if len(turns) > MAX_TURNS:
        page.notes.append(f"showing the last {MAX_TURNS} of {len(turns)} turns")
    shown = list(enumerate(turns, 1))[-MAX_TURNS:]
    page.regimes = sorted({t.result.mode for _, t in shown if t.result}, key=_regime_order)
    images = Images(page, budget_images=len({i.path for _, t in shown if t.result for i in t.result.images}),
                    listed=True, store=Path(store_root))
    for number, turn in shown:
        item = _item(f"turn/{number}", "", f"turn {number}", "", turn.result, images, [])
        item.update(question=turn.question, reply=turn.reply, error=turn.error, status=turn.status)
        if turn.result is not None:
            trace_id = f"t{len(page.traces)}"
            page.traces[trace_id] = slim_trace(turn.result)
            item["results"] = {f"|{turn.result.mode}": _answer_result(turn.result, trace_id)}
        page.items.append(item)
    return page


def run_page(run_dirs: list[Path], report: Report | None = None, plots_dir: Path | None = None) -> PageData:
    names = _run_names(run_dirs)
    mode = "compare" if len(run_dirs) > 1 else "run"
    page = PageData(mode=mode, title=" vs ".join(names), runs=names)
    records = {name: run_records(d, page.notes) for name, d in zip(names, run_dirs)}
    page.regimes = sorted({r.regime for recs in records.values() for r in recs}, key=_regime_order)
    keys = sorted({(r.benchmark, r.sample_id) for recs in records.values() for r in recs})
    images = Images(page, budget_images=len(keys), confined=True)
    items: dict[tuple[str, str], dict] = {}
    for (name, run_dir) in zip(names, run_dirs):
        for record in records[name]:
            key = (record.benchmark, record.sample_id)
            result = _read_trace(run_dir, record)
            if key not in items:
                items[key] = _item(f"{key[0]}/{key[1]}", record.benchmark, record.sample_id, record.category,
                                   result, images, [run_dir], gold=record.gold)
            elif result is not None and not items[key]["question"]:
                items[key].update(_item(items[key]["key"], record.benchmark, record.sample_id, record.category,
                                        result, images, [run_dir], gold=record.gold))
            trace_id = None
            if result is not None:
                trace_id = f"t{len(page.traces)}"
                page.traces[trace_id] = slim_trace(result)
            items[key]["results"][f"{name}|{record.regime}"] = _record_result(record, trace_id)
    page.items = [items[k] for k in sorted(keys, key=_natural)]
    page.summary = _summary(run_dirs, report, plots_dir)
    return page


def _natural(key: tuple[str, str]) -> tuple:
    """Benchmark, then the id with its numbers compared as numbers (2 before 10)."""
    parts = re.split(r"(\d+)", key[1])
    return key[0], [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts]


def _run_names(run_dirs: list[Path]) -> list[str]:
    names = [d.resolve().name or str(d) for d in run_dirs]
    return names if len(set(names)) == len(names) else [f"{i + 1}:{n}" for i, n in enumerate(names)]


def _regime_order(regime: str) -> tuple[int, str]:
    order = ["iterative", "iterative+look", "extract", "caption", "direct"]
    return (order.index(regime) if regime in order else len(order), regime)


def _read_trace(run_dir: Path, record: SampleRecord) -> Result | None:
    if not record.trace or not (run_dir / record.trace).exists():
        return None
    try:
        return Result.model_validate_json((run_dir / record.trace).read_text())
    except (ValueError, OSError):
        return None


def _record_result(record: SampleRecord, trace_id: str | None) -> dict:
    return {"pred": record.pred, "correct": record.correct if record.scored else None, "status": record.status,
            "error": record.error, "calls": record.extraction_calls,
            "tokens": record.thinking_tokens + record.visible_tokens + record.perceiver_tokens,
            "seconds": round(record.seconds, 2), "budget_spent": record.budget_spent,
            "tool_errors": record.invalid_calls, "method": record.method, "trace": trace_id}


def _item(key: str, benchmark: str, sample_id: str, category: str, result: Result | None, images: Images,
          roots: list[Path], gold: str | None = None) -> dict:
    refs = []
    if result is not None:
        for info in result.images:
            src, why = images.add(info.path, roots, benchmark, sample_id)
            refs.append({"id": info.id, "width": info.width, "height": info.height, "src": src, "not_embedded": why})
    return {"key": key, "benchmark": benchmark, "sample_id": sample_id, "category": category, "gold": gold,
            "question": result.question if result else "", "options": result.options if result else [],
            "images": refs, "results": {}}


def slim_trace(result: Result) -> dict:
    """The trace as the page needs it: every step, thinking clipped to THINKING_CHARS."""
    steps = []
    for step in result.steps:
        data = step.model_dump()
        if data.get("thinking") and len(data["thinking"]) > THINKING_CHARS:
            data["thinking"] = data["thinking"][:THINKING_CHARS] + f"\n[... {len(step.thinking) - THINKING_CHARS} " \
                "more characters in the trace file]"
        steps.append(data)
    return {"mode": result.mode, "answer": result.answer, "answer_found": result.answer_found,
            "final_output": result.final_output[-THINKING_CHARS:], "steps": steps, "reasoner": result.reasoner,
            "perceiver": result.perceiver, "seconds": round(result.seconds, 2),
            "extraction_calls": result.extraction_calls, "budget_spent": result.budget_spent}


def _summary(run_dirs: list[Path], report: Report | None, plots_dir: Path | None) -> dict:
    """The report's tables and plots, exactly as `xthink report` computes them for these folders."""
    import tempfile

    from evals.report import write_report

    if report is None or plots_dir is None:
        report = report or build_report(list(run_dirs))
        if report.table:  # the plots draw the paper's table; a high-resolution-only run has none
            with tempfile.TemporaryDirectory() as tmp:
                return _tables(report, _plots(p for p in write_report(report, Path(tmp)) if p.suffix == ".png"))
        return _tables(report, [])
    return _tables(report, _plots(sorted(Path(plots_dir).glob("*.png"))) if report.table else [])


def _plots(paths) -> list[str]:
    return ["data:image/png;base64," + base64.b64encode(path.read_bytes()).decode() for path in paths]


def _tables(report, plots: list[str]) -> dict:
    return {"table": report.table, "high_res": report.high_res, "cost": report.cost, "paired": report.paired,
            "other_sources": report.other_sources, "plots": plots, "notes": report.notes}
