"""A synthetic eval run folder (records, traces, images, run.json) with a known correctness pattern.

For the viewer's browser tests and its size/speed benchmark: the page must show exactly the items a
filter selects, so the pattern is a pure function of the item number. Traces have the real schema
(agent.trace.Result) with reasoner turns and region extractions; no model runs.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

from PIL import Image, ImageDraw

from agent.trace import ExtractStep, ImageInfo, ReasonStep, Result, ToolCallRecord
from evals.records import SampleRecord
from tools.files.folders import safe_name

REGIMES = ("iterative", "extract", "caption", "direct")


def correct(regime: str, i: int, flip: int = 0) -> bool:
    """The pattern: iterative is right on even items, extract on multiples of 3, caption on multiples of 4,
    direct on multiples of 5; `flip` shifts iterative's pattern (a second run that disagrees)."""
    return (i + flip) % {"iterative": 2, "extract": 3, "caption": 4, "direct": 5}.get(regime, 2) == 0


def write_run(root: Path | str, items: int = 12, regimes: tuple[str, ...] = REGIMES, flip: int = 0,
              image_side: int = 96, thinking_chars: int = 400) -> Path:
    """Write a run folder of `items` MMStar-like samples under every regime; returns the folder."""
    root = Path(root)
    (root / "images" / "mmstar").mkdir(parents=True, exist_ok=True)
    (root / "run.json").write_text(json.dumps({"identity": {"synthetic": True, "flip": flip}}))
    lines = []
    for i in range(items):
        sample_id = str(i)
        image = root / "images" / "mmstar" / (safe_name(sample_id) + ".png")
        if not image.exists():
            image.write_bytes(_png(i, image_side))
        for regime in regimes:
            result = _result(regime, i, str(image), image_side, thinking_chars, flip)
            trace = f"traces/{regime}/mmstar/{safe_name(sample_id)}.json"
            (root / trace).parent.mkdir(parents=True, exist_ok=True)
            (root / trace).write_text(result.model_dump_json())
            lines.append(_record(regime, i, result, trace, flip).model_dump_json())
    (root / "records.jsonl").write_text("\n".join(lines) + "\n")
    return root


def _png(i: int, side: int) -> bytes:
    img = Image.new("RGB", (side, side * 3 // 4), "white")
    ImageDraw.Draw(img).rectangle((side // 8, side // 8, side // 2, side // 2), fill=("red", "blue", "green")[i % 3])
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _gold(i: int) -> str:
    return "ABCD"[i % 4]


def _pred(regime: str, i: int, flip: int) -> str:
    gold = _gold(i)
    return gold if correct(regime, i, flip if regime == "iterative" else 0) else "ABCD"[(i + 1) % 4]


def _result(regime: str, i: int, path: str, side: int, thinking_chars: int, flip: int) -> Result:
    pred = _pred(regime, i, flip)
    images = [ImageInfo(id="image_1", path=path, width=side, height=side * 3 // 4)]
    steps: list = []
    if regime == "iterative":
        for k, box in enumerate(([0.1, 0.1, 0.6, 0.6], [0.5, 0.2, 0.9, 0.8])[: 1 + i % 2]):
            steps.append(ReasonStep(purpose="iterate", thinking="thinking " * (thinking_chars // 9),
                                    tool_calls=[ToolCallRecord(name="extract", arguments={"request": "the square",
                                                                                            "region": box})],
                                    prompt_tokens=900, output_tokens=120, thinking_tokens=100, seconds=0.5))
            steps.append(ExtractStep(request="the square", instruction="Describe ...", image_id="image_1",
                                     region=box, source_image="image_1", source_region=box, crop_id=f"crop_{k + 1}",
                                     output=f"a {('red', 'blue', 'green')[i % 3]} square", prompt_tokens=800,
                                     output_tokens=30, seconds=0.2))
        if i % 7 == 3:
            steps.append(ExtractStep(request=None, error="invalid arguments for extract (request: Field required)"))
    elif regime != "direct":
        steps.append(ExtractStep(purpose="caption" if regime == "caption" else "extract", output="a square",
                                 image_id="image_1", source_image="image_1", output_tokens=30))
    steps.append(ReasonStep(purpose="iterate" if regime == "iterative" else "answer", text=f"Answer: {pred}",
                            output_tokens=40, thinking_tokens=30))
    return Result(mode=regime, question=f"Question number {i}: what colour is the square?",
                  options=["red", "blue", "green", "yellow"], images=images, answer=pred, answer_found=True,
                  final_output=f"Answer: {pred}", steps=steps,
                  extraction_calls=sum(1 for s in steps if s.kind == "extract" and not s.error),
                  budget_spent=regime == "iterative" and i % 5 == 4, seconds=1.0)


def _record(regime: str, i: int, result: Result, trace: str, flip: int) -> SampleRecord:
    failed = regime == "direct" and i % 11 == 10
    return SampleRecord(
        regime=regime, benchmark="mmstar", sample_id=str(i), category="fine-grained perception",
        l2_category="recognition", gold=_gold(i), status="error" if failed else "ok",
        error="RuntimeError: synthetic failure" if failed else None, pred=None if failed else result.answer,
        correct=False if failed else correct(regime, i, flip if regime == "iterative" else 0),
        method="answer_line", raw_output=result.final_output, extraction_calls=result.extraction_calls,
        thinking_tokens=100, visible_tokens=20, perceiver_tokens=30, seconds=1.0, trace=trace,
        invalid_calls=int(regime == "iterative" and i % 7 == 3), budget_spent=result.budget_spent,
        used_region=regime == "iterative", tool_calls=1 + i % 2 if regime == "iterative" else 0,
    )  # fmt: skip
