"""From records to the paper's table, the cost table and the paired comparison: pure functions.

Accuracies are percentages over scored samples (failed samples are counted in the cost table, not
scored). VMCBench columns are per source dataset; the in-domain average is the mean of the six
in-domain datasets present. MMStar: a category is the mean of its sub-category accuracies, the
average the mean of all sub-categories present (18 in a full run).
"""

from __future__ import annotations

from collections import defaultdict
from statistics import mean, median

from evals.benchmarks import HIGH_RES, HRBENCH_CATEGORIES, IN_DOMAIN, MMSTAR_CATEGORIES
from evals.records import SampleRecord
from evals.scoring import FALLBACK_METHODS
from evals.stats import bootstrap_diff, mcnemar_exact

VMC_COLUMNS = list(IN_DOMAIN.values())
MMSTAR_COLUMNS = [short for short, _ in MMSTAR_CATEGORIES.values()]
TABLE_COLUMNS = [*VMC_COLUMNS, "In-domain avg", *MMSTAR_COLUMNS, "MMStar avg"]
HR_COLUMNS = ["V* Attr", "V* Spatial", "V* avg", "HR4K FSP", "HR4K FCP", "HR4K avg", "HR8K FSP", "HR8K FCP",
              "HR8K avg"]
SINGLE_PASS = ("extract", "caption", "direct")
REGIME_ORDER = ("iterative", "iterative+look", "extract", "caption", "direct")


def _acc(records: list[SampleRecord]) -> float | None:
    return 100.0 * mean(r.correct for r in records) if records else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def by_regime(records: list[SampleRecord]) -> dict[str, list[SampleRecord]]:
    groups: dict[str, list[SampleRecord]] = defaultdict(list)
    for record in records:
        groups[record.regime].append(record)
    order = {m: i for i, m in enumerate(REGIME_ORDER)}
    return dict(sorted(groups.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))


def in_paper_scope(record: SampleRecord) -> bool:
    """VMCBench's 14 sources outside the paper's six are reported apart (`--all-sources`)."""
    return record.benchmark != "vmcbench" or record.category in IN_DOMAIN


def table_row(regime: str, records: list[SampleRecord]) -> dict:
    """One row of the paper's table for one regime; `n` counts the paper's items only."""
    scored = [r for r in records if r.scored and in_paper_scope(r) and r.benchmark not in HIGH_RES]
    row: dict = {"regime": regime, "n": len(scored)}
    vmc = [r for r in scored if r.benchmark == "vmcbench"]
    for source, column in IN_DOMAIN.items():
        row[column] = _acc([r for r in vmc if r.category == source])
    present = [row[c] for c in VMC_COLUMNS if row[c] is not None]
    row["In-domain avg"] = mean(present) if present else None
    star = [r for r in scored if r.benchmark == "mmstar"]
    sub_accs: list[float] = []
    for category, (column, subs) in MMSTAR_CATEGORIES.items():
        accs = [_acc([r for r in star if r.l2_category == sub]) for sub in subs]
        accs = [a for a in accs if a is not None]
        row[column] = mean(accs) if accs else None
        sub_accs.extend(accs)
    row["MMStar avg"] = mean(sub_accs) if sub_accs else None
    return {k: (_round(v) if k in TABLE_COLUMNS else v) for k, v in row.items()}


def paper_table(records: list[SampleRecord], label: str | None = None) -> list[dict]:
    rows = []
    paper = [r for r in records if r.benchmark not in HIGH_RES]
    for regime, group in by_regime(paper).items():
        row = table_row(regime, group)
        if label:
            row = {"run": label, **row}
        rows.append(row)
    return rows


def cycle_accuracy(records: list[SampleRecord]) -> float | None:
    """HR-Bench's official score: the accuracy within each option cycle, averaged over the cycles."""
    cycles: dict[int | str | None, list[SampleRecord]] = defaultdict(list)  # the cycle is an opaque label
    for record in records:
        cycles[record.cycle].append(record)
    accs = [_acc(group) for group in cycles.values() if group]
    return mean(accs) if accs else None


def vstar_column(category: str) -> str | None:
    """`V* Attr` or `V* Spatial` for a V* category as any of its layouts spells it."""
    name = category.lower()
    if "attribute" in name:
        return "V* Attr"
    if "position" in name or "spatial" in name or "relative" in name:
        return "V* Spatial"
    return None


def high_res_row(regime: str, records: list[SampleRecord]) -> dict:
    """One row of the high-resolution table: V* per category (micro average) and HR-Bench per task."""
    scored = [r for r in records if r.scored and r.benchmark in HIGH_RES]
    row: dict = {"regime": regime, "n": len(scored)}
    vstar = [r for r in scored if r.benchmark == "vstar"]
    for column in ("V* Attr", "V* Spatial"):
        row[column] = _acc([r for r in vstar if vstar_column(r.category) == column])
    row["V* avg"] = _acc(vstar)
    for bench, prefix in (("hrbench4k", "HR4K"), ("hrbench8k", "HR8K")):
        rows = [r for r in scored if r.benchmark == bench]
        for category, task in HRBENCH_CATEGORIES.items():
            row[f"{prefix} {task}"] = cycle_accuracy([r for r in rows if r.category.lower() == category])
        row[f"{prefix} avg"] = cycle_accuracy(rows)
    return {k: (_round(v) if k in HR_COLUMNS else v) for k, v in row.items()}


def high_res_table(records: list[SampleRecord], label: str | None = None) -> list[dict]:
    """The V*Bench / HR-Bench table, one row per regime (empty when none of them was run)."""
    rows = []
    for regime, group in by_regime([r for r in records if r.benchmark in HIGH_RES]).items():
        row = high_res_row(regime, group)
        rows.append({"run": label, **row} if label else row)
    return rows


def other_sources_table(records: list[SampleRecord], label: str | None = None) -> list[dict]:
    """Accuracy per VMCBench source outside the paper's six, per regime (empty when none were run)."""
    others = [r for r in records if r.scored and not in_paper_scope(r)]
    rows = []
    for regime, group in by_regime(others).items():
        row: dict = {"run": label} if label else {}
        row.update(regime=regime, n=len(group))
        for source in sorted({r.category for r in group}):
            row[source] = _round(_acc([r for r in group if r.category == source]))
        row["avg"] = _round(_acc(group))
        rows.append(row)
    return rows


def cost_row(regime: str, records: list[SampleRecord]) -> dict:
    ok = [r for r in records if r.scored]

    def avg(attr: str) -> float | None:
        return round(float(mean(getattr(r, attr) for r in ok)), 2) if ok else None

    calls = sum(r.tool_calls for r in ok)
    return {
        "regime": regime,
        "samples": len(records),
        "scored": len(ok),
        "failures": len(records) - len(ok),
        "extraction_calls": avg("extraction_calls"),
        "extraction_calls_median": float(median(r.extraction_calls for r in ok)) if ok else None,
        "region_share": round(float(mean(r.used_region for r in ok)), 3) if ok else None,
        "invalid_call_rate": round(sum(r.invalid_calls for r in ok) / calls, 3) if calls else None,
        "budget_spent_rate": round(float(mean(r.budget_spent for r in ok)), 3) if ok else None,
        "repaired_boxes": sum(r.repaired_boxes for r in ok),
        "thinking_tokens": avg("thinking_tokens"),
        "visible_tokens": avg("visible_tokens"),
        "perceiver_tokens": avg("perceiver_tokens"),
        "seconds": avg("seconds"),
        "cached_tokens": avg("cached_tokens"),
        "fallback_answers": sum(r.method in FALLBACK_METHODS for r in ok),
        "no_answer": sum(r.method == "none" for r in ok),
    }


def cost_table(records: list[SampleRecord]) -> list[dict]:
    return [cost_row(regime, group) for regime, group in by_regime(records).items()]


def scope_of(record: SampleRecord) -> str:
    """The category a record is reported under in per-category comparisons."""
    if record.benchmark == "vstar":
        return vstar_column(record.category) or f"vstar:{record.category}"
    if record.benchmark in ("hrbench4k", "hrbench8k"):
        task = HRBENCH_CATEGORIES.get(record.category.lower(), record.category)
        return f"{'HR4K' if record.benchmark == 'hrbench4k' else 'HR8K'} {task}"
    if record.benchmark == "mmstar":
        for category, (column, _) in MMSTAR_CATEGORIES.items():
            if record.category == category:
                return f"MMStar {column}"
    return f"{record.benchmark}:{IN_DOMAIN.get(record.category, record.category)}"


def paired(records: list[SampleRecord], seed: int = 0) -> list[dict]:
    """Iterative vs each single-pass regime on the items both scored: overall, then per category."""
    groups = by_regime(records)
    if "iterative" not in groups:
        return []
    iterative = {(r.benchmark, r.sample_id): r for r in groups["iterative"] if r.scored}
    rows = []
    for baseline in SINGLE_PASS:
        if baseline not in groups:
            continue
        other = {(r.benchmark, r.sample_id): r for r in groups[baseline] if r.scored}
        common = sorted(set(iterative) & set(other))
        scopes: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
        for key in common:
            pair = (iterative[key].correct, other[key].correct)
            scopes["all"].append(pair)
            scopes[scope_of(iterative[key])].append(pair)
        for scope in ["all", *sorted(s for s in scopes if s != "all")]:
            rows.append(_paired_row(baseline, scope, scopes[scope], seed))
    return rows


def _paired_row(baseline: str, scope: str, pairs: list[tuple[bool, bool]], seed: int) -> dict:
    won = sum(a and not b for a, b in pairs)
    lost = sum(b and not a for a, b in pairs)
    diff, low, high = bootstrap_diff(pairs, seed=seed)
    n = len(pairs)
    return {
        "baseline": baseline,
        "scope": scope,
        "n": n,
        "iterative_acc": round(100.0 * sum(a for a, _ in pairs) / n, 2) if n else None,
        "baseline_acc": round(100.0 * sum(b for _, b in pairs) / n, 2) if n else None,
        "won": won,
        "lost": lost,
        "p_mcnemar": round(mcnemar_exact(won, lost), 4),
        "diff": round(100.0 * diff, 2),
        "ci_low": round(100.0 * low, 2),
        "ci_high": round(100.0 * high, 2),
    }
