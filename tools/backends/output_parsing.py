"""Parse what a reasoner generated: thinking vs visible text and Hermes tool calls.

These live below the backends (every backend parses its raw output the same way) and below `agent/`,
so imports run one way: graphs -> agent -> tools. The answer extraction, which only the agent and the
evals need, stays in `agent/parsing.py`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
_TOOL_BLOCK = re.compile(r"<tool_call>(.*?)(?:</tool_call>|$)", re.DOTALL)


@dataclass(frozen=True)
class ToolCall:
    """A well-formed call: a tool name and a JSON object of arguments."""

    name: str
    arguments: dict
    id: str = ""


@dataclass(frozen=True)
class ToolCallError:
    """A `<tool_call>` block that could not be read; `raw` is kept so the reasoner can be told what it wrote."""

    raw: str
    error: str


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
    return ToolCall(name=name, arguments=args, id=f"call_{index}")


def parse_tool_calls(text: str) -> tuple[str, list[ToolCall], list[ToolCallError]]:
    """Pull every `<tool_call>` block out of visible text; returns (text without blocks, calls, errors).

    An unclosed block at the end (generation stopped mid-call) is read to the end of the text.
    """
    calls: list[ToolCall] = []
    errors: list[ToolCallError] = []
    for i, match in enumerate(_TOOL_BLOCK.finditer(text)):
        parsed = parse_tool_block(match.group(1), i)
        (calls if isinstance(parsed, ToolCall) else errors).append(parsed)
    stray_close = "</tool_call>" in _TOOL_BLOCK.sub("", text)
    remaining = _TOOL_BLOCK.sub("", text).replace("</tool_call>", "").strip()
    if stray_close and not calls and not errors:
        errors.append(ToolCallError(raw=text, error="'</tool_call>' without an opening '<tool_call>'"))
    return remaining, calls, errors


def split_output(raw: str) -> SplitOutput:
    """Thinking, visible text and tool calls of one reasoner turn."""
    thinking, visible = split_thinking(raw)
    text, calls, errors = parse_tool_calls(visible)
    return SplitOutput(thinking=thinking, text=text, tool_calls=calls, tool_errors=errors)
