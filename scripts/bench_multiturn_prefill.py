"""Reasoner prefill per turn with KV reuse vs the full history, over a 4-call iterative run (tiny models, CPU).

Usage: python scripts/bench_multiturn_prefill.py
The tiny reasoner is steered by forced decoding (the tests' scripted turns) through four extractions and
an answer, each turn thinking in Qwen3's format, so the conversation grows the way a real one does. For
every reasoner turn it prints the prompt length (what a cache-less backend prefills) and the tokens that
were actually computed (the rest were reused from the previous turn's keys/values).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tools.tiny.forced: the forced-decoding script


def main() -> None:
    from PIL import Image

    from graphs.api import AskOptions, ExtractThink
    from tools.tiny.forced import Script, think, tool_call
    from tools.backends.hf_reasoner import TransformersReasoner
    from tools.backends.loading import Placement, quiet_transformers
    from tools.tiny.models import build_all

    quiet_transformers()
    with tempfile.TemporaryDirectory() as tmp:
        models = build_all(Path(tmp) / "models", ("llava_onevision",))
        image = Path(tmp) / "image.png"
        Image.new("RGB", (320, 240), "red").save(image)
        requests = ["the colour of the square", "the text on the sign", "the object on the left", "the count"]
        turns = [think(f"Step {i}: I still need {r}.") + tool_call(r) for i, r in enumerate(requests)]
        script = Script(*turns, think("I have enough.") + "The square is red.\nAnswer: A")
        reasoner = TransformersReasoner(str(models.reasoner), Placement("cpu"), extra_logits_processors=script)
        agent = ExtractThink(reasoner=reasoner, perceiver=str(models.perceivers["llava_onevision"]), device="cpu")
        result = agent.ask("What colour is the square?", [image], ["red", "blue"],
                           settings=AskOptions(greedy=True, perceiver_max_new_tokens=24))  # fmt: skip
        total_prompt = total_computed = 0
        print("turn  prompt (full history)  computed  reused")
        for i, step in enumerate(s for s in result.steps if s.kind == "reason"):
            computed = step.prompt_tokens - step.cached_tokens
            total_prompt, total_computed = total_prompt + step.prompt_tokens, total_computed + computed
            print(f"{i + 1:>4}  {step.prompt_tokens:>21}  {computed:>8}  {step.cached_tokens:>6}")
        print(f"total {total_prompt:>21}  {total_computed:>8}  ({total_computed / total_prompt:.2f}x of the full "
              f"history; {result.extraction_calls} extractions)")


if __name__ == "__main__":
    main()
