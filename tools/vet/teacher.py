"""Visual extraction tuning data: the teacher's two steps per item, and the training pair they make.

The paper's recipe (method.md section 4): step 1 turns an item's question-answer pairs into declarative
statements (text only, up to 1024 tokens); step 2 shows the teacher the image at 512x512 and asks for the
generic fine-grained description incorporating those statements (up to 2048 tokens). The training pair is
the perceiver's own instruction, `Especially, pay attention to ...` naming the item's questions, with the
teacher's description as the target, so the trained perceiver learns to bring out exactly what the questions
need. The `iterative` style instead makes the pair a region crop plus a request, built by the same code the
reasoner's `extract` tool calls go through (tools/perception.py), with the teacher's answer on that crop.

The teacher prompts below are this project's own wording; the manifest records them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from tools.perception import GENERIC_INSTRUCTION, extraction_instruction, perceive
from tools.vet.sources import SourceItem
from tools.backends.base import Message, Perceiver, PerceiveRequest, Reasoner, ReasonRequest, SamplingSettings
from tools.images.pixels import ImageStore, crop_region, fit_aspect

Style = Literal["paper", "iterative"]
TEACHER_SIDE = 512  # step 2 shows the teacher the image resized to 512x512

STATEMENTS_PROMPT = (
    "Rewrite each question-answer pair below about an image as one concise, self-contained declarative "
    "statement. Write one statement per line and nothing else.\n\n{pairs}"
)
DESCRIBE_PROMPT = (
    f"{GENERIC_INSTRUCTION} Incorporate the following facts into the description naturally, as things you "
    "see, without mentioning that they were given:\n{statements}"
)
# Regions of the iterative style: the halves and the centre, chosen per item from its id (deterministic).
REGIONS = ((0.0, 0.0, 0.5, 1.0), (0.5, 0.0, 1.0, 1.0), (0.0, 0.0, 1.0, 0.5), (0.0, 0.5, 1.0, 1.0),
           (0.25, 0.25, 0.75, 0.75))  # fmt: skip


@dataclass(frozen=True)
class VetSettings:
    """What a run asks of the teacher; part of the run folder's identity."""

    style: Style = "paper"
    statement_tokens: int = 1024
    description_tokens: int = 2048


class VetRecord(BaseModel):
    """One source item's outcome: a training pair, or the error that stopped it (retried on rerun)."""

    id: str
    ok: bool
    error: str = ""
    style: Style = "paper"
    questions: list[str] = []
    statements: str = ""  # step 1 (paper style)
    instruction: str = ""  # the perceiver's human turn, without the image marker
    target: str = ""  # the teacher's description: the perceiver's training target
    image: str = ""  # path of the training image, relative to the data folder
    region: list[float] | None = None  # iterative style: the crop, in 0-1 coordinates of the source image
    seconds: float = 0.0


@dataclass
class Teachers:
    """The teacher as a perceiver (step 2, crops) and, for step 1, a text reasoner or that same perceiver."""

    perceiver: Perceiver
    text: Reasoner | None = None

    def statements(self, prompt: str, max_new_tokens: int) -> str:
        if self.text is None:  # the VLM teacher, text only: a perceiver request with no image
            request = PerceiveRequest(images=(), instruction=prompt, max_new_tokens=max_new_tokens)
            return self.perceiver.perceive([request])[0].text.strip()
        settings = SamplingSettings(thinking=False, greedy=True, max_new_tokens=max_new_tokens, thinking_budget=None)
        request = ReasonRequest(messages=(Message("user", prompt),), settings=settings)
        return self.text.reason([request])[0].text.strip()


def focus(questions: list[str]) -> str:
    """The `pay attention to` part for an item's questions: the paper's wording stays a noun phrase."""
    quoted = " and ".join(f'"{q.strip()}"' for q in questions if q.strip())
    return f"the details needed to answer {quoted}"


def statements_prompt(item: SourceItem) -> str:
    pairs = "\n".join(f"Question: {qa.question}\nAnswer: {qa.answer}" for qa in item.qas)
    return STATEMENTS_PROMPT.format(pairs=pairs)


def paper_pair(item: SourceItem, store: ImageStore, teachers: Teachers, settings: VetSettings) -> dict:
    """Steps 1 and 2 on the whole image; the fields of the record (the image is what the perceiver sees)."""
    statements = teachers.statements(statements_prompt(item), settings.statement_tokens)
    image = store.get(item.id)
    shown = image.resize((TEACHER_SIDE, TEACHER_SIDE))
    request = PerceiveRequest(images=(shown,), instruction=DESCRIBE_PROMPT.format(statements=statements),
                              max_new_tokens=settings.description_tokens)  # fmt: skip
    target = teachers.perceiver.perceive([request])[0].text.strip()
    instruction = extraction_instruction(focus([qa.question for qa in item.qas]))
    return {"statements": statements, "instruction": instruction, "target": target, "view": fit_aspect(image)}


def iterative_pair(item: SourceItem, store: ImageStore, teachers: Teachers, settings: VetSettings) -> dict:
    """A request on a region crop, prepared exactly as the `extract` tool prepares it; the teacher answers."""
    region = REGIONS[int(hashlib.sha1(item.id.encode()).hexdigest(), 16) % len(REGIONS)]
    request = focus([qa.question for qa in item.qas])
    seen = perceive(teachers.perceiver, store, item.id, request, region, settings.description_tokens)
    view = fit_aspect(crop_region(store.get(item.id), region))
    return {"instruction": seen.instruction, "target": seen.text.strip(), "view": view, "region": list(region)}
