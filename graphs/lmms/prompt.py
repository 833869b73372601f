"""What an lmms-eval request means to the agent: its prompt text taken apart, its generation kwargs mapped.

lmms-eval hands a model one string per doc: the task's question, its options in the task's own layout, and
the task's instructions ("Answer with the option's letter from the given choices directly"). The agent wants
the question and the options apart (it renders them in the paper's layout and asks for an `Answer:` line), so
the text is split here. Forms recognised, each seen in lmms-eval's tasks:

- option lines `A. x`, `A: x`, `A) x`, `(A) x`, one per line, A, B, C, ... in order (V*Bench, VMCBench,
  MMStar's OpenCompass variant), optionally under an `Options:`/`Choices:` header line;
- MMStar's inline `Options: A: x, B: y, C: z` (an option's text may hold commas);
- inline `(A) x (B) y` on one line.

A leading `Question:` label (VMCBench) is removed from the question: the agent's prompts add their own.

Lines after the options are the task's instructions. An instruction that only asks for the option's letter
is what the agent's own post-prompt already asks (and the letter is what we hand back), so it is dropped;
any other instruction is kept after the question so the reasoner reads it. Text without recognisable
options is an open question and is passed whole, instructions included.

Generation kwargs are the task's settings for a single model call. For an agent they mean less: see
`map_generation_kwargs`. Nothing here imports lmms_eval or torch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from agent.settings import AskOptions
from evals.benchmarks import split_inline_options

_OPTION_LINE = re.compile(r"^\s*\(?([A-Z])[.:)]\s*(\S.*)$")
_HEADER = re.compile(r"(?i)^\s*(options|choices)\s*:?\s*$")
_LABEL = re.compile(r"(?i)^\s*question\s*:\s*")
_INLINE_PAREN = re.compile(r"\(([A-Z])\)\s*(.*?)(?=\s*\([A-Z]\)|$)")
# "Answer with the option's letter from the given choices directly." / "Answer with the option letter only." /
# "Please answer with the letter of the correct option." Asking for the letter and nothing else.
_LETTER_ONLY = re.compile(r"(?i)\b(answer|respond|reply)\b.*\b(option|choice)'?s?\b.*\bletter\b|"
                          r"\b(answer|respond|reply)\b.*\bletter\b.*\b(option|choice)s?\b")


@dataclass(frozen=True)
class TaskPrompt:
    """A task's prompt taken apart. `options` is empty for an open question."""

    question: str
    options: list[str] = field(default_factory=list)
    instructions: list[str] = field(default_factory=list)  # lines after the options, as written
    dropped: list[str] = field(default_factory=list)  # instructions the agent's own answer format covers

    def agent_question(self) -> str:
        """The question the agent is asked: the stem, then the instructions it does not already follow."""
        kept = [line for line in self.instructions if line not in self.dropped]
        return "\n".join([self.question, *kept]).strip()


def parse_task_prompt(text: str) -> TaskPrompt:
    """Split a task's prompt into question, options and instructions (see the module docstring)."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("the task's prompt text is empty")
    lines = text.strip().splitlines()
    parsed = _option_lines(lines) or _inline_options(lines)
    if parsed is None:
        return TaskPrompt(question=text.strip())
    stem, options, after = parsed
    stem = _LABEL.sub("", stem, count=1).strip()  # VMCBench writes "Question: ..."; the agent adds its own label
    instructions = [line.strip() for line in after if line.strip()]
    dropped = [line for line in instructions if _LETTER_ONLY.search(line)]
    return TaskPrompt(question=stem, options=options, instructions=instructions, dropped=dropped)


def _option_lines(lines: list[str]) -> tuple[str, list[str], list[str]] | None:
    """The first run of lines `A. x`, `B. y`, ... (two or more, letters in order)."""
    for start, line in enumerate(lines):
        match = _OPTION_LINE.match(line)
        if not match or match.group(1) != "A":
            continue
        options = []
        for offset, candidate in enumerate(lines[start:]):
            found = _OPTION_LINE.match(candidate)
            if not found or found.group(1) != chr(ord("A") + offset):
                break
            options.append(found.group(2).strip())
        if len(options) >= 2:
            head = lines[:start]
            if head and _HEADER.match(head[-1]):
                head = head[:-1]
            return "\n".join(head).strip(), options, lines[start + len(options):]
    return None


def _inline_options(lines: list[str]) -> tuple[str, list[str], list[str]] | None:
    """One line holding MMStar's `Options: A: x, B: y` or `(A) x (B) y`; the lines after are instructions."""
    for i, line in enumerate(lines):
        before = "\n".join(lines[:i])
        if "Options:" in line:
            stem, options = split_inline_options(line)
            if options:
                return "\n".join(p for p in (before, stem) if p).strip(), options, lines[i + 1:]
        head, marker, _ = line.partition("(A)")
        if marker:
            found = _INLINE_PAREN.findall(line[len(head):])
            letters = [letter for letter, _ in found]
            if len(found) >= 2 and letters == [chr(ord("A") + k) for k in range(len(found))]:
                stem = "\n".join(p for p in (before, head.strip()) if p).strip()
                return stem, [body.strip() for _, body in found], lines[i + 1:]
    return None


@dataclass(frozen=True)
class MappedSettings:
    settings: AskOptions
    ignored: dict  # generation kwargs left unused, with their values, to be logged once


def map_generation_kwargs(gen_kwargs: dict | None, base: AskOptions, explicit: set[str]) -> MappedSettings:
    """The agent's settings for one request under the task's generation kwargs.

    - `temperature: 0` or `do_sample: false` -> greedy decoding (the task asks for deterministic output);
    - `temperature > 0` with `do_sample: true` -> the task's temperature and top_p, unless set in model_args;
    - everything else (max_new_tokens, until, num_beams, ...) is ignored: it caps or stops one call, and the
      agent's thinking, tool calls and final answer are several (`max_new_tokens` of the agent is set by
      model_args `max_new_tokens`).
    Settings the user set in model_args (`explicit`) always win over the task's.
    """
    kwargs = dict(gen_kwargs or {})
    updates: dict = {}
    temperature = kwargs.pop("temperature", None)
    do_sample = kwargs.pop("do_sample", None)
    top_p = kwargs.pop("top_p", None)
    ignored = {k: kwargs[k] for k in kwargs}
    greedy = do_sample is False or (temperature is not None and float(temperature) == 0.0)
    if greedy and "greedy" not in explicit:
        updates["greedy"] = True
    elif not greedy and do_sample:
        if temperature is not None and "temperature" not in explicit:
            updates["temperature"] = float(temperature)
        if top_p is not None and "top_p" not in explicit:
            updates["top_p"] = float(top_p)
    if greedy and top_p is not None:
        ignored["top_p"] = top_p
    return MappedSettings(settings=replace(base, **updates), ignored=ignored)
