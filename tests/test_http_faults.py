"""The HTTP client and backends against a misbehaving local server: retry where it helps, fail clearly where not."""

from __future__ import annotations

import time

import pytest
from PIL import Image

from tests.fake_openai import FakeOpenAI, closed_port_url
from tools.backends.base import Message, PerceiveRequest, ReasonRequest, SamplingSettings
from tools.backends.http_backend import HttpPerceiver, HttpReasoner
from tools.backends.http_client import Endpoints, EndpointError, HttpSettings
from tools.backends.loading import ModelLoadError

FAST = HttpSettings(connect_timeout=1.0, read_timeout=1.0, retries=3, backoff=0.05, max_backoff=0.5)
REQUEST = ReasonRequest(messages=(Message("user", "hi"),), settings=SamplingSettings(greedy=True, max_new_tokens=8))


def reasoner(url: str, settings: HttpSettings = FAST) -> HttpReasoner:
    return HttpReasoner(url, settings)


def test_500_is_retried():
    with FakeOpenAI(script=["500", "500"]) as fake:
        out = reasoner(fake.url).reason([REQUEST])[0]
    assert out.text == "Answer: A" and len(fake.chat_paths()) == 3


def test_429_honours_retry_after():
    with FakeOpenAI(script=["429"], retry_after="0.4") as fake:
        reasoner(fake.url).reason([REQUEST])
        posts = [t for method, _, _, t in fake.requests if method == "POST"]
    assert len(posts) == 2 and posts[1] - posts[0] >= 0.38


def test_retries_give_up_with_the_endpoint_named():
    with FakeOpenAI(script=["500"] * 10) as fake:
        with pytest.raises(EndpointError, match=r"127\.0\.0\.1.*HTTP 500.*gave up after 4 attempts"):
            reasoner(fake.url).reason([REQUEST])
    assert len(fake.chat_paths()) == 4


def test_other_4xx_is_not_retried():
    with FakeOpenAI(script=["400"]) as fake:
        with pytest.raises(EndpointError, match="HTTP 400.*context too long"):
            reasoner(fake.url).reason([REQUEST])
    assert len(fake.chat_paths()) == 1


def test_hang_past_the_timeout_is_a_clear_error():
    with FakeOpenAI(script=["hang"], hang=2.5) as fake:
        started = time.monotonic()
        with pytest.raises(EndpointError, match="timed out after 1s"):
            reasoner(fake.url).reason([REQUEST])
    assert time.monotonic() - started < 2.5 and len(fake.chat_paths()) == 1


def test_dropped_connection_is_retried():
    with FakeOpenAI(script=["drop"]) as fake:
        out = reasoner(fake.url).reason([REQUEST])[0]
    assert out.text == "Answer: A" and len(fake.chat_paths()) == 2


def test_malformed_json_is_reported_not_retried():
    with FakeOpenAI(script=["badjson"]) as fake:
        with pytest.raises(EndpointError, match="invalid JSON"):
            reasoner(fake.url).reason([REQUEST])
    assert len(fake.chat_paths()) == 1


def test_model_not_served():
    with FakeOpenAI(models=["other-model"]) as fake:
        with pytest.raises(ModelLoadError, match="does not serve model 'wanted'.*other-model"):
            reasoner(fake.url + "#wanted").load()


def test_a_model_served_but_not_listed_is_asked_for():
    with FakeOpenAI(models=["./models/tiny"], listed=["Qwen/Qwen3-1.7B"]) as fake:
        assert reasoner(fake.url + "#./models/tiny").load() == "./models/tiny"
    assert len(fake.chat_paths()) == 1, "one probe, no more"


def test_several_models_need_a_choice():
    with FakeOpenAI(models=["a", "b"]) as fake:
        with pytest.raises(ModelLoadError, match="serves 2 models.*URL#MODEL"):
            reasoner(fake.url).load()
        assert reasoner(fake.url + "#b").load() == "b"


def test_server_down_at_start():
    with pytest.raises(ModelLoadError, match="connection refused"):
        reasoner(closed_port_url(), HttpSettings(connect_timeout=0.5, retries=1, backoff=0.01)).load()


def test_two_endpoints_one_down():
    with FakeOpenAI() as fake:
        model = reasoner(f"{closed_port_url()},{fake.url}")
        outs = [model.reason([REQUEST])[0] for _ in range(4)]
    assert all(o.text == "Answer: A" for o in outs) and len(fake.chat_paths()) == 4


def test_requests_spread_over_replicas():
    with FakeOpenAI() as a, FakeOpenAI() as b:
        model = reasoner(f"{a.url},{b.url}")
        for _ in range(6):
            model.reason([REQUEST])
        assert len(a.chat_paths()) == 3 and len(b.chat_paths()) == 3


def test_api_key_from_the_environment(monkeypatch):
    monkeypatch.setenv("XTHINK_API_KEY", "sekret")
    seen = {}
    with FakeOpenAI() as fake:
        original = fake.server.RequestHandlerClass.do_GET

        def do_get(handler):
            seen["auth"] = handler.headers.get("Authorization")
            return original(handler)

        fake.server.RequestHandlerClass.do_GET = do_get
        Endpoints((fake.url,), FAST).get("/models")
    assert seen["auth"] == "Bearer sekret"


def test_bounded_concurrency():
    import threading

    with FakeOpenAI(script=["hang"] * 4, hang=0.3) as fake:
        endpoints = Endpoints((fake.url,), HttpSettings(concurrency=2, read_timeout=5))
        threads = [threading.Thread(target=endpoints.post, args=("/chat/completions", {"model": "fake-model"}))
                   for _ in range(4)]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert time.monotonic() - started >= 0.55, "four 0.3 s requests, two at a time, take two rounds"


def test_perceiver_sends_image_first_then_instruction():
    with FakeOpenAI(answer="<think>\n\n</think>\n\nA red square.") as fake:
        perceiver = HttpPerceiver(fake.url, FAST)
        img = Image.new("RGB", (8, 8), "red")
        out = perceiver.perceive([PerceiveRequest((img,), "Describe.", image_key="image_1")] * 2)
        bodies = [body for method, path, body, _ in fake.requests if method == "POST"]
    assert [o.text for o in out] == ["A red square.", "A red square."]
    content = bodies[0]["messages"][0]["content"]
    assert content[0]["type"] == "image_url" and content[0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert content[-1] == {"type": "text", "text": "Describe."}
    assert bodies[0]["chat_template_kwargs"] == {"enable_thinking": False} and bodies[0]["temperature"] == 0.0
    assert bodies[0] == bodies[1], "a repeated image is sent byte-identical (prefix-cache friendly)"


def test_in_flight_cap_follows_concurrency_and_max_in_flight():
    import threading

    def peak(settings):
        with FakeOpenAI(script=["hang"] * 12, hang=0.2) as fake:
            endpoints = Endpoints((fake.url,), settings)
            threads = [threading.Thread(target=endpoints.post, args=("/chat/completions", {"model": "fake-model"}))
                       for _ in range(12)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return fake.peak_in_flight

    assert peak(HttpSettings(concurrency=6, read_timeout=5)) == 6, "--concurrency sets the cap (no fixed 8)"
    assert peak(HttpSettings(concurrency=6, max_in_flight=3, read_timeout=5)) == 3, "--max-in-flight per endpoint"


def test_thinking_budget_over_http_continues_the_message_on_vllm():
    settings = SamplingSettings(thinking_budget=16, max_new_tokens=40, seed=1)
    request = ReasonRequest((Message("user", "q"),), settings)
    with FakeOpenAI(script=["think-length"], owned_by="vllm") as fake:
        out = reasoner(fake.url).reason([request])[0]
        first, second = [body for method, _, body, _ in fake.requests if method == "POST"]
    assert first["max_tokens"] == 16, "the first call thinks for at most the budget"
    assert second["max_tokens"] == 40 - 16 and second["continue_final_message"] is True
    assert second["add_generation_prompt"] is False
    closed = second["messages"][-1]
    assert closed["role"] == "assistant" and closed["content"].endswith("\n</think>\n\n")
    assert out.thinking.startswith("thinking") and out.text == "Answer: A" and out.thinking_tokens == 16
    assert out.output_tokens == 16 + 3 and "</think>" in out.raw


def test_thinking_budget_over_http_new_turn_where_the_server_cannot_continue():
    request = ReasonRequest((Message("user", "q"),), SamplingSettings(thinking_budget=16, max_new_tokens=40))
    with FakeOpenAI(script=["think-length"]) as fake:
        out = reasoner(fake.url).reason([request])[0]
        second = [body for method, _, body, _ in fake.requests if method == "POST"][1]
    assert "continue_final_message" not in second and second["chat_template_kwargs"] == {"enable_thinking": False}
    assert second["messages"][-1]["content"].endswith("\n</think>\n\n") and out.text == "Answer: A"


def test_no_continuation_when_the_first_call_finished():
    request = ReasonRequest((Message("user", "q"),), SamplingSettings(thinking_budget=16, max_new_tokens=40))
    with FakeOpenAI() as fake:
        reasoner(fake.url).reason([request])
        assert len(fake.chat_paths()) == 1
