"""The paper's benchmarks: their schemas, and the conversion of a raw row into a Sample.

VMCBench (`suyc21/VMCBench`): columns index, question, A-D, answer, category, image; `category` names the
source dataset, and the paper's in-domain set is six of them. MMStar (`Lin-Chen/MMStar`): index,
question with the options inline ("Options: A: ..., B: ..."), image, answer, category, l2_category;
VLMEvalKit's TSV form has separate A-D columns, `l2-category` and a base64 image. Facts from
shared/docs/method.md section 5.
"""

from __future__ import annotations

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


class Sample(BaseModel):
    """One benchmark item, normalised. `image` is raw bytes or a path until the eval writes it out."""

    benchmark: str
    id: str
    question: str
    options: list[str]
    answer: str  # gold letter
    category: str
    l2_category: str | None = None


class SchemaError(ValueError):
    """A data file does not have the columns its benchmark needs."""


@dataclass(frozen=True)
class Benchmark:
    name: str
    hub_id: str
    default_split: str
    splits: tuple[str, ...]
    required: tuple[str, ...]

    def in_scope(self, category: str) -> bool:
        """Whether a sample belongs to the paper's protocol: VMCBench's six in-domain sources only."""
        return self.name != "vmcbench" or category in IN_DOMAIN

    def check_columns(self, columns: list[str], source: str) -> None:
        missing = [c for c in self.required if c not in columns and not _has_alias(c, columns)]
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
}  # fmt: skip


def get_benchmark(name: str) -> Benchmark:
    try:
        return BENCHMARKS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown benchmark '{name}'; valid benchmarks: {', '.join(BENCHMARKS)}") from None


_LETTER_COLUMNS = [chr(ord("A") + i) for i in range(26)]


def to_sample(bench: Benchmark, row: dict) -> Sample:
    """Normalise one raw row (any source format) into a Sample; raises ValueError for a bad row."""
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
    return Sample(
        benchmark=bench.name,
        id=str(row["index"]),
        question=question,
        options=options,
        answer=answer,
        category=str(row["category"]).strip(),
        l2_category=str(l2).strip() if _present(l2) else None,
    )


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
