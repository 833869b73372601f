"""OpenTelemetry traces in a real Arize Phoenix server: `phoenix serve` on free ports in a temporary folder, an
iterative run with two extractions on the tiny models (the reasoner steered by forced decoding), then the spans
read back through Phoenix's own client: one trace, the OpenInference kinds and attributes, the Result's token
counts. A dead collector must leave a run's answer and time alone."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from agent import openinference as oi
from agent import telemetry, telemetry_spans
from agent.trace import ExtractStep, ReasonStep
from graphs.api import AskOptions, ExtractThink
from tests.phoenix_server import phoenix_executable
from tools.tiny.forced import Script, think, tool_call
from tools.backends.hf_reasoner import TransformersReasoner

FAST = AskOptions(greedy=True, perceiver_max_new_tokens=8, max_extractions=2, thinking_budget=32, max_new_tokens=96)
QUESTION = "What colour is the square?"
REGION = [0.05, 0.1, 0.6, 0.85]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOT = os.environ.get("XTHINK_PHOENIX_SCREENSHOT")  # set to a path to keep the UI screenshot (docs/phoenix.png)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory):
    """A Phoenix server of our own: OTLP over HTTP at /v1/traces on its web port."""
    home = tmp_path_factory.mktemp("phoenix")
    port = free_port()
    env = {**os.environ, "PHOENIX_WORKING_DIR": str(home), "PHOENIX_PORT": str(port), "PHOENIX_HOST": "127.0.0.1",
           "PHOENIX_GRPC_PORT": str(free_port()), "PHOENIX_TELEMETRY_ENABLED": "false"}  # fmt: skip
    with open(home / "server.log", "wb") as log:
        proc = subprocess.Popen([str(phoenix_executable()), "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, home / "server.log")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _wait_healthy(url: str, proc, log: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"phoenix serve exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError("phoenix serve did not come up in 180 s")


def scripted_agent(tiny) -> ExtractThink:
    """Two extractions, the second zoomed into a region, then the answer."""
    script = Script(think("I need the colour of the square.") + tool_call("the colour of the square"),
                    think("Zoom in to be sure.") + tool_call("the edges of the square", region=REGION),
                    think("It is red.") + "The square is red.\nAnswer: A")  # fmt: skip
    reasoner = TransformersReasoner(str(tiny.reasoner), extra_logits_processors=script)
    return ExtractThink(reasoner=reasoner, perceiver=str(tiny.perceivers["llava_onevision"]), device="cpu")


def spans_of(url: str, trace_ids: set[str] | None = None, expect: int = 1) -> list:
    """Every span Phoenix stored for our project (polled: ingestion is asynchronous)."""
    from phoenix.client import Client

    client = Client(base_url=url)
    spans: list = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            spans = client.spans.get_spans(project_identifier=telemetry.PROJECT, limit=1000)
        except httpx.HTTPStatusError as exc:  # 404 until the project's first span is stored
            assert exc.response.status_code == 404, exc
            time.sleep(0.5)
            continue
        if trace_ids is not None:
            spans = [s for s in spans if s["context"]["trace_id"] not in trace_ids]
        if _complete(spans) >= expect and _settled(client, spans):
            return spans
        time.sleep(0.5)
    return spans


def _complete(spans: list) -> int:
    """How many traces have their root span: a root ends last, so it can reach Phoenix after its children."""
    return len({s["context"]["trace_id"] for s in spans if not s.get("parent_id")})


def _settled(client, spans) -> bool:
    time.sleep(1.0)  # one more look: the last batch may still be on its way
    again = client.spans.get_spans(project_identifier=telemetry.PROJECT, limit=1000)
    return len({s["context"]["span_id"] for s in again}) >= len({s["context"]["span_id"] for s in spans})


@pytest.fixture(scope="module")
def traced(tiny, image_path, phoenix):
    """One iterative run exported to Phoenix, and the spans Phoenix stored for it."""
    agent = scripted_agent(tiny)
    assert telemetry.configure(phoenix)
    try:
        result = agent.ask(QUESTION, [image_path], ["red", "blue"], settings=FAST)
    finally:
        telemetry.shutdown()  # sends what is queued
    return result, spans_of(phoenix)


def attrs(span) -> dict:
    return span.get("attributes") or {}


def kind(span) -> str:
    return span.get("span_kind", "")


def by_start(spans) -> list:
    return sorted(spans, key=lambda s: s["start_time"])


def test_the_run_is_one_trace_rooted_in_a_chain_span(traced):
    result, spans = traced
    assert result.extraction_calls == 2 and result.answer == "A"
    assert len({s["context"]["trace_id"] for s in spans}) == 1
    roots = [s for s in spans if not s.get("parent_id")]
    assert len(roots) == 1
    root = attrs(roots[0])
    assert kind(roots[0]) == "CHAIN" and root["input.value"] == QUESTION
    assert (root["xthink.mode"], root["xthink.answer"], root["xthink.extraction_calls"]) == ("iterative", "A", 2)


def test_one_span_per_node_in_order(traced):
    _, spans = traced
    root = next(s for s in spans if not s.get("parent_id"))
    nodes = [s for s in by_start(spans) if s.get("parent_id") == root["context"]["span_id"]]
    assert [s["name"] for s in nodes] == ["check_input", "start", "reason", "extract", "reason", "extract", "reason"]
    assert all(kind(s) == "CHAIN" for s in nodes)


def test_reasoner_spans_carry_messages_tokens_thinking_and_tool_calls(traced):
    result, spans = traced
    steps = [s for s in result.steps if isinstance(s, ReasonStep)]
    llm = [s for s in by_start(spans) if s["name"] == "reason" and kind(s) == "LLM"]
    assert len(llm) == len(steps) == 3
    for span, step in zip(llm, steps):
        a = attrs(span)
        assert a["llm.model_name"] == result.reasoner
        assert (a["llm.token_count.prompt"], a["llm.token_count.completion"], a["llm.token_count.total"]) == (
            step.prompt_tokens, step.output_tokens, step.prompt_tokens + step.output_tokens)
        assert a["llm.token_count.completion_details.reasoning"] == step.thinking_tokens
        assert a["llm.token_count.prompt_details.cache_read"] == step.cached_tokens
        assert (a["xthink.thinking"], a["xthink.visible"], a["xthink.finish_reason"]) == (
            step.thinking, step.text, step.finish_reason)
        assert a["llm.input_messages.0.message.role"] == "system"
        assert QUESTION in a["llm.input_messages.1.message.content"]
        assert a["llm.output_messages.0.message.content"] == step.text
        for j, call in enumerate(step.tool_calls):
            prefix = f"llm.output_messages.0.message.tool_calls.{j}.tool_call.function"
            assert a[f"{prefix}.name"] == call.name
            assert json.loads(a[f"{prefix}.arguments"]) == call.arguments
    # The second turn was sent the first turn's tool call and the perceiver's reply.
    second = attrs(llm[1])
    assert second["llm.input_messages.2.message.tool_calls.0.tool_call.function.name"] == "extract"
    assert second["llm.input_messages.3.message.role"] == "tool"


def test_extraction_spans_are_tools_holding_the_perceivers_call(traced):
    result, spans = traced
    steps = [s for s in result.steps if isinstance(s, ExtractStep)]
    tools = [s for s in by_start(spans) if kind(s) == "TOOL"]
    assert len(tools) == len(steps) == 2
    for span, step in zip(tools, steps):
        a = attrs(span)
        assert (a["tool.name"], a["xthink.request"], a["xthink.image_id"]) == ("extract", step.request, step.image_id)
        assert a["output.value"] == step.output and a["xthink.cached_tokens"] == step.cached_tokens
        inner = [s for s in spans if s.get("parent_id") == span["context"]["span_id"]]
        assert [kind(s) for s in inner] == ["LLM"]
        b = attrs(inner[0])
        assert b["llm.model_name"] == result.perceiver
        assert (b["llm.token_count.prompt"], b["llm.token_count.completion"]) == (step.prompt_tokens, step.output_tokens)
        assert b["llm.output_messages.0.message.content"] == step.output
    assert "xthink.region" not in attrs(tools[0])
    assert list(attrs(tools[1])["xthink.region"]) == pytest.approx(REGION)


def test_no_image_leaves_the_process_unless_asked(traced):
    _, spans = traced
    assert not any("data:image" in json.dumps(attrs(s), default=str) for s in spans)


def test_eval_samples_are_their_own_traces_with_thumbnails_when_asked(tiny, image_path, phoenix, traced,
                                                                      monkeypatch):  # fmt: skip
    before = {s["context"]["trace_id"] for s in traced[1]}
    monkeypatch.setenv("XTHINK_OTEL_IMAGES", "1")
    agent = scripted_agent(tiny)
    assert telemetry.configure(phoenix)
    try:
        with telemetry_spans.sample_span(sample_id="s1", regime="iterative", benchmark="tiny"):
            agent.ask(QUESTION, [image_path], ["red", "blue"], settings=FAST)
        with telemetry_spans.sample_span(sample_id="s2", regime="direct", benchmark="tiny"):
            _direct(tiny, image_path)
    finally:
        telemetry.shutdown()
    spans = spans_of(phoenix, before, expect=2)
    roots = {attrs(s)["xthink.sample_id"]: s for s in spans if not s.get("parent_id")}
    assert {k: attrs(r)["xthink.regime"] for k, r in roots.items()} == {"s1": "iterative", "s2": "direct"}
    assert len({s["context"]["trace_id"] for s in spans}) == 2
    s1 = [s for s in spans if s["context"]["trace_id"] == roots["s1"]["context"]["trace_id"]]
    runs = [s for s in s1 if s.get("parent_id") == roots["s1"]["context"]["span_id"]]
    assert [attrs(r).get("xthink.mode") for r in runs] == ["iterative"]
    zoomed = next(s for s in s1 if kind(s) == "TOOL" and attrs(s).get("xthink.region"))
    url = attrs(zoomed)["xthink.image.url"]
    thumb = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert max(thumb.size) <= oi.THUMBNAIL_PX and thumb.getpixel((thumb.width // 2, thumb.height // 2))[0] > 150


def _direct(tiny, image_path):
    agent = ExtractThink(reasoner=str(tiny.reasoner), perceiver=str(tiny.perceivers["llava_onevision"]), device="cpu")
    return agent.ask(QUESTION, [image_path], ["red", "blue"], mode="direct", settings=FAST)


def test_a_dead_collector_changes_neither_answer_nor_time(tiny, image_path, traced, caplog):
    plain_started = time.perf_counter()
    plain = scripted_agent(tiny).ask(QUESTION, [image_path], ["red", "blue"], settings=FAST)
    plain_seconds = time.perf_counter() - plain_started
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    assert telemetry.configure(dead)
    try:
        with caplog.at_level(logging.WARNING):
            started = time.perf_counter()
            result = scripted_agent(tiny).ask(QUESTION, [image_path], ["red", "blue"], settings=FAST)
            seconds = time.perf_counter() - started
            telemetry.shutdown()
    finally:
        telemetry.shutdown()
    assert (result.answer, result.final_output, result.extraction_calls) == (
        plain.answer, plain.final_output, plain.extraction_calls)
    assert seconds < 3 * plain_seconds + 10  # generous: a failing export runs off the run's thread
    warnings = [r for r in caplog.records if "cannot export spans" in r.getMessage()]
    assert len(warnings) == 1


def test_cli_refuses_an_endpoint_that_is_not_a_url(image_path):
    proc = subprocess.run([sys.executable, "-m", "graphs.cli.app", "ask", str(image_path), "What?",
                           "--otel-endpoint", "localhost:6006"], capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert proc.returncode == 2
    assert "OTLP endpoint must be an http(s) URL" in proc.stderr and "Traceback" not in proc.stderr


def test_phoenix_shows_our_trace(traced, phoenix, tmp_path):
    from playwright.sync_api import sync_playwright

    assert CHROMIUM, "Chromium is needed for the screenshot: apt-get install chromium (.ci/run installs it)"
    _, spans = traced
    trace_id = spans[0]["context"]["trace_id"]
    projects = httpx.get(phoenix + "/v1/projects", timeout=10).json()["data"]
    project = next(p["id"] for p in projects if p["name"] == telemetry.PROJECT)
    target = Path(SCREENSHOT) if SCREENSHOT else tmp_path / "phoenix.png"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{phoenix}/projects/{project}/traces/{trace_id}")
        page.get_by_text("iterative run").first.wait_for(timeout=60_000)
        page.get_by_text("perceive").first.wait_for(timeout=30_000)
        page.get_by_text("reason", exact=True).nth(3).click()  # the second reasoner call: messages, tool call
        page.get_by_text("the edges of the square").first.wait_for(timeout=30_000)
        page.wait_for_timeout(1500)
        page.screenshot(path=str(target))
        browser.close()
    assert target.stat().st_size > 10_000


def test_eval_runs_one_trace_per_sample_with_its_id_and_regime(tiny, phoenix, traced, tmp_path):
    from evals.runner import BenchSpec, EvalPlan
    from evals.run_store import RunStore, read_records
    from evals.synthetic.benchmarks import mmstar_rows, write_parquet
    from graphs import eval as eval_graph
    from tools.tiny.forced import Constant

    before = {s["context"]["trace_id"] for s in spans_of(phoenix)}
    bench = write_parquet(mmstar_rows(), tmp_path / "mmstar.parquet")
    plan = EvalPlan(benches=[BenchSpec("mmstar", str(bench))], modes=["iterative", "direct"], out=tmp_path / "run",
                    reasoner=str(tiny.reasoner), perceiver=str(tiny.perceivers["llava_onevision"]), limit=2,
                    concurrency=2, settings=AskOptions(greedy=True, max_new_tokens=16, thinking_budget=8,
                                                       perceiver_max_new_tokens=8))  # fmt: skip
    reasoner = TransformersReasoner(str(tiny.reasoner), extra_logits_processors=Constant("Answer: A"))
    agent = ExtractThink(reasoner=reasoner, perceiver=plan.perceiver, device="cpu")
    ctx = eval_graph.EvalContext(plan=plan, store=RunStore(plan.out), agent=agent)
    assert telemetry.configure(phoenix)
    try:
        eval_graph.graph.invoke({}, context=ctx, config={"recursion_limit": eval_graph.RECURSION_LIMIT,
                                                          "max_concurrency": 2})  # fmt: skip
    finally:
        telemetry.shutdown()
    records = read_records(plan.out)
    assert len(records) == 4
    spans = spans_of(phoenix, before, expect=len(records) + 1)  # the samples, and the eval graph's own run
    samples = {(attrs(s).get("xthink.sample_id"), attrs(s).get("xthink.regime")): s for s in spans
               if not s.get("parent_id") and s["name"] == "sample"}  # fmt: skip
    assert set(samples) == {(r.sample_id, r.regime) for r in records}
    for (_, regime), root in samples.items():
        trace = [s for s in spans if s["context"]["trace_id"] == root["context"]["trace_id"]]
        runs = [s for s in trace if s.get("parent_id") == root["context"]["span_id"]]
        assert [attrs(r)["xthink.mode"] for r in runs] == [regime]
    assert len({s["context"]["trace_id"] for s in spans}) == len(records) + 1


def test_a_chat_turn_is_traced_with_its_result(tiny, image_path, phoenix, traced, tmp_path, monkeypatch):
    monkeypatch.setenv("XTHINK_IMAGE_STORE", str(tmp_path / "store"))
    before = {s["context"]["trace_id"] for s in spans_of(phoenix)}
    agent = scripted_agent(tiny)
    assert telemetry.configure(phoenix)
    try:
        turn = agent.chat(QUESTION, [image_path], thread_id="otel", settings=FAST)
    finally:
        telemetry.shutdown()
    spans = spans_of(phoenix, before)
    root = next(s for s in spans if not s.get("parent_id"))
    assert attrs(root)["input.value"] == QUESTION
    assert (attrs(root)["xthink.answer"], attrs(root)["xthink.extraction_calls"]) == (
        turn.result.answer, turn.result.extraction_calls)
    nodes = [s["name"] for s in by_start(spans) if s.get("parent_id") == root["context"]["span_id"]]
    assert nodes[0] == "ingest" and nodes[-1] == "respond" and nodes.count("extract") == 2


def test_cli_ask_exports_its_run_before_exiting(tiny, image_path, phoenix, traced):
    """The process ends right after the answer: the queued spans must still reach the collector."""
    before = {s["context"]["trace_id"] for s in spans_of(phoenix)}
    cmd = [sys.executable, "-m", "graphs.cli.app", "ask", str(image_path), "Colour?", "-o", "red", "-o", "blue", "--json",
           "--mode", "extract", "--reasoner", str(tiny.reasoner), "--perceiver", str(tiny.perceivers["llava_onevision"]),
           "--greedy", "--max-new-tokens", "12", "--thinking-budget", "8", "--device", "cpu"]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OTEL_EXPORTER_OTLP_ENDPOINT": phoenix}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    spans = spans_of(phoenix, before)
    root = next(s for s in spans if not s.get("parent_id"))
    assert (attrs(root)["xthink.mode"], attrs(root).get("xthink.answer")) == ("extract", result["answer"])
    nodes = [s["name"] for s in by_start(spans) if s.get("parent_id") == root["context"]["span_id"]]
    assert nodes == ["check_input", "observe", "perceive", "think"]
    assert len([s for s in spans if kind(s) == "LLM"]) == len(result["steps"])


def test_a_telemetry_bug_costs_the_spans_not_the_run(tiny, image_path, monkeypatch, caplog):
    def broken(*args):
        raise ValueError("an attribute we cannot encode")

    monkeypatch.setattr(oi, "request_attributes", broken)
    assert telemetry.configure(f"http://127.0.0.1:{free_port()}")
    try:
        result = scripted_agent(tiny).ask(QUESTION, [image_path], ["red", "blue"], settings=FAST)
    finally:
        telemetry.shutdown()
    assert (result.answer, result.extraction_calls) == ("A", 2)
    assert sum("could not record a model span" in r.getMessage() for r in caplog.records) == 1  # once, not per call


def test_without_the_extra_the_error_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)  # as if opentelemetry-sdk were not installed
    with pytest.raises(telemetry.TelemetryError, match=r"extract-think\[otel\]"):
        telemetry.configure("http://127.0.0.1:4318")
    assert not telemetry.enabled()
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    assert telemetry.configure() is False  # no endpoint anywhere: tracing stays off, nothing is imported


def test_runs_under_langgraph_server_are_traced(tiny, image_path, phoenix, traced, tmp_path_factory):
    """A deployed graph is traced too: `langgraph dev` with OTEL_EXPORTER_OTLP_ENDPOINT exports each run."""
    import asyncio

    from langgraph_sdk import get_client

    from tests.test_langgraph_server import CONTEXT, data_url, start_langgraph_dev

    before = {s["context"]["trace_id"] for s in spans_of(phoenix)}
    proc, url = start_langgraph_dev(tiny, tmp_path_factory, OTEL_EXPORTER_OTLP_ENDPOINT=phoenix)
    try:
        async def go():
            client = get_client(url=url)
            return await client.runs.wait(None, "caption", context=CONTEXT,
                                          input={"question": "What colour?", "images": [data_url(image_path)]})

        state = asyncio.run(go())
        deadline = time.monotonic() + 60  # the server's batch exporter sends every few seconds
        spans = spans_of(phoenix, trace_ids=before)
        while not any(s["name"] == "caption run" for s in spans) and time.monotonic() < deadline:
            time.sleep(1)
            spans = spans_of(phoenix, trace_ids=before)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert [step["purpose"] for step in state["steps"]] == ["caption", "answer"], state
    roots = [s for s in spans if not s.get("parent_id")]
    assert [r["name"] for r in roots] == ["caption run"], [(s["name"], s.get("parent_id")) for s in spans]
    assert {kind(s) for s in spans} >= {"CHAIN", "TOOL"}
