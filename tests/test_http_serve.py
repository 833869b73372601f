"""The HTTP backend against a real OpenAI-compatible server on loopback: `transformers serve` with the tiny
models. Greedy results must equal the in-process backend's, in `xthink ask` (every regime) and `xthink eval`."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from evals.run_store import read_records
from evals.synthetic.benchmarks import mmstar_rows, write_parquet
from graphs.cli.app import app

SERVE = shutil.which("transformers") or str(Path(sys.executable).parent / "transformers")
ASK = ["--greedy", "--max-new-tokens", "24", "--thinking-budget", "4096", "--json"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model: Path, log: Path) -> tuple[subprocess.Popen, str]:
    """The server pinned to `model`, named as `URL#MODEL`: transformers 5.20 (vLLM 0.33's) lists its hub cache in
    `/models`, not the model it serves, and fails that listing when the cache folder is missing; an empty cache of
    its own lets it list, and the backend asks for the unlisted model by name."""
    port = free_port()
    cache = log.with_suffix(".hub")
    cache.mkdir()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache)}
    proc = subprocess.Popen([SERVE, "serve", str(model), "--host", "127.0.0.1", "--port", str(port),
                             "--device", "cpu"], env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}/v1#{model}"


def wait_ready(proc: subprocess.Popen, url: str, log: Path) -> None:
    url = url.partition("#")[0]
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"transformers serve exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url + "/models", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"transformers serve did not come up: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def servers(tiny, tmp_path_factory):
    logs = tmp_path_factory.mktemp("serve")
    started = [start_server(tiny.reasoner, logs / "reasoner.log"),
               start_server(tiny.perceivers["llava_onevision"], logs / "perceiver.log")]
    try:
        for (proc, url), name in zip(started, ("reasoner.log", "perceiver.log")):
            wait_ready(proc, url, logs / name)
        yield {"reasoner": started[0][1], "perceiver": started[1][1]}
    finally:
        for proc, _ in started:
            proc.terminate()
            proc.wait(timeout=30)


def ask(image, mode, reasoner, perceiver):
    result = CliRunner().invoke(app, ["ask", str(image), "What colour is the square?", "-o", "red", "-o", "blue",
                                      "--mode", mode, "--reasoner", reasoner, "--perceiver", perceiver,
                                      "--device", "cpu", *ASK])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def comparable(payload: dict) -> dict:
    # Seconds and reused-KV counts are the backend's own; thinking counts differ when a server estimates them.
    drop = ("seconds", "thinking_tokens", "cached_tokens")
    steps = [{k: v for k, v in s.items() if k not in drop} for s in payload["steps"]]
    # Servers strip surrounding whitespace of the content; everything else must be identical.
    return {"answer": payload["answer"], "final_output": payload["final_output"].strip(), "steps": steps}


@pytest.mark.parametrize("mode", ["iterative", "extract", "caption", "direct"])
def test_ask_over_http_matches_in_process(servers, tiny, image_path, mode):
    remote = ask(image_path, mode, servers["reasoner"], servers["perceiver"])
    local = ask(image_path, mode, str(tiny.reasoner), str(tiny.perceivers["llava_onevision"]))
    assert remote["reasoner"] == (None if mode == "direct" else servers["reasoner"])
    assert comparable(remote) == comparable(local)


def test_eval_over_http_matches_in_process(servers, tiny, tmp_path):
    data = write_parquet(mmstar_rows(), tmp_path / "mmstar.parquet")
    outs = {}
    for name, reasoner, perceiver in [("remote", servers["reasoner"], servers["perceiver"]),
                                      ("local", str(tiny.reasoner), str(tiny.perceivers["llava_onevision"]))]:
        out = tmp_path / name
        result = CliRunner().invoke(app, [
            "eval", "--bench", f"mmstar={data}", "--mode", "iterative", "--mode", "extract", "--mode", "caption", "--mode", "direct", "--limit", "4",
            "--reasoner", reasoner, "--perceiver", perceiver, "--greedy", "--max-new-tokens", "24",
            "--perceiver-max-new-tokens", "12", "--concurrency", "2", "--device", "cpu", "--out", str(out)])
        assert result.exit_code == 0, result.output
        outs[name] = sorted((r.key, r.raw_output.strip(), r.pred, r.method) for r in read_records(out))
    assert len(outs["remote"]) == 16 and outs["remote"] == outs["local"]


def test_eval_records_server_failures_and_continues(tiny, tmp_path):
    from tests.fake_openai import FakeOpenAI

    data = write_parquet(mmstar_rows(), tmp_path / "mmstar.parquet")
    with FakeOpenAI(models=["vlm"], answer="Answer: B", script=["ok", "400", "ok", "ok"]) as fake:
        result = CliRunner().invoke(app, [
            "eval", "--bench", f"mmstar={data}", "--mode", "direct", "--limit", "4", "--perceiver", fake.url,
            "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    records = read_records(tmp_path / "run")
    failed = [r for r in records if r.status == "error"]
    assert len(records) == 4 and len(failed) == 1 and "HTTP 400" in failed[0].error
    assert all(r.pred == "B" for r in records if r.status == "ok")


def test_vllm_missing_is_a_clear_error(image_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # as if vLLM were not installed (.ci/run's vLLM environment has it)
    result = CliRunner().invoke(app, ["ask", str(image_path), "Colour?", "--perceiver", "vllm:Qwen/Qwen3-1.7B",
                                      "--mode", "direct"])
    assert result.exit_code == 3 and "extract-think[vllm]" in result.output and "Traceback" not in result.output


def test_thinking_budget_over_a_real_server(servers):
    """`transformers serve` cannot continue an assistant message, so the budget's second phase is a new
    turn with thinking off after the closed think block; the server must accept it and answer."""
    from tools.backends.base import Message, ReasonRequest, SamplingSettings
    from tools.backends.http_backend import HttpReasoner

    settings = SamplingSettings(greedy=True, thinking_budget=4, max_new_tokens=14)
    out = HttpReasoner(servers["reasoner"]).reason([ReasonRequest((Message("user", "Think."),), settings)])[0]
    assert out.output_tokens > 4, "the second phase ran"
    assert out.raw.startswith("<think>\n") and "\n</think>\n\n" in out.raw and out.output_tokens <= 14


def test_reasoner_text_streams_over_a_real_server(servers):
    """With a text callback the request is streamed; the chunks put together equal the same request unstreamed,
    and the text handed over is that output as it was generated."""
    from tools.backends.base import Message, ReasonRequest, SamplingSettings
    from tools.backends.http_backend import HttpReasoner

    settings = SamplingSettings(greedy=True, thinking_budget=None, max_new_tokens=16)
    request = ReasonRequest((Message("user", "Say something."),), settings)
    reasoner = HttpReasoner(servers["reasoner"])
    plain = reasoner.reason([request])[0]
    pieces: list[str] = []
    streamed = reasoner.reason([ReasonRequest(request.messages, settings, on_text=pieces.append)])[0]
    assert len(pieces) > 1, "text arrived in pieces"
    # A server's streaming detokenizer holds back a last incomplete character (U+FFFD unstreamed): ignore it.
    def same(text: str) -> str:
        return "".join(text.replace("<think>", "").replace("</think>", "").replace("\ufffd", "").split())

    assert same(streamed.raw) == same(plain.raw) and same(streamed.thinking) == same(plain.thinking)
    assert streamed.output_tokens == plain.output_tokens and streamed.prompt_tokens == plain.prompt_tokens
    assert same("".join(pieces)) == same(streamed.raw), "the text handed over is the output, as generated"
