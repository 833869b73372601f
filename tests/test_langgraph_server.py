"""The graphs under a real LangGraph Server (`langgraph dev`, in memory), driven by `langgraph-sdk`.

Models come from the environment (XTHINK_REASONER / XTHINK_PERCEIVER: the tiny ones) and settings from
each run's JSON `context`, as any client or LangGraph Studio sends them.
"""

from __future__ import annotations

import asyncio
import base64
import io
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

sdk = pytest.importorskip("langgraph_sdk")

ROOT = Path(__file__).resolve().parents[1]
CONTEXT = {"greedy": True, "max_new_tokens": 16, "thinking_budget": 8, "perceiver_max_new_tokens": 6,
           "max_extractions": 1}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def data_url(path) -> str:
    buf = io.BytesIO()
    Image.open(path).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def start_langgraph_dev(tiny, tmp_path_factory, cwd: Path | None = None, **extra_env):
    """`langgraph dev` on a free port with the tiny models; returns (process, url). Other tests reuse it, some
    with a folder of their own (`cwd`, holding its own langgraph.json) and more environment."""
    cli = shutil.which("langgraph", path=str(Path(sys.executable).parent)) or shutil.which("langgraph")
    assert cli, "langgraph-cli[inmem] is part of the test extra"
    port = free_port()
    log = tmp_path_factory.mktemp("lg") / "server.log"
    # The server keeps its in-memory data under ./.langgraph_api: run it from a folder of its own that sees the
    # repository's graphs, never from the repository itself.
    if cwd is None:
        cwd = tmp_path_factory.mktemp("lg_cwd")
        for name in ("langgraph.json", "pyproject.toml", "agent", "tools", "graphs", "evals"):
            (cwd / name).symlink_to(ROOT / name)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "XTHINK_REASONER": str(tiny.reasoner),
           "XTHINK_PERCEIVER": str(tiny.perceivers["llava_onevision"]), "XTHINK_DEVICE": "cpu",
           "XTHINK_IMAGE_STORE": str(tmp_path_factory.mktemp("lg_store")), "LANGSMITH_TRACING": "false",
           "LANGGRAPH_CLI_NO_ANALYTICS": "1", **extra_env}
    with open(log, "w") as out:
        proc = subprocess.Popen([cli, "dev", "--port", str(port), "--no-browser", "--no-reload"], cwd=cwd, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{url}/ok", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
        assert proc.poll() is None, log.read_text()[-3000:]
    return proc, url


@pytest.fixture(scope="module")
def server(tiny, tmp_path_factory):
    proc, url = start_langgraph_dev(tiny, tmp_path_factory)
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def run(coro):
    return asyncio.run(coro)


def user(text: str, *urls: str) -> dict:
    return {"role": "user", "content": [{"type": "text", "text": text}]
            + [{"type": "image_url", "image_url": {"url": u}} for u in urls]}


def test_graphs_are_listed(server):
    async def go():
        client = sdk.get_client(url=server)
        return {a["graph_id"] for a in await client.assistants.search(limit=50)}

    assert {"assistant", "iterative", "extract", "caption", "direct", "eval"} <= run(go())


def test_assistant_thread_with_follow_up(server, image_path):
    async def go():
        client = sdk.get_client(url=server)
        thread = await client.threads.create()
        first = await client.runs.wait(thread["thread_id"], "assistant", context=CONTEXT,
                                       input={"messages": [user("What colour is the square?", data_url(image_path))]})
        second = await client.runs.wait(thread["thread_id"], "assistant", context=CONTEXT,
                                        input={"messages": [user("And its shape?")]})
        state = await client.threads.get_state(thread["thread_id"])
        return first, second, state["values"]

    first, second, values = run(go())
    assert first["result"]["mode"] == "iterative" and first["result"]["images"][0]["id"] == "image_1"
    assert [m["type"] for m in second["messages"]] == ["human", "ai", "human", "ai"]
    assert second["messages"][-1]["content"] == second["result"]["steps"][-1]["text"].strip()
    assert second["result"]["question"] == "And its shape?" and second["result"]["images"][0]["id"] == "image_1"
    history = values["history"]
    assert history[0]["role"] == "system" and any(m["content"].startswith("Follow-up question: And its shape?")
                                                  for m in history if m["role"] == "user")
    assert "base64," not in str(values), "the image is stored by content; state holds its id"
    assert values["messages"][0]["content"][1]["image_id"] == "image_1"


def test_streamed_run_shows_steps_and_tokens(server, image_path):
    async def go():
        client = sdk.get_client(url=server)
        thread = await client.threads.create()
        parts = []
        async for part in client.runs.stream(thread["thread_id"], "assistant", context=CONTEXT,
                                             input={"messages": [user("What colour?", data_url(image_path))]},
                                             stream_mode=["updates", "custom", "values"]):
            parts.append(part)
        return parts

    parts = run(go())
    updates = [p.data for p in parts if p.event == "updates"]
    assert [next(iter(u)) for u in updates][0] == "ingest" and any("reason" in u for u in updates)
    tokens = [p.data for p in parts if p.event == "custom"]
    assert tokens and all(t["event"] == "token" and t["node"] == "reason" for t in tokens)
    final = [p.data for p in parts if p.event == "values"][-1]
    reason = [s for s in final["result"]["steps"] if s["kind"] == "reason"]
    assert reason and sum(s["output_tokens"] for s in reason) > 0
    assert "".join(t["text"] for t in tokens).strip(), "the reasoner's text arrived token by token"


def test_regime_graph_runs_from_json_and_bad_context_is_named(server, image_path):
    async def go():
        client = sdk.get_client(url=server)
        thread = await client.threads.create()
        good = await client.runs.wait(thread["thread_id"], "caption", context=CONTEXT,
                                      input={"question": "What colour?", "options": ["red", "blue"],
                                             "images": [data_url(image_path)]})
        failures = []
        for key, value in BAD_CONTEXT:
            bad_thread = await client.threads.create()
            bad = await client.runs.create(bad_thread["thread_id"], "caption", context={key: value},
                                           input={"question": "q", "images": [data_url(image_path)]})
            joined = await client.runs.join(bad_thread["thread_id"], bad["run_id"])
            status = await client.runs.get(bad_thread["thread_id"], bad["run_id"])
            failures.append((key, status["status"], str(joined)))
        return good, failures

    good, failures = run(go())
    assert [s["purpose"] for s in good["steps"]] == ["caption", "answer"]
    assert good["images"][0]["id"] == "image_1" and good["options"] == ["red", "blue"]
    for key, status, joined in failures:
        assert status == "error" and key in joined, (key, joined[:300])


# Wrong types, values out of range, over the server's caps, and a device other than the operator's
# (XTHINK_DEVICE=cpu): each run fails with an error naming the key.
BAD_CONTEXT = [("max_extractions", "many"), ("top_p", 1.5), ("temperature", -1), ("max_extractions", 1000),
               ("perceiver_max_new_tokens", 100_000), ("device", "cuda:1")]
