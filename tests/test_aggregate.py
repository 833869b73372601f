"""Aggregation checked against values computed by hand on a small fixture of records."""

from __future__ import annotations

import pytest

from evals.aggregate import cost_table, other_sources_table, paired, paper_table
from evals.benchmarks import MMSTAR_CATEGORIES
from evals.records import SampleRecord
from evals.stats import bootstrap_diff, mcnemar_exact


def rec(regime, bench, sid, category, correct, l2=None, **kw):
    return SampleRecord(regime=regime, benchmark=bench, sample_id=str(sid), category=category, l2_category=l2,
                        gold="A", correct=correct, method=kw.pop("method", "answer_line"), **kw)


@pytest.fixture()
def records():
    out = []
    # VMCBench, iterative: OCRVQA 1/2, TextVQA 2/2, ScienceQA 0/1, VQAv2 1/1, GQA 1/4, VizWiz 1/1; ChartQA 0/3.
    spec = {"OCRVQA": [1, 0], "TextVQA": [1, 1], "ScienceQA": [0], "VQAv2": [1], "GQA": [1, 0, 0, 0],
            "VizWiz": [1], "ChartQA": [0, 0, 0]}
    sid = 0
    for category, results in spec.items():
        for ok in results:
            out.append(rec("iterative", "vmcbench", sid, category, bool(ok)))
            sid += 1
    # MMStar, iterative: coarse perception subs 1/1, 0/2, 1/2 ; math: geometry 1/1 only.
    cp = MMSTAR_CATEGORIES["coarse perception"][1]
    for i, (sub, results) in enumerate(zip(cp, [[1], [0, 0], [1, 0]])):
        for j, ok in enumerate(results):
            out.append(rec("iterative", "mmstar", f"cp{i}{j}", "coarse perception", bool(ok), l2=sub))
    out.append(rec("iterative", "mmstar", "m0", "math", True, l2="geometry"))
    out.append(rec("iterative", "mmstar", "bad", "math", False, l2="geometry", status="error", error="boom"))
    return out


def test_paper_table_by_hand(records):
    (row,) = paper_table(records)
    # n: the paper's items only (ChartQA's 3 are outside its six sources); the failed sample is not scored.
    assert row["regime"] == "iterative" and row["n"] == 11 + 5 + 1
    assert (row["OCR-VQA"], row["TextVQA"], row["ScienceQA"], row["VQA2"], row["GQA"], row["VizWiz"]) == (
        50.0, 100.0, 0.0, 100.0, 25.0, 100.0)
    assert row["In-domain avg"] == round((50 + 100 + 0 + 100 + 25 + 100) / 6, 2)  # ChartQA excluded
    assert row["CP"] == round((100 + 0 + 50) / 3, 2)  # mean of sub-categories, not of samples (2/5 = 40)
    assert row["Math"] == 100.0 and row["FP"] is None
    assert row["MMStar avg"] == round((100 + 0 + 50 + 100) / 4, 2)  # over the sub-categories present


def test_cost_counts_failures_and_fallbacks(records):
    records.append(rec("iterative", "mmstar", "fb", "math", False, l2="geometry", method="bare_letter",
                       extraction_calls=4, seconds=2.0))
    (row,) = cost_table(records)
    assert row["samples"] == 22 and row["scored"] == 21 and row["failures"] == 1
    assert row["fallback_answers"] == 1 and row["no_answer"] == 0
    assert row["extraction_calls"] == round(4 / 21, 2) and row["seconds"] == round(2 / 21, 2)


def test_paired_comparison_on_common_items():
    recs = []
    pattern = [(1, 0)] * 6 + [(0, 1)] * 1 + [(1, 1)] * 3 + [(0, 0)] * 2
    for i, (a, b) in enumerate(pattern):
        recs.append(rec("iterative", "vmcbench", i, "GQA", bool(a)))
        recs.append(rec("caption", "vmcbench", i, "GQA", bool(b)))
    recs.append(rec("iterative", "vmcbench", 99, "GQA", True))  # no partner: left out
    rows = paired(recs)
    overall = rows[0]
    assert (overall["baseline"], overall["scope"], overall["n"]) == ("caption", "all", 12)
    assert (overall["won"], overall["lost"]) == (6, 1)
    assert overall["p_mcnemar"] == round(mcnemar_exact(6, 1), 4) == 0.125
    assert overall["diff"] == round(100 * 5 / 12, 2)
    assert overall["ci_low"] <= overall["diff"] <= overall["ci_high"]
    assert rows[1]["scope"] == "vmcbench:GQA"


@pytest.mark.parametrize("a, b, p", [(0, 0, 1.0), (5, 0, 0.0625), (3, 3, 1.0), (10, 2, 0.0385742)])
def test_mcnemar_exact(a, b, p):
    assert mcnemar_exact(a, b) == pytest.approx(p, abs=1e-6)


def test_bootstrap_is_seeded_and_brackets_the_point():
    pairs = [(True, False)] * 10 + [(False, False)] * 10
    assert bootstrap_diff(pairs, seed=3) == bootstrap_diff(pairs, seed=3)
    point, low, high = bootstrap_diff(pairs, seed=3)
    assert point == 0.5 and low < 0.5 < high


def test_other_sources_are_reported_apart(records):
    (row,) = other_sources_table(records)
    assert (row["regime"], row["n"], row["ChartQA"], row["avg"]) == ("iterative", 3, 0.0, 0.0)
    assert "ChartQA" not in paper_table(records)[0]
    assert other_sources_table([r for r in records if r.category != "ChartQA"]) == []


def test_bootstrap_interval_matches_the_normal_approximation_and_chunks_agree(monkeypatch):
    """The vectorised bootstrap: right width (about 1.96 standard errors), same result however it is chunked."""
    import math

    import evals.stats as stats

    pairs = [(True, False)] * 300 + [(False, True)] * 100 + [(True, True)] * 600
    point, low, high = bootstrap_diff(pairs, seed=1, rounds=4000)
    n = len(pairs)
    se = math.sqrt((0.4 - point**2) / n)  # var of a diff in {-1, 0, 1}: E[d^2] - E[d]^2
    assert point == pytest.approx(0.2)
    assert low == pytest.approx(point - 1.96 * se, abs=0.01) and high == pytest.approx(point + 1.96 * se, abs=0.01)
    monkeypatch.setattr(stats, "CHUNK_CELLS", 5 * n)
    assert stats.bootstrap_diff(pairs, seed=1, rounds=4000) == (point, low, high), "chunking never changes it"
    assert bootstrap_diff([(True, True)] * 50) == (0.0, 0.0, 0.0)
    assert bootstrap_diff([]) == (0.0, 0.0, 0.0)
