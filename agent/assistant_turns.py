"""The assistant graph's conversation: chat messages in, one regime run per turn, an AI message out.

Messages come in the format LangChain and the OpenAI API use (role/content dicts or message objects;
text parts, `image_url` parts, LangChain `image` blocks with `base64`/`url`/`file_id`). Pixels never
reach state, so any checkpointer can store it:
- the `messages` reducer (`add_chat_messages`) swaps every inline image (data URL, base64) for a
  `{"type": "image", "file_id": <sha256>}` block before LangGraph writes anything, keeping the decoded
  bytes in memory for the turn's first node (a reducer runs on the server's event loop: no disk or
  network there);
- `ingest` (the first node) stores those bytes in the content-addressed image store, fetches URLs and
  reads paths under the server's rules (tools/images/acquire.py), and names each new image `image_N`
  after the conversation's earlier ones (the same bytes sent again keep their id).
A turn whose input cannot be used gets an AI message saying why and `error` set; the thread stays usable.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Annotated, Any, Literal

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, convert_to_messages
from langgraph.graph.message import add_messages
from langgraph.runtime import Runtime
from typing_extensions import TypedDict  # pydantic (LangGraph Server's schemas) needs it before Python 3.12

from agent.context import live_context
from agent.result import build_result
from agent.settings import InputError
from agent.state import AgentContext, AgentState
from agent.trace import MODES, ImageInfo, ReasonStep
from tools.images.acquire import acquire
from tools.images.inputs import ImagePolicy, decode_base64
from tools.images.store import ImageInputError

MAX_IMAGES_PER_TURN = 8
_STAGED_MAX_BYTES = 256 * 1024 * 1024


class ChatInput(TypedDict):
    messages: list[AnyMessage]


class ChatOutput(TypedDict, total=False):
    messages: list[AnyMessage]
    result: dict | None  # the turn's Result as JSON (the schema of `xthink ask --json`)
    error: str | None


class _Staged:
    """Decoded inline images between the reducer and `ingest`, by digest (bounded, oldest dropped)."""

    def __init__(self, max_bytes: int = _STAGED_MAX_BYTES):
        self.max_bytes = max_bytes
        self._data: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0  # kept as entries come and go: no sum over every entry on each put
        self._lock = threading.Lock()

    def put(self, data: bytes) -> str:
        import hashlib

        digest = hashlib.sha256(data).hexdigest()
        with self._lock:
            if digest not in self._data:
                self._bytes += len(data)
            self._data[digest] = data
            self._data.move_to_end(digest)
            while self._bytes > self.max_bytes and len(self._data) > 1:
                self._bytes -= len(self._data.popitem(last=False)[1])
        return digest

    def get(self, digest: str) -> bytes | None:
        """The bytes, left in place: two runs sending the same image at once both find them."""
        with self._lock:
            return self._data.get(digest)


STAGED = _Staged()


def add_chat_messages(left: list, right: Any) -> list:
    """LangGraph's add_messages, with inline images swapped for content references first."""
    incoming = convert_to_messages(right if isinstance(right, list) else [right])
    return add_messages(left, [_without_pixels(m) for m in incoming])


def _without_pixels(message):
    if not isinstance(message, HumanMessage) or not isinstance(message.content, list):
        return message
    return message.model_copy(update={"content": [_stage_block(b) for b in message.content]})


def _stage_block(block):
    source = image_source(block)
    if source is None or not source.startswith("data:"):
        return block  # URLs, paths and stored references carry no pixels: `ingest` reads them
    try:
        data = decode_base64(source, ImagePolicy.from_env(), label="inline image")
    except ImageInputError as exc:
        return {"type": "image", "error": str(exc), "status": exc.status}
    mime = source[5:].split(";")[0]
    return {"type": "image", "file_id": STAGED.put(data), "mime_type": mime}


def image_source(block) -> str | None:
    """A content block's image as a data URL, URL or path ('stored:<digest>' for file ids); None if no image."""
    if not isinstance(block, dict):
        return None
    kind = block.get("type")
    if kind == "image_url":
        value = block.get("image_url")
        url = value.get("url") if isinstance(value, dict) else value
        return url if isinstance(url, str) else ""
    if kind not in ("image", "input_image"):
        return None
    data = block.get("base64") or (block.get("data") if block.get("source_type") == "base64" else None)
    if isinstance(data, str) and data:
        return f"data:{block.get('mime_type') or 'image/png'};base64,{data}"
    if isinstance(block.get("file_id"), str) and block["file_id"]:
        return f"stored:{block['file_id']}"
    url = block.get("url") or block.get("image_url")
    return url if isinstance(url, str) else ""


class ChatState(AgentState, total=False):
    messages: Annotated[list[AnyMessage], add_chat_messages]
    mode: str  # `ingest`: the turn's regime
    turn_start: int  # `ingest`: where this turn's steps begin in `steps`
    turn_started: float  # `ingest`: wall-clock start of the turn
    result: dict | None  # `respond`: the turn's Result as JSON
    error: str | None  # `ingest`: why the turn's input could not be used


def ingest(state: ChatState, runtime: Runtime[AgentContext]) -> dict:
    """Read the new user turn: its text is the question, its images join the conversation's."""
    ctx = live_context(runtime, {})
    messages = state.get("messages", [])
    turn = {"turn_start": len(state.get("steps", [])), "turn_started": time.time(), "result": None, "error": None}
    try:
        if ctx.mode not in MODES:
            raise InputError(f"unknown mode '{ctx.mode}'; choose one of {', '.join(MODES)}")
        unread = [m for m in messages if isinstance(m, HumanMessage) and _has_unread_images(m)]
        updated, images = _store_images(unread, list(state.get("images", [])))
        question = "\n".join(_text(m) for m in _new_user_messages(messages)).strip()
        if not question:
            raise InputError("the message has no text: ask a question about the image(s)")
        if not images:
            raise InputError("no image in the conversation yet: send one with the question")
    except (InputError, ImageInputError) as exc:
        message = AIMessage(content=f"I could not use that message: {exc}", response_metadata={"error": str(exc)})
        dropped = [_drop_images(m, str(exc)) for m in messages if isinstance(m, HumanMessage) and _has_unread_images(m)]
        return {**turn, "error": str(exc), "messages": [*dropped, message], "mode": ctx.mode}
    if not state.get("history"):
        question = earlier_turns(messages) + question
    return {
        **turn, "messages": updated, "images": images, "question": question, "options": [], "mode": ctx.mode,
        "request": None, "description": "", "final_output": "", "final_text": "",
        "pending_calls": [], "pending_errors": [],
    }  # fmt: skip


def _new_user_messages(messages: list) -> list[HumanMessage]:
    """The human messages after the last AI message: this turn's input."""
    tail = []
    for message in reversed(messages):
        if isinstance(message, AIMessage):
            break
        if isinstance(message, HumanMessage):
            tail.append(message)
    return tail[::-1]


def _has_unread_images(message: HumanMessage) -> bool:
    """Image blocks `ingest` has not stored yet (a stored one carries its `image_id`)."""
    if isinstance(message.content, str):
        return False
    return any(isinstance(b, dict) and (image_source(b) is not None or b.get("error")) and "image_id" not in b
               for b in message.content)  # fmt: skip


def _drop_images(message: HumanMessage, error: str) -> HumanMessage:
    """The message with its unread images replaced by a note, so the next turn does not meet them again."""
    blocks = [b if not (isinstance(b, dict) and (image_source(b) is not None or b.get("error")) and "image_id" not in b)
              else {"type": "text", "text": f"[image not used: {error}]"} for b in message.content]  # fmt: skip
    return message.model_copy(update={"content": blocks})


def earlier_turns(messages: list) -> str:
    """A client that sends the whole conversation at once (the OpenAI API) has earlier turns the reasoner has
    not seen: they are quoted before the question, text only."""
    before = messages[: len(messages) - len(_new_user_messages(messages))]
    lines = [f"{'User' if isinstance(m, HumanMessage) else 'Assistant'}: {_text(m).strip()}" for m in before
             if isinstance(m, (HumanMessage, AIMessage)) and _text(m).strip()]  # fmt: skip
    return "Earlier in this conversation:\n" + "\n".join(lines) + "\n\nNow: " if lines else ""


def _text(message) -> str:
    return content_text(message.content)


def content_text(content) -> str:
    """The text of a message's content: a string, or its text parts joined."""
    if isinstance(content, str):
        return content
    return "\n".join(str(b.get("text", "")) for b in content if isinstance(b, dict) and b.get("type") == "text")


def _store_images(messages: list[HumanMessage], images: list[ImageInfo]) -> tuple[list, list[ImageInfo]]:
    """Store each new image block; return the messages with stored references and the conversation's images."""
    policy = ImagePolicy.from_env()
    by_path = {image.path: image for image in images}
    updated, count = [], 0
    for message in messages:
        if isinstance(message.content, str):
            continue
        blocks = []
        for block in message.content:
            source = image_source(block)
            if source is None and not (isinstance(block, dict) and block.get("error")):
                blocks.append(block)
                continue
            count += 1
            if count > MAX_IMAGES_PER_TURN:
                raise InputError(f"more than {MAX_IMAGES_PER_TURN} images in one message")
            info = _image(block, source, policy, by_path, len(images) + 1, count)
            if info.path not in by_path:
                images.append(info)
                by_path[info.path] = info
            blocks.append({"type": "image", "file_id": _digest_of(info), "image_id": info.id})
        updated.append(message.model_copy(update={"content": blocks}))
    _keep_stored(images, policy)
    return updated, images


def _keep_stored(images: list[ImageInfo], policy: ImagePolicy) -> None:
    """Mark the conversation's images as used, so the store's bound prunes other threads' first; one already
    pruned is named (the same bytes sent again land at the same path, and the thread goes on)."""
    gone = set(policy.store.touch(image.path for image in images))
    if gone:
        names = ", ".join(image.id for image in images if image.path in gone)
        raise ImageInputError(f"{names} of this conversation {'is' if len(gone) == 1 else 'are'} no longer stored "
                              "on the server (images unused for a while are pruned); send it again with your "
                              "message", 410)  # fmt: skip


def _image(block: dict, source: str | None, policy: ImagePolicy, known: dict, number: int, count: int) -> ImageInfo:
    label = f"image {count} of the message"
    if block.get("error"):
        raise ImageInputError(block["error"], block.get("status", 400))
    if source.startswith("stored:"):
        digest = source[7:]
        data = STAGED.get(digest)
        stored = policy.store.put(data, label) if data is not None else policy.store.find(digest)
        if stored is None:
            raise ImageInputError(f"{label}: its data is no longer here; send the image again")
    else:
        stored = acquire(source, policy, label)
    if str(stored.path) in known:
        return known[str(stored.path)]
    return ImageInfo(id=f"image_{number}", path=str(stored.path), width=stored.width, height=stored.height)


def _digest_of(info: ImageInfo) -> str:
    return info.path.rsplit("/", 1)[-1].split(".")[0]


def route_turn(state: ChatState) -> Literal["start", "observe", "perceive", "direct", "__end__"]:
    """The first node of the turn's regime (or the end, when the input could not be used)."""
    if state.get("error"):
        return "__end__"
    return {"iterative": "start", "extract": "observe", "caption": "perceive", "direct": "direct"}[state["mode"]]


def respond(state: ChatState, runtime: Runtime[AgentContext]) -> dict:
    """Close the turn: the visible answer as an AI message, and the turn's Result."""
    ctx = live_context(runtime, {})
    steps = state.get("steps", [])[state.get("turn_start", 0):]
    mode = state["mode"]
    seconds = time.time() - state.get("turn_started", time.time())
    result = build_result(mode, state, steps, ctx.reasoner.name if ctx.reasoner else None, ctx.perceiver.name,
                          seconds)  # fmt: skip
    thinking = next((s.thinking for s in reversed(steps) if isinstance(s, ReasonStep)), "")
    text = (state.get("final_text") or "").strip() or (result.answer or "")
    message = AIMessage(content=text, additional_kwargs={"reasoning_content": thinking} if thinking else {},
                        response_metadata={"mode": mode, "answer": result.answer})  # fmt: skip
    return {"messages": [message], "result": result.model_dump(mode="json")}
