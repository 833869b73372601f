"""A small LLaVA-format VQA source (conversation JSON + PNG files), for docs/vet.md's walk-through and tests.

Each item is a coloured square on white with two question-answer turns, as in the CoIN files the paper
used. `broken=True` adds the three kinds of bad item a real source has: an image file that is missing, one
that is corrupt, and an item with no human turn; `xthink vet-data` must record them and go on.

Usage: python -m evals.synthetic.vet_source DIR [N] [--broken]  (writes DIR/llava.json and DIR/images/)
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

from PIL import Image, ImageDraw

from evals.synthetic.benchmarks import COLOURS


def write_source(root: str | Path, n: int = 6, broken: bool = False, seed: int = 0) -> Path:
    """Write `n` good items (and the three broken ones if asked); return the JSON file's path."""
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    items = []
    for i in range(n):
        colour, side = COLOURS[i % len(COLOURS)], rng.choice(["left", "right"])
        img = Image.new("RGB", (96, 64), "white")
        x = 8 if side == "left" else 56
        ImageDraw.Draw(img).rectangle((x, 16, x + 32, 48), fill=colour)
        img.save(root / "images" / f"{i}.png")
        items.append({"id": f"item-{i}", "image": f"images/{i}.png", "conversations": [
            {"from": "human", "value": "<image>\nWhat colour is the square?"}, {"from": "gpt", "value": colour},
            {"from": "human", "value": "Is the square on the left or the right?"}, {"from": "gpt", "value": side}]})
    if broken:
        (root / "images" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
        qa = [{"from": "human", "value": "<image>\nWhat is shown?"}, {"from": "gpt", "value": "a square"}]
        items += [{"id": "broken-missing", "image": "images/missing.png", "conversations": qa},
                  {"id": "broken-corrupt", "image": "images/corrupt.png", "conversations": qa},
                  {"id": "broken-no-human", "image": "images/0.png",
                   "conversations": [{"from": "gpt", "value": "a square"}]}]  # fmt: skip
    path = root / "llava.json"
    path.write_text(json.dumps(items, indent=1))
    return path


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if not args:
        sys.exit("usage: python -m evals.synthetic.vet_source DIR [N] [--broken]")
    print(write_source(args[0], int(args[1]) if len(args) > 1 else 6, broken="--broken" in sys.argv))
