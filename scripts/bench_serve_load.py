"""Load check of `xthink serve`: storms of concurrent clients, some of them hanging up mid-stream.

Usage: python scripts/bench_serve_load.py [--clients 24] [--slots 16] [--storms 2] [--rounds 2] [--device cpu]
                                         [--cache-mb MB]
Starts `xthink serve` with the tiny models (random weights, built in a temp folder) and --max-concurrent SLOTS,
then runs STORMS storms. In a storm every client sends ROUNDS requests one after the other, all clients at once:
a third plain, a third streamed, a third streamed and hung up after the first chunk of thinking. After each
storm it prints the requests served (a complete answer), refused with 429 (and whether Retry-After was set),
5xx answers, dropped connections and the server's resident memory.
Targets: >= 95% of the requests not hung up served, no 5xx, no drops, memory flat from storm to storm once the KV caches are full (each role's LRU grows up to --cache-mb, 2048 by default;
--cache-mb 0 shows the rest of the memory alone).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {"greedy": True, "max_extractions": 1, "perceiver_max_new_tokens": 16, "thinking_budget": 24,
            "max_tokens": 48}  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(folder: Path, slots: int, device: str, cache_mb: float) -> tuple[subprocess.Popen, str]:
    import httpx

    from tools.tiny.llava import build_llava_onevision
    from tools.tiny.models import build_reasoner

    reasoner, perceiver = build_reasoner(folder / "reasoner"), build_llava_onevision(folder / "perceiver")
    port = free_port()
    env = {**os.environ, "XTHINK_IMAGE_STORE": str(folder / "store"), "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "graphs.cli.app", "serve", "--port", str(port), "--reasoner", str(reasoner),
           "--perceiver", str(perceiver), "--device", device, "--max-concurrent", str(slots),
           "--reasoner-cache-mb", str(cache_mb), "--perceiver-cache-mb", str(cache_mb)]  # fmt: skip
    with open(folder / "server.log", "w") as log:  # the child keeps its own handle
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(url + "/v1/models", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
        if proc.poll() is not None:
            break
    raise RuntimeError(f"xthink serve did not start; see {folder / 'server.log'}")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def payload(question: str) -> dict:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (96, 64), "white")
    ImageDraw.Draw(img).rectangle((8, 8, 40, 40), fill="red")
    buf = io.BytesIO()
    img.save(buf, "PNG")
    url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    return {"model": "extract-think", **SETTINGS,
            "messages": [{"role": "user", "content": [{"type": "text", "text": question},
                                                      {"type": "image_url", "image_url": {"url": url}}]}]}  # fmt: skip


def one_request(client, url: str, kind: str, question: str) -> str:
    """The outcome of one request: served, hung_up, 429, 429_no_retry_after, 5xx, 4xx, dropped, broken."""
    import httpx

    body = payload(question)
    try:
        if kind == "plain":
            response = client.post(url + "/v1/chat/completions", json=body)
            if response.status_code == 200:
                return "served" if response.json()["choices"][0]["message"] is not None else "broken"
            return status_outcome(response)
        with client.stream("POST", url + "/v1/chat/completions", json={**body, "stream": True}) as response:
            if response.status_code != 200:
                response.read()
                return status_outcome(response)
            lines = response.iter_lines()
            for line in lines:
                if kind == "hangup" and "reasoning_content" in line:
                    return "hung_up"  # leaving the block closes the connection mid-stream
                if line.startswith("data: {") and '"error"' in line[:20]:
                    return "5xx" if json.loads(line[6:])["error"]["type"] == "server_error" else "4xx"
                if line == "data: [DONE]":
                    return "served"
            return "dropped"
    except httpx.TransportError:
        return "dropped"


def status_outcome(response) -> str:
    if response.status_code == 429:
        return "429" if response.headers.get("retry-after") else "429_no_retry_after"
    return "5xx" if response.status_code >= 500 else "4xx"


def storm(url: str, clients: int, rounds: int, number: int) -> Counter:
    import httpx

    kinds = ["plain", "stream", "hangup"]

    def client_run(i: int) -> list[str]:
        with httpx.Client(timeout=300) as client:
            return [one_request(client, url, kinds[i % 3], f"Storm {number}, client {i}, round {r}: colour?")
                    for r in range(rounds)]  # fmt: skip

    with ThreadPoolExecutor(clients) as pool:
        return Counter(outcome for outcomes in pool.map(client_run, range(clients)) for outcome in outcomes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=24)
    parser.add_argument("--slots", type=int, default=16)
    parser.add_argument("--storms", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cache-mb", type=float, default=2048, help="each role's KV cache (0: off)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_server(Path(tmp), args.slots, args.device, args.cache_mb)
        try:
            print(f"xthink serve, tiny models, --max-concurrent {args.slots}; {args.clients} clients x {args.rounds} "
                  f"requests per storm; KV caches {args.cache_mb:g} MB per role; RSS at start {rss_mb(proc.pid):.0f} MB")  # fmt: skip
            for number in range(1, args.storms + 1):
                started = time.perf_counter()
                counts = storm(url, args.clients, args.rounds, number)
                time.sleep(2)  # hung-up runs end; then memory is read
                report(number, counts, time.perf_counter() - started, rss_mb(proc.pid))
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def report(number: int, counts: Counter, seconds: float, rss: float) -> None:
    wanted = sum(counts.values()) - counts["hung_up"]
    served = counts["served"]
    print(f"storm {number}: {served}/{wanted} served ({100 * served / max(wanted, 1):.1f}%), "
          f"429 {counts['429']} (without Retry-After {counts['429_no_retry_after']}), 5xx {counts['5xx']}, "
          f"4xx {counts['4xx']}, dropped {counts['dropped']}, broken {counts['broken']}, hung up {counts['hung_up']}; "
          f"{seconds:.1f} s; server RSS {rss:.0f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
