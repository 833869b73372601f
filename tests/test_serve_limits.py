"""The endpoint's run limits with real generate calls: a full server answers 429 with Retry-After, a run over
its time limit 504, and both recover. Generation is held at a gate (a logits processor that waits) so the
runs are provably in flight while the limits are probed."""

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
from graphs.serve import ServeLimits, create_app
from tools.backends.hf_reasoner import TransformersReasoner


class Gate(LogitsProcessor):
    """Holds every generate step until the test opens it."""

    def __init__(self, event: threading.Event):
        self.event = event

    def __call__(self, input_ids, scores):
        self.event.wait(timeout=120)
        return scores


def body(image_path) -> dict:
    buf = io.BytesIO()
    Image.open(image_path).save(buf, "PNG")
    url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    return {"model": "extract-think-caption", "max_tokens": 4, "greedy": True, "perceiver_max_new_tokens": 4,
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Colour?"},
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
        arrived.append(request)
        return [Gate(gate)]

    reasoner = TransformersReasoner(str(tiny.reasoner), extra_logits_processors=gated)
    agent = ExtractThink(reasoner=reasoner, perceiver=str(tiny.perceivers["llava_onevision"]), device="cpu")
    yield agent, gate, arrived
    gate.set()


def test_full_server_answers_429_then_recovers(gated, image_path):
    agent, gate, arrived = gated
    url, server = start(create_app(agent, ServeLimits(max_concurrent=2, timeout_s=120)))
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
    agent, gate, _ = gated
    url, server = start(create_app(agent, ServeLimits(max_concurrent=1, timeout_s=2)))
    slow = httpx.post(url + "/v1/chat/completions", json=body(image_path), timeout=60)
    assert slow.status_code == 504 and "over 2 s" in slow.json()["error"]["message"]
    gate.set()  # the abandoned run finishes in its thread and gives its slot back
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        again = httpx.post(url + "/v1/chat/completions", json=body(image_path), timeout=60)
        if again.status_code != 429:
            break
        time.sleep(0.2)
    assert again.status_code == 200
    server.should_exit = True
