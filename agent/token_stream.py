"""Live output for UIs: the reasoner's text as it is generated, on LangGraph's `custom` stream.

Each piece goes out as `{"event": "token", "node": ..., "phase": "thinking" | "answer", "text": ...}`:
thinking until `</think>`, answer (tool-call blocks included, as written) after it. A graph streamed
without the `custom` mode drops these writes; transformers in process and OpenAI-compatible servers stream, the
in-process vLLM engine does not (its steps still arrive whole on the `updates` stream).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable

from langgraph.config import get_stream_writer

OPEN, CLOSE = "<think>", "</think>"


def token_relay(node: str, thinking: bool) -> Callable[[str], None] | None:
    """A callback for ReasonRequest.on_text that writes to this node's stream (None outside a graph)."""
    try:
        writer = get_stream_writer()
    except RuntimeError:
        return None
    # The callback runs on the model's worker thread; the writer needs this node's context variables.
    context = contextvars.copy_context()

    def write(payload: dict) -> None:
        context.run(writer, payload)

    phase = ["thinking" if thinking else "answer"]

    def relay(text: str) -> None:
        if OPEN in text:
            phase[0] = "thinking"
            text = text.replace(OPEN, "")
        if CLOSE in text:
            before, _, after = text.partition(CLOSE)
            _send(write, node, phase[0], before)
            phase[0] = "answer"
            text = after
        _send(write, node, phase[0], text)

    return relay


def _send(write, node: str, phase: str, text: str) -> None:
    if text:
        write({"event": "token", "node": node, "phase": phase, "text": text})
