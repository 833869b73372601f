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


# --- High-resolution benchmarks: V*Bench (three layouts) and HR-Bench 4K/8K (parquet and TSV) ---------------

OBJECTS = ["square", "disc", "flag", "sign"]


def _detail_image(size: tuple[int, int], marks: list[tuple[str, float, float]]) -> bytes:
    """A large, mostly empty JPEG with small coloured marks at fractional positions: a detail to zoom into."""
    img = Image.new("RGB", size, (236, 236, 228))
    draw = ImageDraw.Draw(img)
    side = max(8, size[0] // 100)
    for colour, fx, fy in marks:
        x, y = int(fx * (size[0] - side)), int(fy * (size[1] - side))
        draw.rectangle((x, y, x + side, y + side), fill=colour)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=70)
    return buf.getvalue()


def _vstar_items(per_category: int, seed: int, size: tuple[int, int]) -> list[dict]:
    """V* items in the release's form: options with the correct one first, bbox as [x, y, w, h]."""
    rng = random.Random(seed + 2)
    items = []
    for i in range(per_category):
        colours = rng.sample(COLOURS, 4)
        obj = OBJECTS[i % len(OBJECTS)]
        fx, fy = rng.random(), rng.random()
        items.append({"id": f"sa_{1000 + i}", "category": "direct_attributes", "target_object": [obj],
                      "bbox": [[int(fx * size[0]), int(fy * size[1]), 40, 40]],
                      "question": f"What is the color of the {obj}?", "options": colours,
                      "image": _detail_image(size, [(colours[0], fx, fy)])})
    for i in range(per_category):
        a, b = rng.sample(COLOURS, 2)
        left = rng.random() < 0.5
        xs = (0.2, 0.8) if left else (0.8, 0.2)
        items.append({"id": f"sa_{2000 + i}", "category": "relative_position", "target_object": [f"{a} square",
                      f"{b} square"], "bbox": [[0, 0, 40, 40], [0, 0, 40, 40]],
                      "question": f"Is the {a} square on the left or right side of the {b} square?",
                      "options": ["left", "right"] if left else ["right", "left"],
                      "image": _detail_image(size, [(a, xs[0], 0.5), (b, xs[1], 0.5)])})
    return items


def write_vstar_release(root: Path | str, per_category: int = 2, seed: int = 0,
                        size: tuple[int, int] = (2246, 1582)) -> Path:
    """The original release's layout: direct_attributes/ and relative_position/, an image and a JSON each."""
    import json

    root = Path(root)
    for item in _vstar_items(per_category, seed, size):
        folder = root / item["category"]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{item['id']}.jpg").write_bytes(item["image"])
        annotation = {k: item[k] for k in ("target_object", "bbox", "question", "options")}
        (folder / f"{item['id']}.json").write_text(json.dumps(annotation, indent=1))
    return root


def _shuffled(item: dict, rng: random.Random) -> tuple[list[str], str]:
    options = list(item["options"])
    rng.shuffle(options)
    return options, "ABCD"[options.index(item["options"][0])]


def vstar_hub_rows(per_category: int = 2, seed: int = 0, size: tuple[int, int] = (2246, 1582)) -> list[dict]:
    """lmms-eval's hub layout (and the release's test_questions.jsonl): text with "(A) ..." options, label."""
    rng = random.Random(seed + 3)
    rows = []
    for i, item in enumerate(_vstar_items(per_category, seed, size)):
        options, label = _shuffled(item, rng)
        listed = "\n".join(f"({letter}) {text}" for letter, text in zip("ABCD", options))
        rows.append({"image": {"bytes": item["image"], "path": f"{item['category']}/{item['id']}.jpg"},
                     "text": f"{item['question']}\n{listed}\nAnswer with the option's letter from the given "
                     "choices directly.", "category": item["category"], "question_id": str(i), "label": label})
    return rows


def write_vstar_tsv(path: Path, per_category: int = 2, seed: int = 0, size: tuple[int, int] = (2246, 1582)) -> Path:
    """VLMEvalKit's MCQ TSV layout: index, question, A-D, answer, category, base64 image."""
    rng = random.Random(seed + 4)
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = ["index", "question", "A", "B", "C", "D", "answer", "category", "image"]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, delimiter="\t")
        writer.writeheader()
        for i, item in enumerate(_vstar_items(per_category, seed, size)):
            options, label = _shuffled(item, rng)
            writer.writerow({"index": i, "question": item["question"], **dict(zip("ABCD", options)),
                             "answer": label, "category": item["category"],
                             "image": base64.b64encode(item["image"]).decode()})
    return path


def hrbench_rows(size: tuple[int, int], per_category: int = 2, seed: int = 0) -> list[dict]:
    """HR-Bench rows: each question four times (cycle_category 0-3), its answer at A, B, C, D in turn."""
    rng = random.Random(seed + 5)
    rows = []
    for category in ("single", "cross"):
        for _ in range(per_category):
            colours = rng.sample(COLOURS, 4)
            if category == "single":
                question, marks = "What is the colour of the small square?", [(colours[0], rng.random(), rng.random())]
            else:
                question = "Which colour do the two small squares share?"
                marks = [(colours[0], rng.random(), rng.random()), (colours[0], rng.random(), rng.random())]
            image = base64.b64encode(_detail_image(size, marks)).decode()
            others = colours[1:]
            for cycle in range(4):
                options = others[:cycle] + [colours[0]] + others[cycle:]
                rows.append({"index": len(rows), "question": question, "answer": "ABCD"[cycle],
                             "category": category, **dict(zip("ABCD", options)), "cycle_category": str(cycle),
                             "image": image})
    return rows


def write_hrbench_tsv(rows: list[dict], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter="\t")
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_high_res(root: Path | str, seed: int = 0) -> dict[str, Path]:
    """V* in its three layouts and HR-Bench 4K (3840x2160) and 8K (7680x4320) as parquet and TSV, under root."""
    root = Path(root)
    rows_4k, rows_8k = hrbench_rows((3840, 2160), seed=seed), hrbench_rows((7680, 4320), seed=seed + 1)
    return {
        "vstar": write_vstar_release(root / "vstar_bench", seed=seed),
        "vstar_hub": write_parquet(vstar_hub_rows(seed=seed), root / "vstar_hub" / "test.parquet"),
        "vstar_tsv": write_vstar_tsv(root / "VStarBench.tsv", seed=seed),
        "hrbench4k": write_parquet(rows_4k, root / "hr_bench_4k.parquet"),
        "hrbench4k_tsv": write_hrbench_tsv(rows_4k, root / "hr_bench_4k.tsv"),
        "hrbench8k": write_parquet(rows_8k, root / "hr_bench_8k.parquet"),
        "hrbench8k_tsv": write_hrbench_tsv(rows_8k, root / "hr_bench_8k.tsv"),
    }
