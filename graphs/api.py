"""The Python API: `ExtractThink(...).ask(...)` runs one regime on one question and returns a Result.

Backends are created when the object is (cheap) and load their models on first use, once per process.
`stream(...)` yields each trace step as its node finishes, then the Result, for live progress.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from langgraph.types import Command

from agent import telemetry
from agent.result import build_result
from agent.settings import (  # noqa: F401  (re-exported: the public API names)
    DEFAULT_PERCEIVER,
    DEFAULT_REASONER,
    PAIRS,
    AskOptions,
    InputError,
    resolve_models,
    validate_question,
)
from agent.state import AgentContext
from agent.trace import ImageInfo, Result, Step
from graphs import assistant, iterative, single
from graphs.conversation import (
    ChatTurn,
    Token,
    TurnSettings,
    close_checkpointer,
    memory_checkpointer,
    open_checkpointer,
    run_turn,
    user_message,
)
from tools.backends.base import Perceiver, Reasoner
from tools.backends.loading import Placement
from tools.backends.options import EngineOptions
from tools.backends.registry import shared_perceiver, shared_reasoner


class ExtractThink:
    """A reasoner and a perceiver, and the four regimes over them."""

    def __init__(
        self,
        reasoner: str | Reasoner = DEFAULT_REASONER,
        perceiver: str | Perceiver = DEFAULT_PERCEIVER,
        device: str = "auto",
        dtype: str = "auto",
        engine: EngineOptions | None = None,
        checkpointer=None,
    ):
        """`engine` sets batching, KV-cache sizes, HTTP in-flight caps and vLLM memory shares. Models named by
        string come from the process-wide registry: two ExtractThinks (or a server's runs) naming the same
        model share one backend, its batches and its caches. `checkpointer` keeps conversations (`chat`):
        in memory by default; a SQLite path or a `postgresql://` URL (opened here, so a store that cannot be
        used raises ConversationStoreError now, not at the first turn), or a LangGraph checkpointer object."""
        telemetry.configure()  # OTEL_EXPORTER_OTLP_ENDPOINT, once per process; off without it
        placement = Placement(device=device, dtype=dtype)
        engine = engine or EngineOptions()
        self.reasoner = shared_reasoner(reasoner, placement, engine) if isinstance(reasoner, str) else reasoner
        self.perceiver = shared_perceiver(perceiver, placement, engine) if isinstance(perceiver, str) else perceiver
        self._owns_checkpointer = isinstance(checkpointer, (str, Path))  # opened here: closed by close()
        self.checkpointer = open_checkpointer(checkpointer) if self._owns_checkpointer else checkpointer
        self._graph = None
        self._turns: dict[str, TurnSettings] = {}

    def ask(self, question: str, images: Sequence[str | Path], options: Sequence[str] | None = None,
            mode: str = "iterative", request: str | None = None, settings: AskOptions | None = None) -> Result:
        """Run one regime to the end and return its Result."""
        result = None
        for event in self.stream(question, images, options, mode, request, settings):
            if isinstance(event, Result):
                result = event
        assert result is not None
        return result

    def stream(self, question: str, images: Sequence[str | Path], options: Sequence[str] | None = None,
               mode: str = "iterative", request: str | None = None,
               settings: AskOptions | None = None) -> Iterator[Step | Result]:
        """Yield each trace step as soon as its node finishes, then the Result."""
        settings = settings or AskOptions()
        question, opts = validate_question(question, options, mode)
        ctx = AgentContext.build(self.reasoner, self.perceiver, settings)
        refs = [ctx.store.add(path) for path in images] if images else []
        if not refs:
            raise InputError("no image was given: pass at least one image file")
        infos = [ImageInfo(id=r.id, path=r.path, width=r.width, height=r.height) for r in refs]
        state = {"question": question, "options": opts, "images": infos, "steps": [], "history": [],
                 "request": request if mode == "extract" else None}
        graph, limit = graph_for(mode, settings.max_extractions)
        self.load_models(mode)
        started = time.perf_counter()
        final: dict = {}
        for kind, chunk in graph.stream(state, context=ctx, config={"recursion_limit": limit},
                                        stream_mode=["updates", "values"]):
            if kind == "values":
                final = chunk
                continue
            for update in chunk.values():
                yield from (update or {}).get("steps", [])
        final = {**final, "question": question, "options": opts, "images": infos}
        yield build_result(mode, final, final.get("steps", []), self.reasoner.name, self.perceiver.name,
                           time.perf_counter() - started)

    def chat(self, message: str, images: Sequence[str | Path] = (), thread_id: str = "default",
             mode: str = "iterative", settings: AskOptions | None = None,
             interrupt_before_extract: bool = False) -> ChatTurn:
        """One turn of a conversation on `thread_id`: earlier turns (and what was extracted) are remembered."""
        return _last(self.chat_stream(message, images, thread_id, mode, settings, interrupt_before_extract))

    def chat_stream(self, message: str, images: Sequence[str | Path] = (), thread_id: str = "default",
                    mode: str = "iterative", settings: AskOptions | None = None,
                    interrupt_before_extract: bool = False) -> Iterator[Step | Token | ChatTurn]:
        """`chat`, live: each step as it finishes and the reasoner's text as it is generated, then the ChatTurn."""
        settings = settings or AskOptions()
        turn = TurnSettings(mode, settings, interrupt_before_extract)
        self._turns[thread_id] = turn
        graph_input = {"messages": [user_message(message, images, settings.max_pixels)]}
        yield from run_turn(self, self._assistant(), graph_input, thread_id, turn)

    def resume(self, thread_id: str, decision=True) -> ChatTurn:
        """Continue a turn paused before an extraction: True (approve), False (refuse) or an edit dict
        (agent/review.py)."""
        return _last(self.resume_stream(thread_id, decision))

    def resume_stream(self, thread_id: str, decision=True) -> Iterator[Step | Token | ChatTurn]:
        turn = self._turns.get(thread_id, TurnSettings(interrupt_before_extract=True))
        yield from run_turn(self, self._assistant(), Command(resume=decision), thread_id, turn)

    def _assistant(self):
        if self._graph is None:
            if self.checkpointer is None:
                self.checkpointer = memory_checkpointer()
            self._graph = assistant.build().compile(checkpointer=self.checkpointer)
        return self._graph

    def close(self) -> None:
        """Release the conversation store this object opened from a path or URL: a Postgres pool keeps
        connections and a background thread until closed, and a long-lived process that makes one ExtractThink
        per tenant or job would otherwise gather them. A checkpointer passed in as an object is its owner's to
        close; the models stay loaded (other ExtractThinks in the process share them)."""
        if self._owns_checkpointer:
            self._owns_checkpointer = False
            close_checkpointer(self.checkpointer)

    def __enter__(self) -> ExtractThink:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def load_models(self, mode: str) -> None:
        """Load the models a mode needs before it starts, so a bad model fails before any work is done."""
        if mode != "direct":
            self.reasoner.load()
        self.perceiver.load()


def _last(events):
    last = None
    for last in events:
        pass
    return last


def graph_for(mode: str, max_extractions: int):
    """The compiled graph of a mode and the recursion limit to run it with."""
    if mode == "iterative":
        return iterative.graph, iterative.recursion_limit(max_extractions)
    graphs = {"extract": single.extract_graph, "caption": single.caption_graph, "direct": single.direct_graph}
    return graphs[mode], single.SINGLE_PASS_RECURSION_LIMIT
