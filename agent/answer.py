"""The final answer as the paper extracts it: `Answer:` on the last line, matched to the options. Pure.

Splitting thinking from the visible text and reading tool calls is tools/backends/output_parsing.py
(the backends parse what they generate).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


# lmms-eval's MMStar extraction, which the paper used: `Answer:` on the last line, case-insensitive.
_ANSWER_LINE = re.compile(r"(?i)Answer\s*:\s*([^\n]+)")


@dataclass(frozen=True)
class ExtractedAnswer:
    """The final answer as the paper extracts it; `found` is False when no `Answer:` line exists."""

    answer: str | None
    found: bool
    line: str | None


def extract_answer(visible: str, options: list[str] | None = None) -> ExtractedAnswer:
    """Take the last `Answer:` line of the visible text (thinking must already be stripped).

    With options, the answer is normalised to its letter when it starts with one ("(b)", "B.", "b");
    otherwise the answer text is kept as written. Wider fallbacks belong to evaluation scoring.
    """
    matches = _ANSWER_LINE.findall(visible)
    if not matches:
        return ExtractedAnswer(answer=None, found=False, line=None)
    line = matches[-1].strip()
    if options:
        letters = option_letters(len(options))
        letter = re.match(r"^[\(\[\s\*]*([A-Za-z])(?:[\)\]\.\:,\s\*]|$)", line)
        if letter and letter.group(1).upper() in letters:
            return ExtractedAnswer(answer=letter.group(1).upper(), found=True, line=line)
    return ExtractedAnswer(answer=line, found=True, line=line)


def option_letters(count: int) -> list[str]:
    return [chr(ord("A") + i) for i in range(count)]
