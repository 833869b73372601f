"""Judge-free multiple-choice scoring: the paper's extraction, documented fallbacks, never a guess.

Order (the first that yields a valid option letter wins; `method` records which):
1. `answer_line`: the last `Answer:` match of the visible text (lmms-eval's MMStar regex
   `(?i)Answer\\s*:\\s*([^\\n]+)`), read as a letter ("B", "(b)", "B.", "**B**", "option B",
   "the answer is B") -> the letter;
2. `answer_option_text`: that answer's text equals one option's text -> that option;
3. on the raw last line when there is no `Answer:` line (the paper's fallback):
   `pattern` ("(B)", "option B", "the answer is B"), `bare_letter` ("B", "B."), `option_text`;
4. `none`: nothing parsable; the prediction is None and the sample is wrong.

Thinking text is stripped first (a letter inside <think> never counts); the raw output is kept by the
caller. Unlike the paper's "first letter" rule, a word is not read as its initial ("Answer: blue" is not
B unless "blue" is option B's text). VLMEvalKit's random-choice fallback is deliberately absent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from tools.backends.output_parsing import split_thinking

Method = Literal["answer_line", "answer_option_text", "pattern", "bare_letter", "option_text", "none"]
FALLBACK_METHODS = ("answer_option_text", "pattern", "bare_letter", "option_text")

_ANSWER = re.compile(r"(?i)Answer\s*:\s*([^\n]+)")
_LEADING_LETTER = re.compile(r"^[\s\(\[\*\"'`]*([A-Za-z])(?:[\s\)\]\.\:,\*\"'`]|$)")
_PATTERNS = [
    re.compile(r"\(([A-Za-z])\)"),
    re.compile(r"(?i)\boption\s*[:\-]?\s*\(?([A-Za-z])\b"),
    re.compile(r"(?i)\bthe (?:correct |final )?answer is\s*[:\-]?\s*\(?([A-Za-z])\b"),
]
_PHRASE = re.compile(r"(?i)^(?:the )?(?:correct |final )?(?:answer is|option)\s*[:\-]?\s*")


@dataclass(frozen=True)
class Score:
    pred: str | None
    correct: bool
    method: Method


def letters_for(options: list[str] | int) -> list[str]:
    count = options if isinstance(options, int) else len(options)
    return [chr(ord("A") + i) for i in range(count)]


def _norm(text: str) -> str:
    return re.sub(r"[\s\.\,\;\:\!\?\*\"'`]+", " ", text).strip().lower()


def _letter(text: str, valid: list[str]) -> str | None:
    match = _LEADING_LETTER.match(_PHRASE.sub("", text.strip()))
    if match and match.group(1).upper() in valid:
        return match.group(1).upper()
    return None


def _option_by_text(text: str, options: list[str]) -> str | None:
    target = _norm(text)
    hits = [i for i, option in enumerate(options) if _norm(option) == target and target]
    return letters_for(len(options))[hits[0]] if len(hits) == 1 else None


def extract_choice(output: str, options: list[str]) -> tuple[str | None, Method]:
    """The predicted letter and how it was found."""
    _, visible = split_thinking(output or "")
    valid = letters_for(options or 4)
    answers = _ANSWER.findall(visible)
    if answers:
        content = answers[-1].strip()
        if (letter := _letter(content, valid)) is not None:
            return letter, "answer_line"
        for pattern in _PATTERNS:
            found = [m.upper() for m in pattern.findall(content) if m.upper() in valid]
            if found:
                return found[-1], "answer_line"
        if options and (letter := _option_by_text(content, options)) is not None:
            return letter, "answer_option_text"
        return None, "none"
    lines = [line.strip() for line in visible.splitlines() if line.strip()]
    if not lines:
        return None, "none"
    last = lines[-1]
    for pattern in _PATTERNS:
        found = [m.upper() for m in pattern.findall(last) if m.upper() in valid]
        if found:
            return found[-1], "pattern"
    if re.fullmatch(r"[\(\[\*\s]*([A-Za-z])[\)\]\.\*\s]*", last) and last.strip("()[]*. ").upper() in valid:
        return last.strip("()[]*. ").upper(), "bare_letter"
    if options and (letter := _option_by_text(last, options)) is not None:
        return letter, "option_text"
    return None, "none"


def score(output: str, options: list[str], gold: str) -> Score:
    pred, method = extract_choice(output, options)
    return Score(pred=pred, correct=pred is not None and pred == gold.strip().upper(), method=method)
