"""The endpoint's run limits with real generate calls: a full server queues requests (bounded, then 429 with
Retry-After), a run over its time limit is 504 and stopped, a client that hangs up stops its run, and the
server recovers from each. Generation is held at a gate (a logits processor that waits, as a slow model step
would, until the gate opens or the request is cancelled) so the runs are provably in flight while the limits
are probed."""

from __future__ import annotations

import base64
import io
import socket
import threading
import time

import httpx
import pytest
import uvicorn
from PIL import Image
from transformers import LogitsProcessor

from graphs.api import ExtractThink
from graphs.server.serve_limits import ServeLimits
from graphs.server.openai_app import create_app
from tools.backends.hf_reasoner import TransformersReasoner


class Gate(LogitsProcessor):
    """Holds every generate step until the test opens it (or the request is cancelled: a step ends)."""

    def __init__(self, event: threading.Event, cancel: threading.Event | None = None):
        self.event = event
        self.cancel = cancel

    def __call__(self, input_ids, scores):
        deadline = time.monotonic() + 120
        while not self.event.is_set() and not (self.cancel and self.cancel.is_set()) and time.monotonic() < deadline:
            self.event.wait(timeout=0.05)
        return scores


def body(image_path, question: str = "Colour?") -> dict:
    buf = io.BytesIO()
    Image.open(image_path).save(buf, "PNG")
    url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    return {"model": "extract-think-caption", "max_tokens": 4, "greedy": True, "perceiver_max_new_tokens": 4,
            "messages": [{"role": "user", "content": [{"type": "text", "text": question},
                                                      {"type": "image_url", "image_url": {"url": url}}]}]}


def start(app) -> tuple[str, uvicorn.Server]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server


@pytest.fixture
def gated(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("XTHINK_IMAGE_STORE", str(tmp_path / "store"))
    gate = threading.Event()
    arrived = []  # one entry per run that reached the reasoner (and so holds a slot)

    def gated(request, tokenizer):
        if "free run" in request.messages[-1].content:
            return []
        arrived.append(request)
        return [Gate(gate, request.cancel)]

    reasoner = TransformersReasoner(str(tiny.reasoner), extra_logits_processors=gated)
    agent = ExtractThink(reasoner=reasoner, perceiver=str(tiny.perceivers["llava_onevision"]), device="cpu")
    yield agent, gate, arrived
    gate.set()


def test_full_server_and_full_queue_answer_429_then_recover(gated, image_path):
    agent, gate, arrived = gated
    url, server = start(create_app(agent, ServeLimits(max_concurrent=2, timeout_s=120, max_queue=0)))
    results = []

    def call():
        results.append(httpx.post(url + "/v1/chat/completions", json=body(image_path), timeout=120).status_code)

    workers = [threading.Thread(target=call) for _ in range(2)]
    for w in workers:
        w.start()
    deadline = time.monotonic() + 120
    while len(arrived) < 2 and time.monotonic() < deadline:  # both runs hold a slot and wait at the gate
        time.sleep(0.1)
    busy = httpx.post(url + "/v1/chat/completions", json=body(image_path), timeout=30)
    assert busy.status_code == 429 and busy.headers["Retry-After"] == "2"
    assert busy.json()["error"]["type"] == "rate_limit_error"
    gate.set()
    for w in workers:
        w.join(timeout=120)
    assert results == [200, 200]
    assert httpx.post(url + "/v1/chat/completions", json=body(image_path), timeout=120).status_code == 200
    server.should_exit = True


def test_run_over_the_time_limit_is_504_and_frees_its_slot(gated, image_path):
    """The run is stopped at its deadline (the gate, which would hold it for two minutes, stays shut)."""
    agent, gate, _ = gated
    url, server = start(create_app(agent, ServeLimits(max_concurrent=1, timeout_s=2, max_queue=0)))
    slow = httpx.post(url + "/v1/chat/completions", json=body(image_path), timeout=60)
    assert slow.status_code == 504 and "over 2 s" in slow.json()["error"]["message"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        again = httpx.post(url + "/v1/chat/completions", json=body(image_path, "free run: colour?"), timeout=60)
        if again.status_code != 429:
            break
        time.sleep(0.2)
    assert again.status_code == 200 and not gate.is_set()
    server.should_exit = True


def post(url: str, payload: dict, timeout: float = 120) -> httpx.Response:
    return httpx.post(url + "/v1/chat/completions", json=payload, timeout=timeout)


def wait_for(condition, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert condition()


def test_a_request_over_the_slots_waits_in_the_queue_and_is_served(gated, image_path):
    agent, gate, arrived = gated
    url, server = start(create_app(agent, ServeLimits(max_concurrent=2, timeout_s=120, max_queue=1,
                                                      queue_timeout_s=120)))  # fmt: skip
    results = []
    workers = [threading.Thread(target=lambda: results.append(post(url, body(image_path)).status_code))
               for _ in range(3)]  # fmt: skip
    for w in workers[:2]:
        w.start()
    wait_for(lambda: len(arrived) == 2)  # both slots are held at the gate
    workers[2].start()  # the third waits in the queue
    time.sleep(0.5)
    assert not results and len(arrived) == 2, "the queued request neither ran nor was refused"
    full = post(url, body(image_path), timeout=30)
    assert full.status_code == 429 and full.headers["Retry-After"] == "2", "the queue holds one"
    gate.set()
    for w in workers:
        w.join(timeout=120)
    assert results == [200, 200, 200] and len(arrived) == 3
    server.should_exit = True


def test_a_queued_request_waits_at_most_the_queue_timeout(gated, image_path):
    agent, gate, arrived = gated
    url, server = start(create_app(agent, ServeLimits(max_concurrent=1, timeout_s=120, queue_timeout_s=1)))
    holder = threading.Thread(target=post, args=(url, body(image_path)))
    holder.start()
    wait_for(lambda: len(arrived) == 1)
    late = post(url, body(image_path), timeout=60)
    assert late.status_code == 429 and late.headers["Retry-After"] == "2"
    assert "within 1 s" in late.json()["error"]["message"]
    gate.set()
    holder.join(timeout=120)
    server.should_exit = True


def test_clients_that_hang_up_free_their_slots(gated, image_path):
    """A streamed client that closes mid-stream and a plain client that gives up (its own time-out) stop their
    runs: a full set of new requests is then served at once, while the gate still holds every old run."""
    agent, gate, arrived = gated
    url, server = start(create_app(agent, ServeLimits(max_concurrent=2, timeout_s=300, max_queue=0)))
    payload = {**body(image_path), "stream": True}
    with httpx.stream("POST", url + "/v1/chat/completions", json=payload, timeout=60) as response:
        assert response.status_code == 200
        lines = response.iter_lines()  # kept: closing it early would close the connection
        assert next(lines).startswith("data: ")
        wait_for(lambda: len(arrived) == 1)  # the run holds its slot at the gate; then the client hangs up
    gave_up = []

    def impatient():
        try:
            post(url, body(image_path), timeout=5)
        except httpx.ReadTimeout:
            gave_up.append(True)

    client = threading.Thread(target=impatient)
    client.start()
    wait_for(lambda: len(arrived) == 2)
    client.join(timeout=60)
    assert gave_up
    free = body(image_path, "free run: colour?")
    wait_for(lambda: post(url, free).status_code == 200, seconds=30)  # the hung-up runs ended, not the gate
    statuses = []
    workers = [threading.Thread(target=lambda: statuses.append(post(url, free).status_code)) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert statuses == [200, 200], "max-concurrent new requests are served at once"
    assert not gate.is_set()
    server.should_exit = True
