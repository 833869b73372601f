"""The command blocks of README.md and docs/*.md run as written, in a fresh folder.

Each test picks its block by a marker, a piece of text only that block holds (`example`), so a block can move
between pages. Every command block is run here, or checked against CI, or named in SHOWN_NOT_RUN with the
reason it cannot run offline: `test_every_command_block_is_run_or_listed` holds that.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.doc_pages import ROOT, command_blocks
from tests.phoenix_server import path_with_phoenix

SHOWN_NOT_RUN = {  # marker -> why no test runs that block
    '--option "OPEN" --option "CLOSED"': "a photo of the reader's and the small pair from the hub",
    "xthink convert markendo/": "the paper's checkpoint from the hub (tests/test_convert.py converts a tiny one)",
    "--out runs/small-pair": "the benchmarks and the small pair from the hub",
    "lmms-eval --model extract_think --model_args pair=small": "a GPU, and models and data from the hub",
    "accelerate launch --num_processes 8 -m lmms_eval": "eight GPUs",
    "docker run -d --name xthink-pg": "Docker (tests/test_postgres_threads.py runs Debian's PostgreSQL instead)",
    "--teacher vllm:Qwen/Qwen3-VL-8B-Instruct": "GPUs, vLLM and the paper-size models from the hub",
    "vllm serve Qwen/Qwen3-1.7B": "a GPU and vLLM",
}


def example(marker: str) -> str:
    """The one command block, on any page, that holds `marker`."""
    found = [b for b in command_blocks() if marker in b.text]
    assert len(found) == 1, f"{marker!r} must pick exactly one block, found {[b.where for b in found]}"
    return found[0].text


def markers_run_here() -> set[str]:
    """The markers this file passes to `example`: the blocks its tests run or check."""
    tree = ast.parse(Path(__file__).read_text())
    return {node.args[0].value for node in ast.walk(tree)
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "example"
            and node.args and isinstance(node.args[0], ast.Constant)}


def test_every_command_block_is_run_or_listed():
    markers = markers_run_here() | set(SHOWN_NOT_RUN)
    for block in command_blocks():
        claims = [m for m in markers if m in block.text]
        assert len(claims) == 1, f"{block.where}: claimed by {claims}; run it in a test here or list it in SHOWN_NOT_RUN"
    for marker in markers:
        example(marker)  # each marker still names exactly one block


def pins(command: str) -> list[str]:
    return re.findall(r"torch(?:vision)?==[\d.]+", command)


def test_setup_commands_are_the_ci_ones():
    ci = (ROOT / ".ci" / "run").read_text()
    test_command = example("HF_HUB_OFFLINE=1 python -m pytest -q").strip()
    assert test_command in ci, ".ci/run must run the README's test command verbatim"
    install = example("pip install -e . && xthink selftest")
    assert pins(install) == pins(test_command), "both set-up commands install the same torch"
    vllm = example('pip install -q -e ".[vllm]"').strip()
    assert vllm in ci, ".ci/run must build its vLLM environment with docs/backends.md's vLLM line verbatim"


ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A fresh folder where the README's offline CLI block (selftest --keep ./tiny, ask) has run."""
    folder = tmp_path_factory.mktemp("docs")
    cli = example("xthink selftest --keep ./tiny")
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", cli], cwd=folder, env=ENV, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert '"mode": "extract"' in proc.stdout and (folder / "tiny" / "trace.json").exists()
    assert "selftest passed" in proc.stdout
    return folder


def test_offline_cli_and_python_examples(workdir):
    tmp_path, env = workdir, ENV
    python_block = example("agent.stream(")
    proc = subprocess.run([sys.executable, "-c", python_block], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[1].startswith("reason iterate") and lines[-1] == "Result"
    trial = example("--bench vmcbench=./tiny/data/vmcbench.parquet")
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", trial], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    table = json.loads(proc.stdout[proc.stdout.rindex("\n[\n") + 1:])
    assert [row["regime"] for row in table] == ["iterative", "extract", "caption", "direct"]
    assert all(row["n"] == 24 for row in table)
    shards = example("--shard 1/2")
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", shards], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (merged,) = json.loads(proc.stdout[proc.stdout.rindex("\n[\n") + 1:])
    assert merged["regime"] == "direct" and merged["n"] == 18, "both shards in one row: all 18 MMStar items"


def test_high_resolution_example(workdir):
    block = example("write_high_res")
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=workdir, env=ENV,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rows = json.loads(proc.stdout[proc.stdout.rindex("\n[\n") + 1:])
    assert [(r["table"], r["regime"]) for r in rows] == [("high-res", "iterative"), ("high-res", "iterative+look"),
                                                         ("high-res", "caption")]
    assert all(r["n"] == 2 + 2 * 4 * 2 for r in rows), "2 V* items, 2 HR questions x 4 cycles per resolution"


def test_view_example(workdir):
    block = example("xthink view ./tiny/demo_trace.json")
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=workdir, env=ENV, capture_output=True,
                          text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    for page in ("demo.html", "run.html", "view-run/report/index.html", "trace.html"):
        assert (workdir / "tiny" / page).stat().st_size > 10_000, page
    exported = sorted(p.name for p in (workdir / "tiny" / "view-run" / "export" / "lmms-eval").iterdir())
    assert exported == ["view-run_samples_mmstar_direct.jsonl", "view-run_samples_mmstar_iterative.jsonl"]


def _wait_for(url: str, proc, seconds: float = 300) -> None:
    import time

    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the server exited early"
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not come up")


def _background(block: str, cwd: Path, port: int):
    import socket

    with socket.socket() as probe:  # the page names the port: fail clearly if something else holds it
        assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} is already in use on this machine"
    return subprocess.Popen(["bash", "-euo", "pipefail", "-c", block], cwd=cwd, env=ENV, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _stop(proc) -> None:
    import signal

    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)


def _python(block: str, cwd: Path) -> str:
    proc = subprocess.run([sys.executable, "-c", block], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_cache_example(workdir):
    """docs/deploying.md's `xthink cache` lines: show, then prune a store that holds an image."""
    from PIL import Image

    store = workdir / "tiny" / "cache" / "images"
    store.mkdir(parents=True, exist_ok=True)
    digest = "ab" * 32
    Image.new("RGB", (8, 8), "red").save(store / f"{digest}.png")
    (store / "notes.txt").write_text("not the store's")
    os.utime(store / f"{digest}.png", (0, 0))  # unused for decades: past the age bound
    block = example("xthink cache prune")
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=workdir, env=ENV, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "1 image" in proc.stdout and "removed 1 image" in proc.stdout, proc.stdout
    assert not (store / f"{digest}.png").exists() and (store / "notes.txt").exists()


def test_lmms_eval_example(workdir):
    """The lmms-eval block: lmms-eval's own CLI with our model, every regime; its CLI exits 0 even when a run
    failed, so the results files are the check."""
    block = example("write_local_tasks")
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=workdir, env=ENV, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    for mode in ("iterative", "extract", "caption", "direct"):
        (results,) = (workdir / "tiny" / "lmms-run" / mode).rglob("*_results.json")
        assert {"mmstar_local", "vstar_local"} <= set(json.loads(results.read_text())["results"])
    assert (workdir / "tiny" / "lmms-trace.html").exists()


def test_phoenix_example(workdir):
    """The OpenTelemetry block: Phoenix on the port its page names, then an ask whose spans Phoenix stores."""
    import psutil

    block = example("phoenix serve")
    env = {**ENV, "PHOENIX_WORKING_DIR": str(workdir / "phoenix"), "PHOENIX_TELEMETRY_ENABLED": "false",
           "PATH": path_with_phoenix(ENV["PATH"])}
    try:
        proc = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=workdir, env=env, capture_output=True,
                              text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        from phoenix.client import Client

        deadline, spans = time.monotonic() + 60, []
        while not spans and time.monotonic() < deadline:
            try:
                spans = Client(base_url="http://127.0.0.1:6006").spans.get_spans(project_identifier="extract-think")
            except Exception:  # noqa: BLE001 - 404 until the project's first span is stored
                time.sleep(1)
        assert any(s["name"] == "iterative run" for s in spans), [s["name"] for s in spans]
    finally:  # the block leaves Phoenix running in the background, as a user would
        for p in psutil.process_iter(["cmdline"]):
            if "serve" in (p.info["cmdline"] or []) and any("phoenix" in a for a in p.info["cmdline"] or []):
                p.terminate()


def test_assistant_python_and_chat_examples(workdir):
    out = _python(example("agent.chat("), workdir)
    assert len(out.strip().splitlines()) >= 3
    chat = example("/trace ./tiny/chat_trace.json")
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", chat], cwd=workdir, env=ENV, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.stdout.count("assistant>") == 2 and (workdir / "tiny" / "chat_trace.json").exists()
    page = (workdir / "tiny" / "thread.html").read_text()
    assert "What colour is the square?" in page and "And its shape?" in page, "both turns of the thread"


def test_serve_example_with_the_openai_client(workdir):
    server = _background(example("xthink serve --host"), workdir, 8000)
    try:
        _wait_for("http://127.0.0.1:8000/v1/models", server)
        out = _python(example("from openai import OpenAI"), workdir)
        assert re.search(r" \d+\n\d+\n", out), out  # "<answer> <total tokens>", then the extraction calls
    finally:
        _stop(server)


def test_langgraph_server_example(workdir):
    root = ROOT
    for name in ("langgraph.json", "pyproject.toml", "agent", "tools", "graphs", "evals"):
        if not (workdir / name).exists():
            (workdir / name).symlink_to(root / name)  # "from the repository folder", with ./tiny beside it
    server = _background(example("langgraph dev"), workdir, 8123)
    try:
        _wait_for("http://127.0.0.1:8123/ok", server)
        out = _python(example("from langgraph_sdk import get_client"), workdir)
        assert re.search(r" \d+\n", out) and re.search(r"^updates \['ingest'\]$", out, re.MULTILINE), out
        out = _python(example("ServerChat("), workdir)
        assert len(out.strip().splitlines()) >= 2, out
    finally:
        _stop(server)


def test_train_your_own_perceiver_example(workdir):
    """The VET walk-through runs as written: data (broken items recorded), training, ask, eval, report."""
    block = example("xthink vet-data --source ./tiny/")
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=workdir, env=ENV, capture_output=True,
                          text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "8 pairs" in proc.stdout and "3 failed" in proc.stdout
    assert (workdir / "tiny" / "vet-perceiver" / "model.safetensors").exists()
    assert '"mode": "extract"' in proc.stdout
    (row,) = json.loads(proc.stdout[proc.stdout.rindex("\n[\n") + 1:])
    assert row["regime"] == "extract" and row["n"] == 6
