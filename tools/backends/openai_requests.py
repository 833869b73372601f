"""The OpenAI chat-completions requests this project's client sends: pure functions, no I/O.

Shared by the HTTP backend (vLLM, `transformers serve`, any compatible server) and the in-process vLLM
backend. Thinking is switched per request through `chat_template_kwargs`; images go as data URLs
(tools/backends/data_urls.py), image parts first and the instruction last, so repeated requests on one image
share a cacheable prefix. What comes back is read in tools/backends/openai_responses.py.
"""

from __future__ import annotations

import json

from tools.backends.base import Message, PerceiveRequest, ReasonOutput, ReasonRequest, SamplingSettings
from tools.backends.output_parsing import split_thinking
from tools.backends.thinking import CLOSE_THINK, thinking_phase_tokens


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


def sampling_fields(settings: SamplingSettings, max_tokens: int) -> dict:
    """Decoding fields of a request; greedy is temperature 0."""
    body: dict = {"max_tokens": max_tokens}
    if settings.greedy:
        body["temperature"] = 0.0
    else:
        body.update(temperature=settings.temperature, top_p=settings.top_p)
    if settings.seed is not None:
        body["seed"] = settings.seed
    return body


def reason_body(model: str, request: ReasonRequest, max_tokens: int | None = None) -> dict:
    """The request of a reasoner turn; `max_tokens` defaults to the thinking budget (first phase)."""
    settings = request.settings
    body = {
        "model": model,
        "messages": [message_json(m) for m in request.messages],
        "chat_template_kwargs": {"enable_thinking": settings.thinking},
        **sampling_fields(settings, max_tokens if max_tokens is not None else thinking_phase_tokens(settings)),
    }
    if request.tools:
        body["tools"] = list(request.tools)
        body["tool_choice"] = "auto"
    return body


def turn_so_far(first: ReasonOutput) -> str:
    """The assistant message after the first phase, its think block closed (forced if still open)."""
    _, visible = split_thinking(first.raw)
    return f"<think>\n{first.thinking.strip()}{CLOSE_THINK}{visible}"


def continuation_body(model: str, request: ReasonRequest, first: ReasonOutput, max_tokens: int,
                      continue_message: bool) -> dict:  # fmt: skip
    """The second phase: the same conversation plus the assistant message so far, `max_tokens` to go.

    `continue_message`: the server continues that message (vLLM: `continue_final_message` with
    `add_generation_prompt: false`), as the in-process budget does. Otherwise (`transformers serve`
    always adds a generation prompt) a new assistant turn with thinking off answers after it.
    """
    body = reason_body(model, request, max_tokens)
    body["messages"].append({"role": "assistant", "content": turn_so_far(first)})
    if continue_message:
        body.update(continue_final_message=True, add_generation_prompt=False)
    else:
        body["chat_template_kwargs"] = {"enable_thinking": False}
    return body


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


def probe_body(model: str) -> dict:
    """The smallest completion (one token): asks a server whether it serves a model its `/models` leaves out."""
    return {"model": model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}
