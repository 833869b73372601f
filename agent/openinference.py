"""OpenInference span attributes (the names Phoenix, Langfuse and Arize read) from our requests, outputs and steps.

Pure functions from our types to attribute dicts: no OpenTelemetry import here, so they are cheap to test and the
tracing modules (agent/telemetry*.py) keep only the hooks. Our own fields that OpenInference has no name for are
`xthink.*`. Values that are None mean "not set"; the caller drops them.
"""

from __future__ import annotations

import base64
import io
import json

MAX_ATTRIBUTE_CHARS = 32_000  # Phoenix's own cap on a string attribute
THUMBNAIL_PX = 128


def question(inputs) -> str:
    """The run's question: a regime graph's `question`, or the last user message of a chat turn."""
    if not isinstance(inputs, dict):
        return ""
    if inputs.get("question"):
        return clip(str(inputs["question"]))
    messages = inputs.get("messages") or []
    last = messages[-1] if messages else None
    content = last.get("content") if isinstance(last, dict) else getattr(last, "content", "")
    if isinstance(content, list):
        content = " ".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return clip(str(content or ""))


def run_attributes(outputs) -> dict:
    """The run's answer, regime and extraction count, read from its Result (chat) or final state (ask)."""
    from agent.result import build_result  # here: agent.result imports the nodes, which import us via context

    if not isinstance(outputs, dict) or not outputs.get("steps") and not outputs.get("result"):
        return {}
    result = outputs.get("result")
    if isinstance(result, dict):
        mode, answer, calls = result.get("mode"), result.get("answer"), result.get("extraction_calls")
    else:
        steps = outputs.get("steps", [])
        mode = mode_of(steps)
        built = build_result(mode, outputs, steps, None, "", 0.0)
        answer, calls = built.answer, built.extraction_calls
    attributes = {"output.value": clip(answer or ""), "xthink.mode": mode, "xthink.answer": answer,
                  "xthink.extraction_calls": calls}  # fmt: skip
    return {key: value for key, value in attributes.items() if value is not None}


def mode_of(steps: list) -> str:
    """The regime, from the first step every regime writes (graphs/cli/selftest.py checks the same shapes)."""
    for step in steps:
        purpose = getattr(step, "purpose", "")
        if purpose in ("iterate", "look"):
            return "iterative"
        if purpose in ("observe", "extract"):
            return "extract"
        if purpose in ("caption", "direct"):
            return "caption" if purpose == "caption" else "direct"
    return "iterative"


def tool_attributes(step) -> dict:
    """An extraction as a TOOL span: what was asked, of which image and region, and what came back."""
    return {
        "openinference.span.kind": "TOOL", "tool.name": "extract",
        "input.value": clip(json.dumps({"request": step.request, "image": step.image_id, "region": step.region})),
        "output.value": clip(step.error or step.output), "xthink.purpose": step.purpose,
        "xthink.request": step.request, "xthink.image_id": step.image_id, "xthink.region": step.region,
        "xthink.source_image": step.source_image, "xthink.source_region": step.source_region,
        "xthink.crop_id": step.crop_id, "xthink.repairs": step.repairs or None,
        "xthink.cached_tokens": step.cached_tokens, "xthink.error": step.error, "xthink.review": step.review,
    }  # fmt: skip


def perceiver_attributes(model: str | None, step) -> dict:
    """The perceiver's generate call behind an extraction (or the direct answer) as an LLM span."""
    return {
        "openinference.span.kind": "LLM", "llm.model_name": model, "llm.system": "extract-think",
        "llm.input_messages.0.message.role": "user", "llm.input_messages.0.message.content": clip(step.instruction),
        "llm.output_messages.0.message.role": "assistant", "llm.output_messages.0.message.content": clip(step.output),
        "input.value": clip(step.instruction), "output.value": clip(step.output),
        **tokens(step.prompt_tokens, step.output_tokens, step.cached_tokens),
    }  # fmt: skip


def tokens(prompt: int, completion: int, cached: int, reasoning: int | None = None) -> dict:
    counts = {
        "llm.token_count.prompt": prompt,
        "llm.token_count.completion": completion,
        "llm.token_count.total": prompt + completion,
        "llm.token_count.prompt_details.cache_read": cached,
    }
    if reasoning is not None:
        counts["llm.token_count.completion_details.reasoning"] = reasoning
    return counts


def thumbnail(path: str | None, region: list[float] | None) -> str | None:
    """The region (or the image) as a small JPEG data URL; None when the file is gone."""
    if not path:
        return None
    from PIL import Image

    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
            if region:
                w, h = img.size
                img = img.crop((int(region[0] * w), int(region[1] * h), max(int(region[2] * w), 1),
                                max(int(region[3] * h), 1)))  # fmt: skip
            img.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
            buffer = io.BytesIO()
            img.save(buffer, "JPEG", quality=70)
    except (OSError, ValueError):
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def clip(text: str) -> str:
    return text if len(text) <= MAX_ATTRIBUTE_CHARS else text[:MAX_ATTRIBUTE_CHARS] + " [...]"


def request_attributes(model: str, request) -> dict:
    settings = request.settings
    attributes = {
        "openinference.span.kind": "LLM", "llm.model_name": model, "llm.system": "extract-think",
        "llm.invocation_parameters": json.dumps({
            "thinking": settings.thinking, "greedy": settings.greedy, "temperature": settings.temperature,
            "top_p": settings.top_p, "max_new_tokens": settings.max_new_tokens,
            "thinking_budget": settings.thinking_budget, "seed": settings.seed}),
        "input.value": clip(request.messages[-1].content if request.messages else ""),
    }  # fmt: skip
    for i, message in enumerate(request.messages):
        prefix = f"llm.input_messages.{i}.message"
        attributes[f"{prefix}.role"] = message.role
        attributes[f"{prefix}.content"] = clip(message.content)
        if message.tool_call_id:
            attributes[f"{prefix}.tool_call_id"] = message.tool_call_id
        attributes.update(tool_calls(prefix, message.tool_calls))
    for i, tool in enumerate(request.tools):
        attributes[f"llm.tools.{i}.tool.json_schema"] = json.dumps(tool)
    return attributes


def output_attributes(output) -> dict:
    prefix = "llm.output_messages.0.message"
    errors = {"xthink.tool_errors": [e.error for e in output.tool_errors]} if output.tool_errors else {}
    return {**errors,
        f"{prefix}.role": "assistant", f"{prefix}.content": clip(output.text), **tool_calls(prefix, output.tool_calls),
        "output.value": clip(output.raw), "xthink.thinking": clip(output.thinking),
        "xthink.visible": clip(output.text), "xthink.finish_reason": output.finish_reason,
        "xthink.seconds": output.seconds,
        **tokens(output.prompt_tokens, output.output_tokens, output.cached_tokens, output.thinking_tokens),
    }  # fmt: skip


def tool_calls(prefix: str, calls) -> dict:
    attributes = {}
    for j, call in enumerate(calls):
        attributes[f"{prefix}.tool_calls.{j}.tool_call.id"] = call.id
        attributes[f"{prefix}.tool_calls.{j}.tool_call.function.name"] = call.name
        attributes[f"{prefix}.tool_calls.{j}.tool_call.function.arguments"] = json.dumps(call.arguments)
    return attributes
