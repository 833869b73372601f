"""What an eval run is (EvalPlan) and one sample's run: the work listed once, each item run, scored and stored.

The eval graph (graphs/eval.py) calls these: `plan_work` loads every benchmark, picks the same items for
every regime, writes their images into the run folder and lists the work not yet done; `run_item`
runs one (regime, sample), scores it, stores its trace and appends its record at once.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from pydantic import BaseModel

from agent import telemetry_spans
from agent.prompts import PROMPTS_VERSION
from agent.settings import AskOptions, InputError
from agent.trace import MODES, ExtractStep, ReasonStep, Result
from evals.manifest import Agent, manifest
from evals.benchmarks import get_benchmark, to_sample
from evals.records import SampleRecord, record_key
from evals.sampling import subsample
from evals.scoring import score
from evals.sources import load_rows
from tools.files.data_files import image_bytes
from evals.run_store import RunStore
from tools.files.folders import safe_name
from tools.images.pixels import ImageError


@dataclass(frozen=True)
class BenchSpec:
    name: str
    path: str | None = None

    @classmethod
    def parse(cls, text: str) -> BenchSpec:
        """`NAME` (from the hub) or `NAME=PATH` (a local file or folder)."""
        name, _, path = text.partition("=")
        get_benchmark(name)
        return cls(name=name.strip().lower(), path=path.strip() or None)


@dataclass
class EvalPlan:
    benches: list[BenchSpec]
    modes: list[str]
    out: Path
    reasoner: str
    perceiver: str
    settings: AskOptions = field(default_factory=AskOptions)
    split: str | None = None
    limit: int | None = None
    seed: int = 0
    concurrency: int = 1
    restart: bool = False
    resume: bool = False
    all_sources: bool = False  # VMCBench: also the 14 sources outside the paper's six (reported apart)
    retry_errors: bool = True  # run again the samples whose record is an error
    shard: tuple[int, int] | None = None  # (K, N): this machine runs the K-th of N deterministic parts


def parse_shard(text: str) -> tuple[int, int]:
    """`K/N` with 1 <= K <= N: the K-th of N parts of the items."""
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard '{text}' is not K/N (for example 1/4)") from None
    if n < 1 or not 1 <= k <= n:
        raise ValueError(f"--shard '{text}': K must be between 1 and N (for example 1/4 ... 4/4)")
    return k, n


def in_shard(benchmark: str, sample_id: str, shard: tuple[int, int] | None) -> bool:
    """Deterministic split by sample (all regimes of a sample stay together, sharing its image); pass a
    question group as `sample_id` to keep its rows (HR-Bench's option cycles) together too."""
    if shard is None:
        return True
    digest = hashlib.sha256(f"{benchmark}/{sample_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % shard[1] == shard[0] - 1


def settings_hash(plan: EvalPlan, regime: str) -> str:
    """What makes a record: the models and every setting its regime uses (direct needs no reasoner)."""
    settings = regime_settings(plan.settings, regime).as_dict()
    made_by = {"perceiver": plan.perceiver, "prompts_version": PROMPTS_VERSION}
    if regime == "direct":
        made_by["settings"] = {k: settings[k] for k in ("perceiver_max_new_tokens", "max_pixels")}
    else:
        made_by.update(reasoner=plan.reasoner, settings=settings, seed=plan.seed)
    return hashlib.sha256(json.dumps(made_by, sort_keys=True).encode()).hexdigest()[:12]


LOOK = "iterative+look"  # the iterative regime with a first look (--first-look caption), reported apart
EVAL_REGIMES = (*MODES, LOOK)


def regime_settings(settings: AskOptions, regime: str) -> AskOptions:
    """The ask settings of one regime: `iterative+look` is the iterative graph with a caption first look."""
    return replace(settings, first_look="caption" if regime == LOOK else "none")


def graph_mode(regime: str) -> str:
    return "iterative" if regime == LOOK else regime


class WorkItem(BaseModel):
    """One (regime, sample) to run: text and an image path only."""

    regime: str
    benchmark: str
    sample_id: str
    question: str
    options: list[str]
    gold: str
    category: str
    l2_category: str | None = None
    cycle: int | str | None = None
    option_order: list[int] | None = None
    image_path: str | None = None
    load_error: str | None = None
    settings_hash: str | None = None

    @property
    def key(self) -> str:
        return f"{record_key(self.regime, self.benchmark, self.sample_id)}#{self.settings_hash or ''}"


_MAGIC = [(b"\x89PNG", ".png"), (b"\xff\xd8", ".jpg"), (b"GIF8", ".gif"), (b"RIFF", ".webp"), (b"BM", ".bmp")]


def _extension(data: bytes) -> str:
    return next((ext for magic, ext in _MAGIC if data.startswith(magic)), ".img")


def plan_work(plan: EvalPlan, store: RunStore, agent: Agent) -> list[WorkItem]:
    """Load and subsample every benchmark, open the run folder, return the items not done yet."""
    loaded = {spec.name: load_rows(get_benchmark(spec.name), spec.path, plan.split) for spec in plan.benches}
    hashes = {regime: settings_hash(plan, regime) for regime in plan.modes}
    store.open(manifest(plan, loaded, agent, hashes), restart=plan.restart, resume=plan.resume)
    store.retry_errors = plan.retry_errors
    items: list[WorkItem] = []
    for spec in plan.benches:
        items.extend(_bench_items(plan, store, spec, loaded[spec.name]))
    hashes = {regime: settings_hash(plan, regime) for regime in plan.modes}
    items = [item.model_copy(update={"settings_hash": hashes.get(item.regime)}) for item in items]
    return [item for item in items if not store.is_done(item.key)]


def _bench_items(plan: EvalPlan, store: RunStore, spec: BenchSpec, loaded) -> list[WorkItem]:
    bench = get_benchmark(spec.name)
    samples, broken = [], []
    for row in loaded.rows:
        try:
            sample = to_sample(bench, row, plan.seed)
        except (KeyError, ValueError, TypeError) as exc:
            broken.append(_broken_item(bench.name, row, f"bad row: {exc}"))
            continue
        if plan.all_sources or bench.in_scope(sample.category):
            samples.append((sample, row.get("image")))
    chosen = {s.id for s in subsample([s for s, _ in samples], plan.limit, plan.seed)}
    groups = {s.id: s.group or s.id for s, _ in samples}
    chosen = {i for i in chosen if in_shard(bench.name, groups[i], plan.shard)}
    broken = [b for b in broken if in_shard(bench.name, b.sample_id, plan.shard)]
    items = []
    for sample, image in samples:
        if sample.id not in chosen:
            continue
        image_path, error = _write_image(store, bench.name, sample.id, image, loaded.base_dir)
        for regime in plan.modes:
            items.append(WorkItem(regime=regime, benchmark=bench.name, sample_id=sample.id,
                                  question=sample.question, options=sample.options, gold=sample.answer,
                                  category=sample.category, l2_category=sample.l2_category,
                                  cycle=sample.cycle, option_order=sample.option_order,
                                  image_path=image_path, load_error=error))  # fmt: skip
    return items + [item.model_copy(update={"regime": r}) for item in broken for r in plan.modes]


def _broken_item(bench: str, row: dict, error: str) -> WorkItem:
    sample_id = str(row.get("index", row.get("question_id", "?")))
    return WorkItem(regime="", benchmark=bench, sample_id=sample_id, question="", options=[],
                    gold="", category=str(row.get("category", "")), load_error=error)


def _write_image(store: RunStore, bench: str, sample_id: str, value, base_dir) -> tuple[str | None, str | None]:
    try:
        data = image_bytes(value, base_dir)
    except ValueError as exc:
        return None, f"image: {exc}"
    path = store.root / "images" / bench / (safe_name(sample_id) + _extension(data))
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return str(path), None


def run_item(item: WorkItem, plan: EvalPlan, store: RunStore, agent: Agent) -> SampleRecord:
    """Run, score and store one item; any failure becomes an error record and the run goes on."""
    base = {"regime": item.regime, "benchmark": item.benchmark, "sample_id": item.sample_id,
            "category": item.category, "l2_category": item.l2_category, "gold": item.gold,
            "settings_hash": item.settings_hash, "cycle": item.cycle, "option_order": item.option_order}
    if item.load_error:
        record = SampleRecord(**base, status="error", error=item.load_error, retryable=False)
    else:
        try:
            with telemetry_spans.sample_span(sample_id=item.sample_id, regime=item.regime, benchmark=item.benchmark):
                result = agent.ask(item.question, [item.image_path], item.options or None,
                                   mode=graph_mode(item.regime), settings=regime_settings(plan.settings, item.regime))
            record = _scored(base, item, result, store)
        except Exception as exc:  # noqa: BLE001 - a failed sample is recorded with its reason
            record = SampleRecord(**base, status="error", error=f"{type(exc).__name__}: {exc}",
                                  retryable=not isinstance(exc, (InputError, ImageError)))
    store.append(record)
    return record


def _scored(base: dict, item: WorkItem, result: Result, store: RunStore) -> SampleRecord:
    trace = f"traces/{item.regime}/{item.benchmark}/{safe_name(item.sample_id)}.json"
    store.write_trace(trace, result.model_dump_json(indent=1))
    outcome = score(result.final_output, item.options, item.gold)
    reasons = [s for s in result.steps if isinstance(s, ReasonStep)]
    extracts = [s for s in result.steps if isinstance(s, ExtractStep)]
    return SampleRecord(
        **base, pred=outcome.pred, correct=outcome.correct, method=outcome.method,
        raw_output=result.final_output, extraction_calls=result.extraction_calls,
        thinking_tokens=sum(s.thinking_tokens for s in reasons),
        visible_tokens=sum(s.output_tokens - s.thinking_tokens for s in reasons),
        perceiver_tokens=sum(s.output_tokens for s in extracts), seconds=result.seconds, trace=trace,
        cached_tokens=sum(s.cached_tokens for s in result.steps), **tool_use(result),
    )  # fmt: skip


def tool_use(result: Result) -> dict:
    """How the iterative loop used its tool: calls written, malformed or refused ones, regions, repairs."""
    turns = [s for s in result.steps if isinstance(s, ReasonStep) and s.purpose == "iterate"]
    calls = [s for s in result.steps if isinstance(s, ExtractStep) and s.purpose == "extract"]
    return {
        "tool_calls": sum(len(s.tool_calls) + len(s.tool_errors) for s in turns),
        "invalid_calls": sum(len(s.tool_errors) for s in turns) + sum(s.error is not None for s in calls),
        "used_region": any(s.region is not None and s.error is None for s in calls),
        "repaired_boxes": sum(bool(s.repairs) for s in calls),
        "budget_spent": result.budget_spent,
    }


def default_concurrency(agent, device: str) -> int:
    """32 where batching pays (a GPU, a server, vLLM), 4 on CPU (enough to fill small batches)."""
    from tools.backends.loading import Placement

    kinds = {getattr(getattr(m, "spec", None), "kind", "") for m in (agent.reasoner, agent.perceiver)}
    if kinds & {"http", "vllm"} or Placement(device=device).resolve()[0].startswith("cuda"):
        return 32
    return 4
