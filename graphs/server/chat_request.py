"""What a client sends to `/v1/chat/completions`: the request model, its validation, and its messages read
into the agent's chat messages with every image fetched under the image policy and stored.

Requests are pydantic models with unknown fields kept aside (OpenAI clients send many; the settings mapping
reads ours from them). Every problem is a 400 that names the field.
"""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, StrictBool, ValidationError

from agent.assistant_turns import content_text, image_source
from graphs.server.errors import ApiError
from tools.images.acquire import acquire
from tools.images.inputs import ImagePolicy
from tools.images.store import ImageInputError

ROLES = ("user", "assistant", "system", "developer", "tool")


class ChatRequest(BaseModel):
    """The fields we read; OpenAI's others (n=1, stop, tools, ...) are accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[dict]
    stream: StrictBool = False  # "yes" or 1 is no flag
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None


def parse_request(body: bytes) -> ChatRequest:
    try:
        return ChatRequest.model_validate(json.loads(body or b"null"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise ApiError(400, "the request body is not valid JSON") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise ApiError(400, f"{where}: {first['msg']}", param=where) from None


def to_chat_messages(messages: list[dict], policy: ImagePolicy, max_images: int) -> list[dict]:
    """OpenAI messages with every image read under the policy and stored: blocks name stored files only."""
    out, count = [], 0
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ROLES:
            raise ApiError(400, f"messages[{i}]: role must be user, assistant or system", param=f"messages.{i}")
        if role not in ("user", "assistant"):
            continue  # the agent's own system prompts are fixed; tool turns belong to other agents
        content = message.get("content") or ""
        if role == "assistant" or isinstance(content, str):
            out.append({"role": role, "content": content_text(content)})
            continue
        if not isinstance(content, list):
            raise ApiError(400, f"messages[{i}].content must be a string or a list of parts")
        blocks, count = _user_blocks(content, policy, max_images, count)
        out.append({"role": "user", "content": blocks})
    if not out or out[-1]["role"] != "user":
        raise ApiError(400, "the last message must be the user's question", param="messages")
    return out


def _user_blocks(parts: list, policy: ImagePolicy, max_images: int, count: int) -> tuple[list[dict], int]:
    """A user message's text and image parts as blocks, and the request's image count so far."""
    blocks = []
    for part in parts:
        source = image_source(part)
        if source is None:
            if isinstance(part, dict) and part.get("type") == "text":
                blocks.append({"type": "text", "text": str(part.get("text", ""))})
            continue
        count += 1
        if count > max_images:
            raise ApiError(400, f"more than {max_images} images in one request")
        blocks.append({"type": "image", "file_id": _stored(source, policy, f"image {count}")})
    return blocks, count


def _stored(source: str, policy: ImagePolicy, label: str) -> str:
    if source.startswith("stored:"):
        raise ApiError(400, f"{label}: file ids are not accepted here; send a data URL")
    try:
        return acquire(source, policy, label).digest
    except ImageInputError as exc:
        raise ApiError(exc.status, str(exc)) from None
