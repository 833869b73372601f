"""Parse what a reasoner generated: thinking vs visible text and Hermes tool calls.

These live below the backends (every backend parses its raw output the same way) and below `agent/`,
so imports run one way: graphs -> agent -> tools. The answer extraction, which only the agent and the
evals need, stays in `agent/answer.py`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
TOOL_OPEN, TOOL_CLOSE = "<tool_call>", "</tool_call>"
_ANSWER_LINE = re.compile(r"(?im)^[ \t]*\**Answer\s*:")


@dataclass(frozen=True)
class ToolCall:
    """A well-formed call: a tool name and a JSON object of arguments."""

    name: str
    arguments: dict
    id: str = ""
    index: int = field(default=-1, compare=False)  # position among the turn's calls, as written


@dataclass(frozen=True)
class ToolCallError:
    """A `<tool_call>` block that could not be read; `raw` is kept so the reasoner can be told what it wrote."""

    raw: str
    error: str
    index: int = field(default=-1, compare=False)  # position among the turn's blocks, shared with ToolCall


@dataclass(frozen=True)
class SplitOutput:
    thinking: str
    text: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_errors: list[ToolCallError] = field(default_factory=list)


def split_thinking(raw: str) -> tuple[str, str]:
    """Separate `<think>...</think>` from the visible text.

    A prompt may already open the think block (some templates end the generation prompt with `<think>`),
    so a closing tag without an opening one means everything before it was thinking. An unclosed
    `<think>` (the budget ran out without the forced close) is all thinking and no answer.
    """
    start = raw.find(THINK_OPEN)
    end = raw.rfind(THINK_CLOSE)
    if end == -1:
        if start == -1:
            return "", raw.strip()
        return raw[start + len(THINK_OPEN) :].strip(), raw[:start].strip()
    begin = start + len(THINK_OPEN) if 0 <= start < end else 0
    return raw[begin:end].strip(), raw[end + len(THINK_CLOSE) :].strip()


def estimated_thinking_tokens(total: int, thinking: str, visible: str) -> int:
    """A turn's thinking tokens where no backend counted them: `total` split by characters (an estimate)."""
    chars = len(thinking) + len(visible)
    return round(total * len(thinking) / chars) if chars else 0


def parse_tool_block(body: str, index: int) -> ToolCall | ToolCallError:
    """Read one Hermes block body: `{"name": ..., "arguments": {...}}`."""
    text = body.strip()
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        return ToolCallError(raw=text, error=f"the tool call is not valid JSON ({exc.msg} at char {exc.pos})")
    if not isinstance(payload, dict):
        return ToolCallError(raw=text, error="the tool call must be a JSON object with 'name' and 'arguments'")
    name = payload.get("name")
    if not isinstance(name, str) or not name:
        return ToolCallError(raw=text, error="the tool call has no 'name'")
    args = payload.get("arguments", {})
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except json.JSONDecodeError:
            return ToolCallError(raw=text, error="'arguments' is a string that is not a JSON object")
    if not isinstance(args, dict):
        return ToolCallError(raw=text, error="'arguments' must be a JSON object")
    return ToolCall(name=name, arguments=args, id=f"call_{index}", index=index)


def parse_tool_calls(text: str) -> tuple[str, list[ToolCall], list[ToolCallError]]:
    """Pull every `<tool_call>` block out of visible text; returns (text without blocks, calls, errors).

    An unclosed block (generation stopped mid-call, or a tag written in prose) ends where its JSON object
    ends, or else at the next `Answer:` line, so the final answer after it is never swallowed.
    """
    calls: list[ToolCall] = []
    errors: list[ToolCallError] = []
    kept: list[str] = []
    pos = 0
    for index, (start, body_start, body_end, end) in enumerate(_blocks(text)):
        kept.append(text[pos:start])
        parsed = parse_tool_block(text[body_start:body_end], index)
        if isinstance(parsed, ToolCall):
            calls.append(parsed)
        else:
            errors.append(ToolCallError(raw=parsed.raw, error=parsed.error, index=index))
        pos = end
    kept.append(text[pos:])
    rest = "".join(kept)
    if TOOL_CLOSE in rest and not calls and not errors:
        errors.append(ToolCallError(raw=text, error="'</tool_call>' without an opening '<tool_call>'"))
    return rest.replace(TOOL_CLOSE, "").strip(), calls, errors


def _blocks(text: str):
    """(start, body start, body end, end) of each block, in written order."""
    pos = 0
    while (start := text.find(TOOL_OPEN, pos)) != -1:
        body_start = start + len(TOOL_OPEN)
        close = text.find(TOOL_CLOSE, body_start)
        following = text.find(TOOL_OPEN, body_start)
        if close != -1 and (following == -1 or close < following):
            yield start, body_start, close, close + len(TOOL_CLOSE)
            pos = close + len(TOOL_CLOSE)
            continue
        body_end = _unclosed_end(text, body_start, following if following != -1 else len(text))
        yield start, body_start, body_end, body_end
        pos = body_end


def _unclosed_end(text: str, body_start: int, limit: int) -> int:
    """Where an unclosed block's body ends: after its JSON object, else before an `Answer:` line."""
    offset = len(text[body_start:limit]) - len(text[body_start:limit].lstrip())
    try:
        _, length = json.JSONDecoder().raw_decode(text[body_start + offset : limit])
        return body_start + offset + length
    except json.JSONDecodeError:
        answer = _ANSWER_LINE.search(text, body_start, limit)
        return answer.start() if answer else limit


def split_output(raw: str) -> SplitOutput:
    """Thinking, visible text and tool calls of one reasoner turn."""
    thinking, visible = split_thinking(raw)
    text, calls, errors = parse_tool_calls(visible)
    return SplitOutput(thinking=thinking, text=text, tool_calls=calls, tool_errors=errors)
