"""One request never fails, re-runs or re-streams another: per-row failures and cancellation in the engines.

Real tiny models; the only doubles are logits processors that hold the worker (so the rows under test are
provably in one batch) or raise inside the shared `generate` (a fault in one row's decoding).
"""

from __future__ import annotations

import threading
import time

import pytest
from PIL import Image

from tools.backends.base import Cancelled, Message, PerceiveRequest, ReasonRequest, SamplingSettings
from tools.backends.hf_perceiver import TransformersPerceiver
from tools.backends.hf_reasoner import TransformersReasoner
from tools.backends.loading import Placement

CPU = Placement(device="cpu")
GREEDY = SamplingSettings(greedy=True, max_new_tokens=24, thinking_budget=10)


@pytest.fixture(autouse=True)
def _fresh():
    from tests.test_engine import fresh_engines

    fresh_engines()
    yield
    fresh_engines()


class Gate:
    """Holds the worker at every step of the request it is attached to until the test opens it."""

    def __init__(self):
        self.open = threading.Event()

    def __call__(self, input_ids, scores):
        self.open.wait(timeout=60)
        return scores


class Boom:
    """Raises from its third call on: a row whose decoding fails after it has streamed some text."""

    def __init__(self):
        self.calls = 0

    def __call__(self, input_ids, scores):
        self.calls += 1
        if self.calls >= 3:
            raise RuntimeError("boom")
        return scores


def ask(text: str, settings=GREEDY, stream: list | None = None, cancel=None) -> ReasonRequest:
    return ReasonRequest(messages=(Message("user", text),), settings=settings,
                         on_text=stream.append if stream is not None else None, cancel=cancel)  # fmt: skip


def in_one_batch(reasoner: TransformersReasoner, gate: Gate, requests: list[ReasonRequest]) -> list:
    """Run `requests` from concurrent callers while the worker is held, so they form one batch; each
    caller's output or exception."""
    engine = reasoner.engine
    held = threading.Thread(target=reasoner.reason, args=([ask("hold")],))
    held.start()
    while not engine.batcher.batch_sizes:
        time.sleep(0.01)
    outcomes: list = [None] * len(requests)

    def call(i):
        try:
            outcomes[i] = reasoner.reason([requests[i]])[0]
        except Exception as exc:  # noqa: BLE001
            outcomes[i] = exc

    callers = [threading.Thread(target=call, args=(i,)) for i in range(len(requests))]
    for c in callers:
        c.start()
    while engine.batcher._queue.qsize() < len(requests):
        time.sleep(0.01)
    gate.open.set()
    for t in [held, *callers]:
        t.join(timeout=120)
    return outcomes


def reasoner_with(tiny, factories: dict) -> TransformersReasoner:
    """A reasoner whose requests get extra processors by their text (`factories[text]()`)."""

    def extra(request, tokenizer):
        make = factories.get(request.messages[-1].content)
        return [make()] if make else []

    return TransformersReasoner(str(tiny.reasoner), CPU, extra_logits_processors=extra)


def test_a_row_whose_setup_fails_fails_alone_and_the_others_run_once(tiny):
    gate = Gate()
    reasoner = reasoner_with(tiny, {"hold": lambda: gate})
    streams = [[], [], []]
    bad = GREEDY.replace(thinking_budget=1)  # the budget processor rejects it
    requests = [ask("What colour?", stream=streams[0]), ask("Broken.", bad, streams[1]),
                ask("Count them.", stream=streams[2])]  # fmt: skip
    outcomes = in_one_batch(reasoner, gate, requests)
    assert isinstance(outcomes[1], ValueError) and streams[1] == []
    assert reasoner.engine.batcher.batch_sizes == [1, 3], "the good rows ran once, in the same batch"
    for i in (0, 2):
        assert "".join(streams[i]) == outcomes[i].raw, "streamed exactly once"
        assert outcomes[i].raw == reasoner.reason([ask(requests[i].messages[-1].content)])[0].raw


def test_a_failed_shared_generate_never_streams_text_twice(tiny):
    gate = Gate()
    reasoner = reasoner_with(tiny, {"hold": lambda: gate, "Explode.": Boom})
    streams = [[], [], []]
    requests = [ask("What colour?", stream=streams[0]), ask("Explode.", stream=streams[1]),
                ask("Count them.", stream=streams[2])]  # fmt: skip
    outcomes = in_one_batch(reasoner, gate, requests)
    assert isinstance(outcomes[1], RuntimeError)
    for i in (0, 2):
        assert "".join(streams[i]) == outcomes[i].raw, "the text streamed before the failure is not sent again"
        assert outcomes[i].raw == reasoner.reason([ask(requests[i].messages[-1].content)])[0].raw


def test_a_cancelled_row_stops_and_its_companions_go_on(tiny):
    gate = Gate()
    reasoner = reasoner_with(tiny, {"hold": lambda: gate})
    cancel = threading.Event()
    stream: list[str] = []
    long = GREEDY.replace(max_new_tokens=400, thinking_budget=None)

    def cancel_after_first_text(text: str) -> None:
        stream.append(text)
        cancel.set()

    doomed = ReasonRequest(messages=(Message("user", "Go on."),), settings=long, on_text=cancel_after_first_text,
                           cancel=cancel)  # fmt: skip
    outcomes = in_one_batch(reasoner, gate, [doomed, ask("What colour?")])
    assert isinstance(outcomes[0], Cancelled)
    assert outcomes[1].raw == reasoner.reason([ask("What colour?")])[0].raw
    with pytest.raises(Cancelled):  # a later call of a cancelled run fails at once
        reasoner.reason([doomed])


def test_perceiver_rejected_input_fails_alone_and_the_others_run_once(tiny, image_path):
    """The processor rejects one request of a batch (here an image it cannot read): that request gets the error,
    the others are generated once, as they would be alone."""
    from tools.backends.batcher import RowError

    perceiver = TransformersPerceiver(str(tiny.perceivers["llava_onevision"]), CPU)
    image = Image.open(image_path).convert("RGB")
    good = [PerceiveRequest(images=(image,), instruction=text, max_new_tokens=8) for text in ("Describe.", "Colour?")]
    bad = PerceiveRequest(images=("not an image",), instruction="Describe.", max_new_tokens=8)  # type: ignore[arg-type]
    alone = [perceiver.perceive([r])[0].text for r in good]
    engine = perceiver.engine
    calls = []
    generate = engine.model.generate
    engine.model.generate = lambda **kw: calls.append(kw["input_ids"].shape[0]) or generate(**kw)
    try:
        outcomes = engine._run([engine._job(r) for r in (good[0], bad, good[1])])
    finally:
        engine.model.generate = generate
    assert isinstance(outcomes[1], RowError)
    assert [outcomes[0].text, outcomes[2].text] == alone
    assert calls == [2], "one generate for the two good requests"
