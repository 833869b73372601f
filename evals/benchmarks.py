"""The benchmarks: their schemas, and the conversion of a raw row into a Sample.

VMCBench (`suyc21/VMCBench`): columns index, question, A-D, answer, category, image; `category` names the
source dataset, and the paper's in-domain set is six of them. MMStar (`Lin-Chen/MMStar`): index,
question with the options inline ("Options: A: ..., B: ..."), image, answer, category, l2_category;
VLMEvalKit's TSV form has separate A-D columns, `l2-category` and a base64 image. Facts from
shared/docs/method.md section 5.

High-resolution benchmarks (formats read from each release and from lmms-eval / VLMEvalKit, see docs/evaluation.md):
- V*Bench, 191 items, categories `direct_attributes` (115) and `relative_position` (76). Three layouts:
  lmms-eval's hub copy (`lmms-lab/vstar-bench`, split `test`) and the release's `test_questions.jsonl`: image,
  text (question, then "(A) x\n(B) y ...", then the answer instruction), category, question_id, label;
  VLMEvalKit's TSV: index, question, A-D, answer, category, base64 image; the original release folder
  (`craigwu/vstar_bench`): `direct_attributes/` and `relative_position/` with an image and a JSON annotation
  (target_object, bbox, question, options) per item, where the first option is always the correct one, so
  options are shuffled with the run's seed and the order is recorded per item.
- HR-Bench 4K/8K (`DreamMr/HR-Bench`, config `hrbench_version_split`, splits `hrbench_4k`/`hrbench_8k`; files
  hr_bench_4k/8k as parquet and TSV): index, question, answer, category (`single` = FSP, `cross` = FCP), A-D,
  cycle_category (0-3: the same question with its options reordered so the answer is A, B, C, D in turn;
  read as an opaque label, as VLMEvalKit and lmms-eval group by it, so text labels work too), base64 image.
  The official score is the accuracy within each cycle, averaged over the cycles.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass

from pydantic import BaseModel

IN_DOMAIN = {  # VMCBench category value -> the paper's column name
    "OCRVQA": "OCR-VQA",
    "TextVQA": "TextVQA",
    "ScienceQA": "ScienceQA",
    "VQAv2": "VQA2",
    "GQA": "GQA",
    "VizWiz": "VizWiz",
}
MMSTAR_CATEGORIES = {  # MMStar category -> (column name, its three l2 categories)
    "coarse perception": ("CP", ("image scene and topic", "image style & quality", "image emotion")),
    "fine-grained perception": ("FP", ("object counting", "recognition", "localization")),
    "instance reasoning": (
        "IR",
        ("single-instance reasoning", "cross-instance attribute reasoning", "cross-instance relation reasoning"),
    ),
    "logical reasoning": ("LR", ("code & sequence reasoning", "diagram reasoning", "common reasoning")),
    "science & technology": (
        "ST",
        (
            "biology & chemistry & physics",
            "electronics & energy & mechanical eng.",
            "geography & earth science & agriculture",
        ),
    ),
    "math": ("Math", ("geometry", "numeric commonsense and calculation", "statistical reasoning")),
}


VSTAR_CATEGORIES = {"direct_attributes": "V* Attr", "relative_position": "V* Spatial"}
HRBENCH_CATEGORIES = {"single": "FSP", "cross": "FCP"}  # fine-grained single-instance / cross-instance perception
VSTAR_ANSWER_INSTRUCTION = "Answer with the option's letter from the given choices directly."


class Sample(BaseModel):
    """One benchmark item, normalised. `image` is raw bytes or a path until the eval writes it out."""

    benchmark: str
    id: str
    question: str
    options: list[str]
    answer: str  # gold letter
    category: str
    l2_category: str | None = None
    cycle: int | str | None = None  # HR-Bench: which option order of its question this row is (a label, 0-3)
    group: str | None = None  # rows that are one question (HR-Bench cycles): subsampled and sharded together
    option_order: list[int] | None = None  # V* release folder: the shuffle applied (new position -> original)


class SchemaError(ValueError):
    """A data file does not have the columns its benchmark needs."""


@dataclass(frozen=True)
class Benchmark:
    name: str
    hub_id: str
    default_split: str
    splits: tuple[str, ...]
    required: tuple[str, ...]
    layouts: tuple[tuple[str, ...], ...] = ()  # other accepted column sets (V*: lmms-eval's, the release folder's)
    config: str | None = None  # the hub dataset's config name, when it has several

    def in_scope(self, category: str) -> bool:
        """Whether a sample belongs to the paper's protocol: VMCBench's six in-domain sources only."""
        return self.name != "vmcbench" or category in IN_DOMAIN

    def check_columns(self, columns: list[str], source: str) -> None:
        missing = [c for c in self.required if c not in columns and not _has_alias(c, columns)]
        if missing and any(all(c in columns for c in layout) for layout in self.layouts):
            return
        if missing:
            raise SchemaError(
                f"{source} does not look like {self.name}: missing column(s) {', '.join(missing)} "
                f"(found: {', '.join(columns) or 'none'})"
            )


def _has_alias(column: str, columns: list[str]) -> bool:
    return column == "l2_category" and "l2-category" in columns


BENCHMARKS = {
    "vmcbench": Benchmark("vmcbench", "suyc21/VMCBench", "test", ("dev", "test"),
                          ("index", "question", "A", "B", "C", "D", "answer", "category", "image")),
    "mmstar": Benchmark("mmstar", "Lin-Chen/MMStar", "val", ("val",),
                        ("index", "question", "answer", "category", "l2_category", "image")),
    "vstar": Benchmark("vstar", "lmms-lab/vstar-bench", "test", ("test",),
                       ("index", "question", "A", "B", "answer", "category", "image"),
                       layouts=(("question_id", "text", "label", "category", "image"),
                                ("index", "question", "options", "category", "image"))),
    "hrbench4k": Benchmark("hrbench4k", "DreamMr/HR-Bench", "hrbench_4k", ("hrbench_4k",),
                           ("index", "question", "A", "B", "answer", "category", "cycle_category", "image"),
                           config="hrbench_version_split"),
    "hrbench8k": Benchmark("hrbench8k", "DreamMr/HR-Bench", "hrbench_8k", ("hrbench_8k",),
                           ("index", "question", "A", "B", "answer", "category", "cycle_category", "image"),
                           config="hrbench_version_split"),
}  # fmt: skip
HIGH_RES = ("vstar", "hrbench4k", "hrbench8k")


def get_benchmark(name: str) -> Benchmark:
    try:
        return BENCHMARKS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown benchmark '{name}'; valid benchmarks: {', '.join(BENCHMARKS)}") from None


_LETTER_COLUMNS = [chr(ord("A") + i) for i in range(26)]


def to_sample(bench: Benchmark, row: dict, seed: int = 0) -> Sample:
    """Normalise one raw row (any source format) into a Sample; raises ValueError for a bad row."""
    if "text" in row and "label" in row and "question" not in row:
        row = vstar_text_row(row)
    if "options" in row and isinstance(row["options"], (list, tuple)):
        return _shuffled_release_row(bench, row, seed)
    letters = [c for c in _LETTER_COLUMNS if c in row and _present(row[c])]
    question = str(row["question"]).strip()
    if letters:
        options = [str(row[c]).strip() for c in letters]
    else:
        question, options = split_inline_options(question)
    answer = str(row["answer"]).strip().upper()[:1]
    if not answer or (options and answer not in _LETTER_COLUMNS[: len(options)]):
        raise ValueError(f"gold answer '{row['answer']}' is not one of the option letters")
    l2 = row.get("l2_category", row.get("l2-category"))
    cycle = row.get("cycle_category")
    return Sample(
        benchmark=bench.name,
        id=str(row["index"]),
        question=question,
        options=options,
        answer=answer,
        category=str(row["category"]).strip(),
        l2_category=str(l2).strip() if _present(l2) else None,
        cycle=cycle_label(cycle) if _present(cycle) else None,
        group=_question_group(question, options, row.get("image")) if _present(cycle) else None,
    )


def cycle_label(value) -> int | str:
    """HR-Bench's `cycle_category` as the opaque label VLMEvalKit and lmms-eval group by (never arithmetic).

    A whole number (0, "0", 0.0 as a TSV or a float column writes it) is the int, so one cycle has one
    label whatever the file type; anything else ("cycle_a") is kept as text.
    """
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() else text


def vstar_text_row(row: dict) -> dict:
    """lmms-eval's V* row (question and "(A) x (B) y" options in `text`, gold in `label`) in the table layout."""
    text = str(row["text"])
    head, _, _ = text.partition("(A)")
    found = re.findall(r"\(([A-Z])\)\s*(.*?)(?=\s*\([A-Z]\)|$)", text, flags=re.DOTALL)
    options = [body.replace(VSTAR_ANSWER_INSTRUCTION, "").strip() for _, body in found]
    if len(options) < 2 or [letter for letter, _ in found] != _LETTER_COLUMNS[: len(options)]:
        raise ValueError("the V* text has no '(A) ... (B) ...' options")
    return {"index": row["question_id"], "question": head.strip(), **dict(zip(_LETTER_COLUMNS, options)),
            "answer": row["label"], "category": row["category"], "image": row.get("image")}


def _shuffled_release_row(bench: Benchmark, row: dict, seed: int) -> Sample:
    """The V* release lists the correct option first: shuffle with the run's seed, reproducibly per item."""
    options = [str(o).strip() for o in row["options"]]
    if len(options) < 2 or any(not o for o in options):
        raise ValueError("the annotation needs at least two non-empty options")
    order = list(range(len(options)))
    random.Random(f"{seed}/{row['index']}").shuffle(order)
    return Sample(
        benchmark=bench.name, id=str(row["index"]), question=str(row["question"]).strip(),
        options=[options[i] for i in order], answer=_LETTER_COLUMNS[order.index(0)],
        category=str(row["category"]).strip(), option_order=order,
    )  # fmt: skip


def _question_group(question: str, options: list[str], image) -> str:
    """One id for the rows of one question: its text, its options as a set, and its image (by its tail)."""
    if isinstance(image, dict):
        image = image.get("bytes") or image.get("path")
    tail = image[-4096:] if isinstance(image, (str, bytes)) else b""
    tail = tail.encode() if isinstance(tail, str) else bytes(tail)
    digest = hashlib.sha256(("\n".join([question, *sorted(options)])).encode())
    digest.update(f"{len(image) if isinstance(image, (str, bytes)) else 0}".encode() + tail)
    return digest.hexdigest()[:16]


def _present(value) -> bool:
    return value is not None and not (isinstance(value, float) and value != value) and str(value).strip() != ""


def split_inline_options(question: str) -> tuple[str, list[str]]:
    """Split MMStar's "...\\nOptions: A: x, B: y, C: z" into the question and ['x', 'y', 'z'].

    Option texts may hold commas, so each option ends only where ", <next letter>:" begins.
    Returns the question unchanged and no options when there is no parsable "Options:" part.
    """
    match = re.search(r"\bOptions:\s*", question)
    if not match:
        return question, []
    stem, rest = question[: match.start()].strip(), question[match.end() :]
    if not rest.startswith("A:"):
        return question, []
    starts = [0]
    for letter in _LETTER_COLUMNS[1:]:
        found = rest.find(f", {letter}:", starts[-1])
        if found == -1:
            break
        starts.append(found)
    options = []
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(rest)
        chunk = rest[start:end].lstrip(", ")
        options.append(chunk[2:].strip())
    if len(options) < 2 or any(not o for o in options):
        return question, []
    return stem, options
