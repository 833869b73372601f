"""scripts/bench_gpu.py --tiny: the GPU benchmark's code path, run on CPU so it cannot rot unnoticed.

No timing is asserted (the CI machine is shared); the JSON's structure is, and that each phase measured what
it was asked to (every reasoner request decoded exactly its token limit, the perceiver reused its image).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_tiny() -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "scripts/bench_gpu.py", "--tiny"], check=False, cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def positive(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def test_bench_gpu_tiny_prints_every_figure():
    out = run_tiny()
    assert out["tiny"] is True and out["device"] == "cpu"
    assert positive(out["bandwidth_gb_per_s"]) and positive(out["reasoner"]["weight_bytes"])

    batch1 = out["batch1"]
    assert batch1["tokens"] == 32
    for key in ("tokens_per_s", "roofline_tokens_per_s", "forward_ms_per_token", "fraction_of_roofline"):
        assert positive(batch1[key]), key
    assert isinstance(out["diagnosis"], str) and "roofline" in out["diagnosis"]

    assert [level["requests"] for level in out["concurrent"]] == [1, 8, 32, 64]
    for level in out["concurrent"]:
        assert level["tokens_each"] == [8], level  # end-of-turn masked: every request decodes its limit
        assert level["total_tokens"] == 8 * level["requests"]
        assert sum(level["batches"]) == level["requests"] and positive(level["tokens_per_s"])
    assert max(out["concurrent"][-1]["batches"]) > 1  # the engine batched concurrent callers

    vision = out["perceiver"]
    assert vision["image"] == [1024, 768]
    assert positive(vision["first_s"]) and positive(vision["followup_s"]) and positive(vision["decode_tokens_per_s"])
    assert 0 < vision["followup_cached_tokens"] < vision["followup_prompt_tokens"]  # the image part reused

    projection = out["projection"]
    assert projection["items"] > 1500 and len(projection["regimes"]) == 4
    assert positive(projection["total_hours"]) and projection["assumptions"]
    assert projection["total_hours"] == pytest.approx(projection["reasoner_hours"] + projection["perceiver_hours"])
    assert out["peak_memory"]["kind"] == "cpu_max_rss" and positive(out["peak_memory"]["gb"])
