"""The answer to a non-streaming request, a `chat.completion`, and the parts the streamed answer shares with
it: the token usage and the public Result.

What a client sees names models by the served id it asked for, never the operator's model strings (folders,
internal URLs, credentials) or server folders.
"""

from __future__ import annotations

import time

from agent.trace import Result
from graphs.conversation import ChatTurn
from graphs.server.errors import ApiError
from graphs.server.redaction import Redactor


def usage(result: Result | None) -> dict:
    """Tokens of both models: every step's prompt and output."""
    steps = result.steps if result else []
    prompt = sum(s.prompt_tokens for s in steps)
    completion_tokens = sum(s.output_tokens for s in steps)
    return {"prompt_tokens": prompt, "completion_tokens": completion_tokens, "total_tokens": prompt + completion_tokens}


def public_result(result: Result | None, model: str, redact: Redactor) -> dict | None:
    """The Result for a client: the models named by the served id `model`, image paths by the stored file's
    name, and no operator string in any text (a step's error may quote one)."""
    if result is None:
        return None
    data = result.model_dump(mode="json")
    for image in data["images"]:
        image["path"] = image["path"].rsplit("/", 1)[-1]
    data["reasoner"] = model if data["reasoner"] is not None else None
    data["perceiver"] = model
    return redact.data(data)


def completion(turn: ChatTurn, rid: str, model: str, redact: Redactor) -> dict:
    if turn.error:
        raise ApiError(400, turn.error)
    result = turn.result
    finish = "length" if result and result.steps and getattr(result.steps[-1], "finish_reason", "") == "length" \
        else "stop"  # fmt: skip
    message = {"role": "assistant", "content": redact(turn.reply), "reasoning_content": redact(turn.reasoning)}
    return {
        "id": rid, "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "finish_reason": finish, "message": message}],
        "usage": usage(result), "extract_think": public_result(result, model, redact),
    }  # fmt: skip
