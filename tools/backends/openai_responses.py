"""What OpenAI-compatible servers answer, read into the backends' outputs: pure functions, no I/O.

Reasoning is read from `reasoning` (vLLM), `reasoning_content` (older servers) or `<think>` in the content;
tool calls from `tool_calls` (server-side parser on) or `<tool_call>` blocks in the text (off). A streamed
answer is put back together into the payload the same request would have returned without `stream`.
The requests these answer are built in tools/backends/openai_requests.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from tools.backends.base import PerceiveOutput, ReasonOutput
from tools.backends.openai_requests import turn_so_far
from tools.backends.output_parsing import (
    ToolCall,
    ToolCallError,
    estimated_thinking_tokens,
    parse_tool_calls,
    split_thinking,
)

# Servers differ in whether they skip special tokens when decoding; Qwen-style `<|...|>` markers are
# never content, so they are dropped (the in-process backends decode with skip_special_tokens=True).
_SPECIAL_MARKER = re.compile(r"<\|[A-Za-z0-9_]+\|>")


def strip_special(text: str) -> str:
    return _SPECIAL_MARKER.sub("", text)


class ResponseError(ValueError):
    """A response that does not have the chat-completions shape."""


def _first_message(payload: dict) -> tuple[dict, dict]:
    try:
        choice = payload["choices"][0]
        return choice, choice["message"]
    except (KeyError, IndexError, TypeError):
        raise ResponseError("the response has no choices[0].message") from None


def _tool_calls(message: dict, content: str) -> tuple[str, list[ToolCall], list[ToolCallError]]:
    raw_calls = message.get("tool_calls") or []
    if not raw_calls:
        return parse_tool_calls(content)
    calls, errors = [], []
    for i, raw in enumerate(raw_calls):
        function = (raw or {}).get("function") or {}
        name, arguments = function.get("name"), function.get("arguments", "{}")
        try:
            args = json.loads(arguments) if isinstance(arguments, str) else arguments
        except json.JSONDecodeError:
            errors.append(ToolCallError(raw=str(arguments), error="the tool call arguments are not valid JSON",
                                        index=i))
            continue
        if not name or not isinstance(args, dict):
            errors.append(ToolCallError(raw=json.dumps(function), error="the tool call has no name or bad arguments",
                                        index=i))
            continue
        calls.append(ToolCall(name=name, arguments=args, id=raw.get("id") or f"call_{i}", index=i))
    return content.strip(), calls, errors


def parse_reason_response(payload: dict, seconds: float) -> ReasonOutput:
    choice, message = _first_message(payload)
    content = strip_special(message.get("content") or "")
    reasoning = strip_special(message.get("reasoning") or message.get("reasoning_content") or "")
    if reasoning:
        visible = split_thinking(content)[1] if "</think>" in content else content.strip()
    else:
        reasoning, visible = split_thinking(content)
    text, calls, errors = _tool_calls(message, visible)
    usage = payload.get("usage") or {}
    completion = int(usage.get("completion_tokens") or 0)
    details = usage.get("completion_tokens_details") or {}
    thinking_tokens = details.get("reasoning_tokens")
    if thinking_tokens is None:  # not reported
        thinking_tokens = estimated_thinking_tokens(completion, reasoning, visible)
    raw = (f"<think>\n{reasoning}\n</think>\n\n" if reasoning else "") + content
    return ReasonOutput(
        raw=raw,
        thinking=reasoning.strip(),
        text=text,
        tool_calls=calls,
        tool_errors=errors,
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        thinking_tokens=int(thinking_tokens),
        output_tokens=completion,
        seconds=seconds,
        finish_reason="length" if choice.get("finish_reason") == "length" else "stop",
    )


def merge_phases(first: ReasonOutput, second: ReasonOutput) -> ReasonOutput:
    """One turn from a budget-stopped first phase and its continuation."""
    continued = second.raw if "<think>" not in second.raw else split_thinking(second.raw)[1]
    if second.thinking and not second.text and not second.tool_calls:  # a reasoning parser mislabelled it
        continued = second.thinking
    thinking_tokens = first.thinking_tokens if first.text else first.output_tokens
    return ReasonOutput.from_raw(turn_so_far(first) + continued, first.prompt_tokens, thinking_tokens,
                                 first.output_tokens + second.output_tokens, first.seconds + second.seconds,
                                 second.finish_reason)  # fmt: skip


def assemble_chunks(chunks: list[dict]) -> dict:
    """Streamed chat-completion chunks put together into the payload the same request would have returned
    without `stream`: content, reasoning, tool calls (arguments joined by index), finish reason, usage."""
    content, reasoning, calls, finish, usage = [], [], {}, None, None
    for chunk in chunks:
        usage = chunk.get("usage") or usage
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            finish = choice.get("finish_reason") or finish
            content.append(delta.get("content") or "")
            reasoning.append(delta.get("reasoning_content") or delta.get("reasoning") or "")
            for call in delta.get("tool_calls") or []:
                slot = calls.setdefault(call.get("index", len(calls)), {"id": "", "type": "function",
                                                                          "function": {"name": "", "arguments": ""}})
                slot["id"] = call.get("id") or slot["id"]
                function = call.get("function") or {}
                slot["function"]["name"] += function.get("name") or ""
                slot["function"]["arguments"] += function.get("arguments") or ""
    message = {"role": "assistant", "content": "".join(content), "reasoning_content": "".join(reasoning)}
    if calls:
        message["tool_calls"] = [calls[i] for i in sorted(calls)]
    return {"choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": usage or {}}


def text_relay(on_text: Callable[[str], None]) -> Callable[[dict], None]:
    """A chunk callback that hands a stream's text to `on_text`: reasoning, then `</think>`, then content (the
    marker tells a listener the visible part began, as it would read it in the raw output)."""
    state = {"reasoning": False}

    def on_chunk(chunk: dict) -> None:
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if reasoning:
                state["reasoning"] = True
                on_text(reasoning)
            if delta.get("content"):
                prefix = "</think>" if state.pop("reasoning", False) else ""
                on_text(prefix + delta["content"])

    return on_chunk


def parse_perceive_response(payload: dict, seconds: float) -> PerceiveOutput:
    _, message = _first_message(payload)
    _, text = split_thinking(strip_special(message.get("content") or ""))
    usage = payload.get("usage") or {}
    return PerceiveOutput(
        text=text,
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        output_tokens=int(usage.get("completion_tokens") or 0),
        seconds=seconds,
    )


def served_models(payload: dict) -> list[str]:
    try:
        return [str(m["id"]) for m in payload["data"]]
    except (KeyError, TypeError):
        raise ResponseError("the /models response has no data[].id") from None


def served_by_vllm(payload: dict, model: str) -> bool:
    """vLLM lists its models as owned by "vllm"; it accepts `continue_final_message`."""
    return any(m.get("id") == model and m.get("owned_by") == "vllm" for m in payload.get("data", []))
