"""The streamed answer (`"stream": true`): server-sent events in OpenAI's `chat.completion.chunk` format.

The agent's thinking and each extraction stream as `reasoning_content`, the answer as `content`; a last chunk
carries the finish reason, usage and the Result, then `[DONE]`. A failure after the stream started is one more
event holding an error body, since the status code was already sent.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

from agent.trace import ExtractStep, ReasonStep
from graphs.conversation import ChatTurn, Token
from graphs.server.background_run import BackgroundRun
from graphs.server.completion import public_result, usage
from graphs.server.errors import ApiError, error_body
from graphs.server.redaction import Redactor


async def sse(run: BackgroundRun, rid: str, model: str, redact: Redactor):
    """The run's events as SSE lines, as they come."""
    created = int(time.time())

    def chunk(delta: dict, finish: str | None = None, **extra) -> str:
        body = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}  # fmt: skip
        return f"data: {json.dumps(body)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    try:
        async for event in run.events():
            for delta, finish, extra in _deltas(event, model, redact):
                yield chunk(delta, finish, **extra)
    except ApiError as exc:
        yield f"data: {json.dumps(error_body(exc.status, redact(exc.message), exc.kind))}\n\n"
    yield "data: [DONE]\n\n"


def _deltas(event, model: str, redact: Redactor) -> Iterator[tuple[dict, str | None, dict]]:
    """The chunks (delta, finish reason, extra fields) one event of the run streams as; most stream none."""
    if isinstance(event, Token) and event.phase == "thinking":
        yield {"reasoning_content": event.text}, None, {}
    elif isinstance(event, ExtractStep):
        yield {"reasoning_content": f"\n[looked at {event.image_id}: {event.request or event.purpose}]\n"}, None, {}
    elif isinstance(event, ReasonStep) and event.tool_calls:
        yield {"reasoning_content": event.text}, None, {}
    elif isinstance(event, ChatTurn):
        if event.error:
            raise ApiError(400, event.error)
        yield {"content": redact(event.reply)}, None, {}
        extra = {"usage": usage(event.result), "extract_think": public_result(event.result, model, redact)}
        yield {}, "stop", extra
