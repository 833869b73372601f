"""What a trace page shows, gathered from a Result JSON or from run folders into one JSON document.

The page is self-contained: every trace, every table and every image travels inside it, so it opens
from `file://` with no network. Images are downscaled JPEG data URIs within a per-image cap and a
per-page cap (IMAGE_SIDE, IMAGE_BYTES, PAGE_IMAGE_BYTES); boxes are drawn in normalised coordinates,
so they land in the same place on the smaller image. Long thinking is clipped (THINKING_CHARS) so a
full paper run (about 10,000 records) stays a page a browser opens in seconds.

A page is a file people pass around, so what it embeds is bounded by what it was built from: a run folder's
page embeds only files inside that run folder (a trace that names /etc/passwd or ~/private.jpg gets a
placeholder saying why it was not embedded, never the file); a page for one trace embeds the images its
answer used, wherever they are (the user named that trace), and lists those files in the page. A thread's
page (a conversation read from a checkpoint database) embeds only files of the image store whose name is the
sha256 of their bytes: a database is data anyone may have written, so a path it names is never trusted.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from agent.trace import Result
from evals.records import SampleRecord
from evals.report import Report, build_report, run_records
from tools.files.folders import safe_name
from tools.images.store import STORE_FILE

IMAGE_SIDE = 768  # longest side of an embedded image, in pixels
IMAGE_BYTES = 120_000  # at most this many JPEG bytes per image (smaller sides and lower quality until it fits)
PAGE_IMAGE_BYTES = 60_000_000  # all images of one page together; past it the per-image cap shrinks
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


def _item(key: str, benchmark: str, sample_id: str, category: str, result: Result | None, images: "Images",
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


class Images:
    """Embeds each image once, as a downscaled JPEG data URI, within the per-image and per-page caps.

    `confined`: only files inside the folders the page is built from (a run page); `listed`: record every
    embedded file's path in the page (an answer page, whose trace may name files anywhere); `store`: only
    content-addressed files of this image store (a thread page, whose paths come from a database).
    """

    def __init__(self, page: PageData, budget_images: int, confined: bool = False, listed: bool = False,
                 store: Path | None = None):
        self.page = page
        self.cap = max(8_000, min(IMAGE_BYTES, PAGE_IMAGE_BYTES // max(budget_images, 1)))
        self.used = 0
        self.confined, self.listed, self.store = confined, listed, store
        self._by_path: dict[str, tuple[str | None, str | None]] = {}
        self._checked: dict[str, Path | str] = {}  # store pages: each path a thread names, checked (hashed) once
        self._noted: set[str] = set()

    def add(self, path: str, roots: list[Path], benchmark: str, sample_id: str) -> tuple[str | None, str | None]:
        """(image id, None) when embedded, else (None, why it was not)."""
        if self.store is not None:
            if path not in self._checked:
                self._checked[path] = _store_file(path, self.store)
            found = self._checked[path]
        else:
            found = _find_image(path, roots, benchmark, sample_id, self.confined)
        if isinstance(found, str):
            note = f"image {found}: {path}"
            if note not in self._noted:  # a thread names its images again on every turn: one note each
                self._noted.add(note)
                self.page.notes.append(note)
            return None, found
        key = str(found.resolve())
        if key not in self._by_path:
            self._by_path[key] = self._embed(found)
        return self._by_path[key]

    def _embed(self, found: Path) -> tuple[str | None, str | None]:
        if self.used >= PAGE_IMAGE_BYTES:
            return None, "the page's image budget is spent"
        uri = encode_image(found, self.cap)
        if uri is None:
            return None, "not a readable image"
        self.used += len(uri)
        image_id = f"i{len(self.page.images)}"
        self.page.images[image_id] = uri
        if self.listed:
            self.page.embedded.append(str(found.resolve()))
        return image_id, None


def _find_image(path: str, roots: list[Path], benchmark: str, sample_id: str, confined: bool) -> Path | str:
    """The file to embed for a trace's image path, or why there is none (`confined`: inside `roots` only)."""
    candidates = [Path(path)] + [root / Path(path).name for root in roots]
    for root in roots:
        folder = root / "images" / benchmark
        candidates += [folder / Path(path).name, *sorted(folder.glob(safe_name(sample_id) + ".*"))]
    existing = [c for c in candidates if c.is_file()]
    if not existing:
        return "not found"
    if not confined:
        return existing[0]
    inside = [c for c in existing if any(c.resolve().is_relative_to(r.resolve()) for r in roots)]
    return inside[0] if inside else "outside the run folder"


def _store_file(path: str, store: Path) -> Path | str:
    """The image store's file for a path a database names, or why it is not one: it must sit directly in the
    store, be named `<sha256>.<ext>`, and hold exactly the bytes its name says (no symlink or other file)."""
    candidate = Path(path)
    if not STORE_FILE.fullmatch(candidate.name):
        return "not an image store file"
    inside = Path(store) / candidate.name
    if candidate.parent.resolve() != Path(store).resolve() or inside.is_symlink() or not inside.is_file():
        return f"not in the image store {store} (set XTHINK_IMAGE_STORE as when chatting)"
    if hashlib.sha256(inside.read_bytes()).hexdigest() != candidate.name.split(".")[0]:
        return "its bytes do not match its name in the image store"
    return inside


def encode_image(path: Path, cap: int) -> str | None:
    """A JPEG data URI of the image, longest side at most IMAGE_SIDE, at most `cap` bytes."""
    try:
        with Image.open(path) as img:
            img.draft("RGB", (IMAGE_SIDE, IMAGE_SIDE))  # JPEG: decode at a reduced scale, fast for 8K files
            rgb = img.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    side = IMAGE_SIDE
    while side >= 96:
        small = rgb.copy()
        small.thumbnail((side, side))
        for quality in (80, 65, 50):
            buf = io.BytesIO()
            small.save(buf, "JPEG", quality=quality)
            if buf.tell() <= cap:
                return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()
        side = int(side * 0.7)
    return None
