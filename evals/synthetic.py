"""Small synthetic benchmark files in exactly the real schemas, for tests and offline trials.

VMCBench and MMStar as parquet (the hub layout: an `image` struct of bytes and path), and MMStar as
VLMEvalKit's TSV (A-D columns, `l2-category`, base64 image). Images are drawn with PIL: a coloured
shape on a background, asked about with four colour options.
"""

from __future__ import annotations

import base64
import csv
import io
import random
from pathlib import Path

from PIL import Image, ImageDraw

from evals.benchmarks import IN_DOMAIN, MMSTAR_CATEGORIES

COLOURS = ["red", "blue", "green", "yellow", "purple", "orange"]
EXTRA_VMC_SOURCES = ("ChartQA",)  # a non-in-domain source, to check it stays out of the in-domain average


def _png(colour: str, rng: random.Random) -> bytes:
    img = Image.new("RGB", (64, 48), "white")
    x, y = rng.randint(2, 30), rng.randint(2, 14)
    ImageDraw.Draw(img).rectangle((x, y, x + 28, y + 28), fill=colour)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _item(i: int, rng: random.Random) -> tuple[str, list[str], str, bytes]:
    options = rng.sample(COLOURS, 4)
    gold = rng.randrange(4)
    return "What colour is the square?", options, "ABCD"[gold], _png(options[gold], rng)


def vmcbench_rows(per_source: int = 2, seed: int = 0, corrupt: tuple[int, ...] = ()) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for source in [*IN_DOMAIN, *EXTRA_VMC_SOURCES]:
        for _ in range(per_source):
            i = len(rows)
            question, options, answer, image = _item(i, rng)
            image = image[: len(image) // 3] if i in corrupt else image
            rows.append({"index": i, "question": question, "A": options[0], "B": options[1], "C": options[2],
                         "D": options[3], "answer": answer, "category": source,
                         "image": {"bytes": image, "path": f"{i}.png"}})
    return rows


def mmstar_rows(per_l2: int = 1, seed: int = 0, corrupt: tuple[int, ...] = ()) -> list[dict]:
    rng = random.Random(seed + 1)
    rows = []
    for category, (_, subs) in MMSTAR_CATEGORIES.items():
        for sub in subs:
            for _ in range(per_l2):
                i = len(rows)
                question, options, answer, image = _item(i, rng)
                image = image[: len(image) // 3] if i in corrupt else image
                inline = ", ".join(f"{letter}: {text}" for letter, text in zip("ABCD", options))
                rows.append({"index": i, "question": f"{question}\nOptions: {inline}",
                             "image": {"bytes": image, "path": f"{i}.png"}, "answer": answer,
                             "category": category, "l2_category": sub,
                             "meta_info": {"source": "synthetic", "split": "val", "image_path": f"{i}.png"}})
    return rows


def write_parquet(rows: list[dict], path: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def write_mmstar_tsv(rows: list[dict], path: Path) -> Path:
    """VLMEvalKit's MMStar TSV: options split into A-D columns, `l2-category`, base64 image."""
    from evals.benchmarks import split_inline_options

    path.parent.mkdir(parents=True, exist_ok=True)
    fields = ["index", "question", "A", "B", "C", "D", "answer", "category", "l2-category", "image"]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, delimiter="\t")
        writer.writeheader()
        for row in rows:
            question, options = split_inline_options(row["question"])
            writer.writerow({"index": row["index"], "question": question, **dict(zip("ABCD", options)),
                             "answer": row["answer"], "category": row["category"],
                             "l2-category": row["l2_category"],
                             "image": base64.b64encode(row["image"]["bytes"]).decode()})
    return path


def write_all(root: Path | str, seed: int = 0) -> dict[str, Path]:
    """Write vmcbench.parquet, mmstar.parquet and mmstar.tsv under root; returns their paths."""
    root = Path(root)
    return {
        "vmcbench": write_parquet(vmcbench_rows(seed=seed), root / "vmcbench.parquet"),
        "mmstar": write_parquet(mmstar_rows(seed=seed), root / "mmstar.parquet"),
        "mmstar_tsv": write_mmstar_tsv(mmstar_rows(seed=seed), root / "mmstar.tsv"),
    }
