"""What a client of `xthink serve` sees names no operator string: model folders, internal URLs, credentials,
server folders. Real servers on 127.0.0.1 with the tiny models in absolute tmp folders, and a perceiver URL
with credentials whose server is down."""

from __future__ import annotations

import json
import socket

import httpx
import pytest

from graphs.api import ExtractThink
from graphs.server.serve_limits import ServeLimits
from graphs.server.openai_app import create_app
from tests.test_serve_limits import body, start

SETTINGS = {"greedy": True, "max_extractions": 1, "perceiver_max_new_tokens": 8, "thinking_budget": 12,
            "max_tokens": 24}  # fmt: skip


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once the socket is closed


def responses(url: str, payload: dict) -> list[tuple[int, str]]:
    """(status, body text) of the request, plain and streamed."""
    plain = httpx.post(url + "/v1/chat/completions", json=payload, timeout=120)
    streamed = httpx.post(url + "/v1/chat/completions", json={**payload, "stream": True}, timeout=120)
    return [(plain.status_code, plain.text), (streamed.status_code, streamed.text)]


@pytest.fixture
def store(tmp_path, monkeypatch):
    folder = tmp_path / "operator-store"
    monkeypatch.setenv("XTHINK_IMAGE_STORE", str(folder))
    return folder


def test_results_name_models_by_the_served_id_only(tiny, image_path, store):
    agent = ExtractThink(reasoner=str(tiny.reasoner), perceiver=str(tiny.perceivers["llava_onevision"]),
                         device="cpu")  # fmt: skip
    url, server = start(create_app(agent, ServeLimits()))
    for model in ("extract-think", "extract-think-caption"):
        for status, text in responses(url, {**body(image_path), **SETTINGS, "model": model}):
            assert status == 200
            for secret in (str(tiny.reasoner), str(tiny.perceivers["llava_onevision"]), str(store)):
                assert secret not in text
        result = httpx.post(url + "/v1/chat/completions", json={**body(image_path), **SETTINGS, "model": model},
                            timeout=120).json()["extract_think"]  # fmt: skip
        assert result["reasoner"] == result["perceiver"] == model
    server.should_exit = True


def test_a_model_server_that_is_down_is_a_502_naming_no_url(tiny, image_path, store):
    port = closed_port()
    perceiver = f"http://operator:s3cret-token@127.0.0.1:{port}/v1"
    agent = ExtractThink(reasoner=str(tiny.reasoner), perceiver=perceiver, device="cpu")
    url, server = start(create_app(agent, ServeLimits()))
    (status, text), (stream_status, stream_text) = responses(url, {**body(image_path), **SETTINGS})
    assert status == 502 and json.loads(text)["error"]["type"] == "server_error"
    assert stream_status == 200 and '"server_error"' in stream_text, "the stream ends with an error event"
    for secret in ("s3cret-token", "operator:", f"127.0.0.1:{port}", str(tiny.reasoner), str(store)):
        assert secret not in text and secret not in stream_text
    server.should_exit = True
