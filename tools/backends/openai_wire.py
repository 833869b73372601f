"""Build OpenAI chat-completions requests and parse their responses: pure functions, no I/O.

Shared by the HTTP backend (vLLM, `transformers serve`, any compatible server) and the in-process vLLM
perceiver. Thinking is switched per request through `chat_template_kwargs`; images go as data URLs,
image parts first and the instruction last, so repeated requests on one image share a cacheable prefix.
Reasoning is read from `reasoning` (vLLM), `reasoning_content` (older servers) or `<think>` in the
content; tool calls from `tool_calls` (server-side parser on) or `<tool_call>` blocks in the text (off).
"""

from __future__ import annotations

from collections.abc import Callable

import base64
import io
import json
import os
import re
from collections import OrderedDict
from threading import Lock

from PIL import Image

from tools.backends.output_parsing import ToolCall, ToolCallError, parse_tool_calls, split_thinking
from tools.images.pixels import fingerprint
from tools.backends.base import Message, PerceiveOutput, PerceiveRequest, ReasonOutput, ReasonRequest


# Servers differ in whether they skip special tokens when decoding; Qwen-style `<|...|>` markers are
# never content, so they are dropped (the in-process backends decode with skip_special_tokens=True).
_SPECIAL_MARKER = re.compile(r"<\|[A-Za-z0-9_]+\|>")


def strip_special(text: str) -> str:
    return _SPECIAL_MARKER.sub("", text)


class ResponseError(ValueError):
    """A response that does not have the chat-completions shape."""


def message_json(message: Message) -> dict:
    out: dict = {"role": message.role, "content": message.content}
    if message.tool_calls:
        out["tool_calls"] = [
            {"id": c.id or f"call_{i}", "type": "function",
             "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
            for i, c in enumerate(message.tool_calls)
        ]  # fmt: skip
    if message.role == "tool":
        out["tool_call_id"] = message.tool_call_id or "call_0"
    return out


def sampling_fields(settings, max_tokens: int) -> dict:
    """Decoding fields of a request; greedy is temperature 0."""
    body: dict = {"max_tokens": max_tokens}
    if settings.greedy:
        body["temperature"] = 0.0
    else:
        body.update(temperature=settings.temperature, top_p=settings.top_p)
    if settings.seed is not None:
        body["seed"] = settings.seed
    return body


CLOSE_THINK = "\n</think>\n\n"


def first_phase_tokens(settings) -> int:
    """Tokens for the first call: the thinking budget when it applies, else the whole answer."""
    if settings.thinking and settings.thinking_budget:
        return min(settings.thinking_budget, settings.max_new_tokens)
    return settings.max_new_tokens


def reason_body(model: str, request: ReasonRequest, max_tokens: int | None = None) -> dict:
    """The request of a reasoner turn; `max_tokens` defaults to the thinking budget (first phase)."""
    settings = request.settings
    body = {
        "model": model,
        "messages": [message_json(m) for m in request.messages],
        "chat_template_kwargs": {"enable_thinking": settings.thinking},
        **sampling_fields(settings, max_tokens if max_tokens is not None else first_phase_tokens(settings)),
    }
    if request.tools:
        body["tools"] = list(request.tools)
        body["tool_choice"] = "auto"
    return body


def needs_continuation(settings, first: ReasonOutput) -> bool:
    """The first phase stopped at the thinking budget with tokens of the answer's allowance left."""
    budgeted = bool(settings.thinking and settings.thinking_budget)
    return budgeted and first.finish_reason == "length" and first.output_tokens < settings.max_new_tokens


def turn_so_far(first: ReasonOutput) -> str:
    """The assistant message after the first phase, its think block closed (forced if still open)."""
    _, visible = split_thinking(first.raw)
    return f"<think>\n{first.thinking.strip()}{CLOSE_THINK}{visible}"


def continuation_body(model: str, request: ReasonRequest, first: ReasonOutput, continue_message: bool) -> dict:
    """The second phase: the same conversation plus the assistant message so far.

    `continue_message`: the server continues that message (vLLM: `continue_final_message` with
    `add_generation_prompt: false`), as the in-process budget does. Otherwise (`transformers serve`
    always adds a generation prompt) a new assistant turn with thinking off answers after it.
    """
    body = reason_body(model, request, request.settings.max_new_tokens - first.output_tokens)
    body["messages"].append({"role": "assistant", "content": turn_so_far(first)})
    if continue_message:
        body.update(continue_final_message=True, add_generation_prompt=False)
    else:
        body["chat_template_kwargs"] = {"enable_thinking": False}
    return body


def merge_phases(first: ReasonOutput, second: ReasonOutput) -> ReasonOutput:
    """One turn from a budget-stopped first phase and its continuation."""
    continued = second.raw if "<think>" not in second.raw else split_thinking(second.raw)[1]
    if second.thinking and not second.text and not second.tool_calls:  # a reasoning parser mislabelled it
        continued = second.thinking
    thinking_tokens = first.thinking_tokens if first.text else first.output_tokens
    return ReasonOutput.from_raw(turn_so_far(first) + continued, first.prompt_tokens, thinking_tokens,
                                 first.output_tokens + second.output_tokens, first.seconds + second.seconds,
                                 second.finish_reason)  # fmt: skip


DEFAULT_DATA_URL_CACHE_MB = 256


class DataUrlCache:
    """PNG data URLs by image content, so a repeated image is encoded once and sent byte-identical.

    Keyed by a hash of the pixels, never by a caller's id: ids such as `image_1` repeat across samples.
    Bounded in bytes, least recently used out first (XTHINK_DATA_URL_CACHE_MB, default 256): a count says
    nothing here, since one 8K image's data URL is over 100 MB. A URL larger than the whole bound is sent,
    not kept.
    """

    def __init__(self, max_mb: float | None = None):
        self.max_bytes = int((data_url_cache_mb() if max_mb is None else max_mb) * 1024 * 1024)
        self._urls: OrderedDict[str, str] = OrderedDict()
        self._bytes = 0
        self._lock = Lock()

    @property
    def nbytes(self) -> int:
        return self._bytes

    def get(self, image: Image.Image) -> str:
        key = fingerprint(image)
        with self._lock:
            if key in self._urls:
                self._urls.move_to_end(key)
                return self._urls[key]
        url = data_url(image)
        if len(url) > self.max_bytes:
            return url
        with self._lock:
            if key not in self._urls:
                self._urls[key] = url
                self._bytes += len(url)
            while self._bytes > self.max_bytes:
                self._bytes -= len(self._urls.popitem(last=False)[1])
        return url


def data_url_cache_mb() -> float:
    """XTHINK_DATA_URL_CACHE_MB (megabytes of data URLs an HTTP or vLLM perceiver keeps; 0 keeps none)."""
    raw = os.environ.get("XTHINK_DATA_URL_CACHE_MB", "").strip()
    try:
        value = float(raw) if raw else DEFAULT_DATA_URL_CACHE_MB
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise ValueError(f"XTHINK_DATA_URL_CACHE_MB must be a number of megabytes >= 0, not '{raw[:40]}'")
    return value


def data_url(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def perceive_messages(request: PerceiveRequest, urls: list[str]) -> list[dict]:
    content = [{"type": "image_url", "image_url": {"url": url}} for url in urls]
    content.append({"type": "text", "text": request.instruction})
    return [{"role": "user", "content": content}]


def perceive_body(model: str, request: PerceiveRequest, urls: list[str]) -> dict:
    return {
        "model": model,
        "messages": perceive_messages(request, urls),
        "max_tokens": request.max_new_tokens,
        "temperature": 0.0,
        "chat_template_kwargs": {"enable_thinking": False},
    }


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
    if thinking_tokens is None:  # not reported: split the count by characters (an estimate)
        total_chars = len(reasoning) + len(visible)
        thinking_tokens = round(completion * len(reasoning) / total_chars) if total_chars else 0
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
