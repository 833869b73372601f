"""Conversations from Python: `ExtractThink.chat` / `chat_stream` / `resume` run the `assistant` graph on a thread.

A thread lives in the checkpointer (in memory by default; `sqlite_checkpointer(path)` keeps it on disk, so
`xthink chat --thread NAME --db FILE` can come back to it later). Images given here are the caller's own
files: they are copied into the content-addressed store and sent as references, never as pixels.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage
from pydantic import BaseModel

from agent.settings import AskOptions, InputError
from agent.state import AgentContext
from agent.trace import MODES, Result, Step
from graphs import assistant
from tools.image_inputs import ImageInputError, ImagePolicy
from tools.images import load_image

# Our state types, allowed explicitly so checkpoints load without LangGraph's unregistered-type warnings.
STATE_TYPES = [
    ("tools.backends.base", "Message"), ("tools.backends.output_parsing", "ToolCall"),
    ("tools.backends.output_parsing", "ToolCallError"), ("agent.trace", "ImageInfo"),
    ("agent.trace", "ReasonStep"), ("agent.trace", "ExtractStep"), ("agent.trace", "ToolCallRecord"),
    ("tools.extract", "CropInfo"),
]  # fmt: skip


def serializer():
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    return JsonPlusSerializer(allowed_msgpack_modules=STATE_TYPES)


def memory_checkpointer():
    from langgraph.checkpoint.memory import InMemorySaver

    return InMemorySaver(serde=serializer())


def sqlite_checkpointer(path: str | Path):
    """Conversations kept in a SQLite file (created if missing), usable from several processes in turn."""
    from langgraph.checkpoint.sqlite import SqliteSaver

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return SqliteSaver(sqlite3.connect(str(path), check_same_thread=False), serde=serializer())


@dataclass(frozen=True)
class Token:
    """A piece of the reasoner's output as it is generated."""

    node: str
    phase: str  # thinking | answer
    text: str


class ChatTurn(BaseModel):
    """One turn: the visible reply, the reasoning behind it, the Result (None when the input was unusable),
    or the proposed extraction the run paused on (interrupt_before_extract)."""

    thread_id: str
    reply: str = ""
    reasoning: str = ""
    result: Result | None = None
    error: str | None = None
    interrupt: dict | None = None


@dataclass
class TurnSettings:
    mode: str = "iterative"
    settings: AskOptions | None = None
    interrupt_before_extract: bool = False
    # Set by the caller to stop the turn: every model call of it ends at its next token and raises Cancelled.
    cancel: threading.Event | None = None


def user_message(text: str, images: Sequence[str | Path], max_pixels: int) -> dict:
    """A chat message with the caller's image files stored by content and referenced by digest."""
    store = ImagePolicy.from_env(max_pixels=max_pixels).store
    blocks: list[dict[str, Any]] = [{"type": "text", "text": text}]
    for path in images:
        load_image(path, max_pixels)  # a bad file fails here, naming the file
        try:
            stored = store.put(Path(path).read_bytes(), label=f"image '{path}'")
        except ImageInputError as exc:
            raise InputError(str(exc)) from None
        blocks.append({"type": "image", "file_id": stored.digest})
    return {"role": "user", "content": blocks}


def context_for(agent, turn: TurnSettings) -> AgentContext:
    if turn.mode not in MODES:
        raise InputError(f"unknown mode '{turn.mode}'; choose one of {', '.join(MODES)}")
    from tools.backends.cancel import with_cancel

    reasoner, perceiver = with_cancel(agent.reasoner, agent.perceiver, turn.cancel)
    return AgentContext.build(reasoner, perceiver, turn.settings or AskOptions(), mode=turn.mode,
                              interrupt_before_extract=turn.interrupt_before_extract, stream_text=True)


def run_turn(agent, graph, graph_input, thread_id: str, turn: TurnSettings) -> Iterator[Step | Token | ChatTurn]:
    """Stream one turn (or its resumption): steps and tokens as they come, then the ChatTurn."""
    ctx = context_for(agent, turn)
    agent.prepare(turn.mode)
    limit = assistant.recursion_limit(ctx.max_extractions)
    config = {"configurable": {"thread_id": thread_id}, "recursion_limit": limit}
    paused, values = None, {}
    modes = ["updates", "custom", "values"]
    for kind, chunk in graph.stream(graph_input, config=config, context=ctx, stream_mode=modes):
        if kind == "values":
            values = chunk
            continue
        if kind == "custom":
            yield Token(chunk.get("node", ""), chunk.get("phase", ""), chunk.get("text", ""))
            continue
        if "__interrupt__" in chunk:
            paused = chunk["__interrupt__"][0].value
            continue
        for update in chunk.values():
            yield from (update or {}).get("steps", [])
    yield finish_turn(values, thread_id, paused)


def finish_turn(values: dict, thread_id: str, paused: dict | None) -> ChatTurn:
    if paused is not None:
        return ChatTurn(thread_id=thread_id, interrupt=paused)
    last = next((m for m in reversed(values.get("messages", [])) if isinstance(m, AIMessage)), None)
    result = values.get("result")
    return ChatTurn(
        thread_id=thread_id, reply=last.text if last else "", error=values.get("error"),
        reasoning=(last.additional_kwargs.get("reasoning_content", "") if last else ""),
        result=Result.model_validate(result) if result else None,
    )  # fmt: skip


# --- open_checkpointer: MINIMAL STAND-IN (i18-threadview), SQLite paths only. ---------------------------------
# The Postgres part of issue 18 adds the full version (postgresql:// URLs too) in this same place: on merge,
# its version replaces this block whole.
def open_checkpointer(spec: str | Path):
    """The checkpointer a `--db` value names: a SQLite file path (postgresql:// URLs: the [postgres] part)."""
    if str(spec).startswith(("postgresql://", "postgres://")):
        raise InputError("postgresql:// URLs need the Postgres checkpointer, which this build does not have yet")
    return sqlite_checkpointer(spec)
