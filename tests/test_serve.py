"""`xthink serve` as a real server on 127.0.0.1, driven by the official `openai` client, tiny models."""

from __future__ import annotations

import base64
import io
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

openai = pytest.importorskip("openai")

KEY = "test-key-123"
SETTINGS = {"greedy": True, "max_extractions": 1, "perceiver_max_new_tokens": 8, "thinking_budget": 12}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def data_url(img: Image.Image, fmt: str = "PNG") -> str:
    buf = io.BytesIO()
    img.save(buf, fmt)
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(buf.getvalue()).decode()


@pytest.fixture(scope="module")
def server(tiny, tmp_path_factory):
    root = tmp_path_factory.mktemp("serve_root")
    Image.new("RGB", (40, 30), "green").save(root / "inside.png")
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "XTHINK_IMAGE_ROOT": str(root),
           "XTHINK_IMAGE_STORE": str(tmp_path_factory.mktemp("serve_store")), "XTHINK_ALLOW_URLS": "1",
           "XTHINK_MAX_EXTRACTIONS_CAP": "3"}
    cmd = [sys.executable, "-m", "graphs.cli.app", "serve", "--port", str(port), "--reasoner", str(tiny.reasoner),
           "--perceiver", str(tiny.perceivers["llava_onevision"]), "--api-key", KEY, "--device", "cpu",
           "--max-images", "2", "--max-pixels", "200000", "--max-concurrent", "2"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=Path(__file__).resolve().parents[1])
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{url}/v1/models", timeout=1).status_code in (200, 401):
                break
        except httpx.HTTPError:
            time.sleep(0.2)
        assert proc.poll() is None, proc.stdout.read()
    yield url, root
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server[0] + "/v1", api_key=KEY, max_retries=0, timeout=300)


def user(text: str, *urls: str) -> dict:
    return {"role": "user", "content": [{"type": "text", "text": text}]
            + [{"type": "image_url", "image_url": {"url": u}} for u in urls]}


def ask(client, messages, model="extract-think", **extra):
    return client.chat.completions.create(model=model, messages=messages, max_tokens=24,
                                          extra_body={**SETTINGS, **extra})


def test_models_are_listed(client):
    assert {m.id for m in client.models.list()} == {"extract-think", "extract-think-extract",
                                                    "extract-think-caption", "extract-think-direct"}


def test_non_stream_answer_trace_and_usage(client, image_path):
    response = ask(client, [user("What colour is the square?", data_url(Image.open(image_path)))])
    message = response.choices[0].message
    result = response.model_extra["extract_think"]
    assert result["mode"] == "iterative" and result["images"][0]["id"] == "image_1"
    assert result["steps"][0]["kind"] == "reason", "the reasoner ran first"
    steps = result["steps"]
    assert steps[-1]["kind"] == "reason" and message.content == steps[-1]["text"].strip(), "the visible answer"
    assert response.usage.prompt_tokens == sum(s["prompt_tokens"] for s in steps) > 0
    assert response.usage.completion_tokens == sum(s["output_tokens"] for s in steps) > 0
    assert message.model_extra["reasoning_content"] == steps[-1]["thinking"]


def test_every_regime_model(client, image_path):
    url = data_url(Image.open(image_path))
    for model, mode in [("extract-think-extract", "extract"), ("extract-think-caption", "caption"),
                        ("extract-think-direct", "direct")]:
        result = ask(client, [user("What is shown?", url)], model=model).model_extra["extract_think"]
        assert result["mode"] == mode and result["steps"]


def test_stream_chunks_and_done(server, image_path):
    body = {"model": "extract-think", "stream": True, "max_tokens": 24, **SETTINGS,
            "messages": [user("What colour?", data_url(Image.open(image_path)))]}
    lines = []
    with httpx.stream("POST", server[0] + "/v1/chat/completions", json=body, timeout=300,
                      headers={"Authorization": f"Bearer {KEY}"}) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    import json

    chunks = [json.loads(line[6:]) for line in lines[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert any(c["choices"][0]["delta"].get("reasoning_content") for c in chunks), "thinking streamed"
    last = chunks[-1]
    assert last["choices"][0]["finish_reason"] == "stop" and last["extract_think"]["mode"] == "iterative"


def test_stream_with_the_openai_client(client, image_path):
    stream = client.chat.completions.create(model="extract-think", stream=True, max_tokens=24, extra_body=SETTINGS,
                                            messages=[user("What colour?", data_url(Image.open(image_path)))])
    chunks = list(stream)
    assert chunks[-1].choices[0].finish_reason == "stop"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == chunks[-1].model_extra["extract_think"]["steps"][-1]["text"].strip()


def test_two_images_and_multi_turn(client, image_path, second_image):
    urls = [data_url(Image.open(image_path)), data_url(Image.open(second_image))]
    first = ask(client, [user("Compare the images.", *urls)])
    result = first.model_extra["extract_think"]
    assert [i["id"] for i in result["images"]] == ["image_1", "image_2"]
    follow = ask(client, [user("Compare the images.", *urls),
                          {"role": "assistant", "content": first.choices[0].message.content},
                          user("Which one is larger?")])
    again = follow.model_extra["extract_think"]
    assert [i["id"] for i in again["images"]] == ["image_1", "image_2"], "earlier turns' images are kept"
    assert "Earlier in this conversation" in again["question"] and "Which one is larger?" in again["question"]


def bad_requests(server, tmp_path):
    root = server[1]
    huge = data_url(Image.new("RGB", (600, 600), "white"))  # 360,000 pixels > --max-pixels 200000
    not_image = "data:image/png;base64," + base64.b64encode(b"this is not an image").decode()
    small = data_url(Image.new("RGB", (8, 8), "red"))
    outside = tmp_path / "outside.png"
    Image.new("RGB", (8, 8)).save(outside)
    return {
        "broken data URL": ([user("q", "data:image/png;base64,@@@not-base64@@@")], 400),
        "not an image": ([user("q", not_image)], 400),
        "huge image": ([user("q", huge)], 413),
        "too many images": ([user("q", small, small, small)], 400),
        "path outside the root": ([user("q", str(outside))], 403),
        "path escaping with ..": ([user("q", str(root / ".." / outside.name))], 403),
        "loopback URL": ([user("q", "http://127.0.0.1:9/x.png")], 403),
        "link-local URL": ([user("q", "http://169.254.169.254/latest/meta-data")], 403),
        "other scheme": ([user("q", "ftp://example.com/x.png")], 400),
        "NUL in a path": ([user("q", "a\x00b.png")], 400),
    }


def test_bad_inputs_are_clear_4xx_and_the_server_keeps_serving(server, client, image_path, tmp_path):
    for name, (messages, status) in bad_requests(server, tmp_path).items():
        with pytest.raises(openai.APIStatusError) as info:
            ask(client, messages)
        assert info.value.status_code == status, name
        error = info.value.body
        assert error["message"] and "Traceback" not in error["message"], name
    with pytest.raises(openai.NotFoundError):
        ask(client, [user("q", data_url(Image.open(image_path)))], model="gpt-4o")
    wrong = openai.OpenAI(base_url=server[0] + "/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.models.list()
    inside = ask(client, [user("What colour?", "inside.png")]).model_extra["extract_think"]
    assert inside["images"][0]["width"] == 40, "a path under the root is allowed"
    assert "/" not in inside["images"][0]["path"], "the server's folders are not shown to clients"
    assert ask(client, [user("What colour?", data_url(Image.open(image_path)))]).choices[0].message is not None


def test_garbage_bodies(server):
    headers = {"Authorization": f"Bearer {KEY}", "content-type": "application/json"}
    url = server[0] + "/v1/chat/completions"
    for body, status in [(b"{not json", 400), (b'{"model": "extract-think"}', 400),
                         (b'{"model": "extract-think", "messages": [{"role": "wizard"}]}', 400),
                         (b'{"model": "extract-think", "messages": [{"role": "user", "content": "q"}], '
                          b'"max_extractions": "lots"}', 400),
                         (b'{"model": "extract-think", "messages": [{"role": "user", "content": "q"}], '
                          b'"max_extractions": 99}', 400),
                         (b'{"model": "extract-think", "messages": [{"role": "user", "content": "q"}], '
                          b'"greedy": "maybe"}', 400),
                         (b'{"model": "extract-think", "messages": [{"role": "user", "content": [{"type": '
                          b'"image_url", "image_url": {"url": 123}}]}]}', 400),
                         (b"[" * 100_000 + b"]" * 100_000, 400)]:
        response = httpx.post(url, content=body, headers=headers, timeout=30)
        assert response.status_code == status, body
        assert set(response.json()["error"]) >= {"message", "type"}
    big = httpx.post(url, content=b"x" * (33 * 1024 * 1024), headers=headers, timeout=60)
    assert big.status_code == 413
    chunked = httpx.post(url, content=(b"x" * (1024 * 1024) for _ in range(40)), headers=headers, timeout=60)
    assert chunked.status_code == 413, "no Content-Length: the body is counted as it arrives"
    assert httpx.get(server[0] + "/v1/models", headers=headers, timeout=10).status_code == 200


def test_out_of_range_settings_are_400s_naming_the_field(server, client, image_path):
    """OpenAI's ranges (temperature 0..2, top_p 0..1), 64-bit seeds, token counts and the operator's caps are
    checked before a run starts; 0 for temperature or top_p means greedy, as in OpenAI's API."""
    headers = {"Authorization": f"Bearer {KEY}", "content-type": "application/json"}
    url = server[0] + "/v1/chat/completions"
    start = '{"model": "extract-think", "messages": [{"role": "user", "content": "q"}], '
    cases = [('"temperature": NaN', "temperature"), ('"temperature": -0.5', "temperature"),
             ('"temperature": 2.5', "temperature"), ('"temperature": 1e999', "temperature"),
             ('"top_p": -0.1', "top_p"), ('"top_p": 1.5', "top_p"), ('"seed": 18446744073709551616', "seed"),
             ('"seed": -9223372036854775809', "seed"), ('"max_tokens": 1000000000000000000000', "max_tokens"),
             ('"max_tokens": -5', "max_tokens"), ('"max_completion_tokens": 0', "max_completion_tokens"),
             ('"perceiver_max_new_tokens": 100000', "perceiver_max_new_tokens"),
             ('"thinking_budget": 1', "thinking_budget"), ('"max_extractions": true', "max_extractions"),
             ('"greedy": "yes"', "greedy"), ('"stream": "yes"', "stream"), ('"max_extractions": 5', "max_extractions")]
    for setting, name in cases:
        response = httpx.post(url, content=start + setting + "}", headers=headers, timeout=30)
        assert response.status_code == 400, setting
        error = response.json()["error"]
        assert error["param"] == name and error["message"].startswith(name), (setting, error)
    assert "XTHINK_MAX_EXTRACTIONS_CAP" in error["message"], "the operator's cap names its variable"
    image = data_url(Image.open(image_path))
    assert ask(client, [user("What colour?", image)], greedy=False, temperature=0, seed=7).choices
    assert ask(client, [user("What colour?", image)], greedy=False, top_p=0, seed=2**64 - 1).choices


def test_openai_zero_temperature_or_top_p_means_greedy():
    from graphs.server.chat_request import ChatRequest
    from graphs.server.settings_mapping import ask_options

    for zero in ({"temperature": 0}, {"top_p": 0.0}):
        options = ask_options(ChatRequest(model="extract-think", messages=[], **zero))
        assert options.greedy and options.temperature is None and options.top_p is None
    assert not ask_options(ChatRequest(model="extract-think", messages=[], temperature=0.5)).greedy
