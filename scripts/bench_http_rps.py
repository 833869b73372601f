"""Requests per second through the HTTP backend against `transformers serve`, tiny models, CPU.

Usage: python scripts/bench_http_rps.py [--requests N] [--tokens T]
Starts `transformers serve` for the tiny reasoner and the tiny LLaVA-OneVision perceiver on loopback,
then sends N reasoner requests and N perceiver requests at concurrency 1 and 8 and prints requests/s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(model: Path) -> tuple[subprocess.Popen, str]:
    import httpx

    port = free_port()
    exe = shutil.which("transformers") or str(Path(sys.executable).parent / "transformers")
    proc = subprocess.Popen([exe, "serve", str(model), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    for _ in range(240):
        try:
            if httpx.get(url + "/models", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.5)
    raise RuntimeError("transformers serve did not start")


def rate(call, requests: int, concurrency: int) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(lambda _: call(), range(requests)))
    return requests / (time.perf_counter() - started)


def main() -> None:
    from PIL import Image

    from tools.backends.base import Message, PerceiveRequest, ReasonRequest, SamplingSettings
    from tools.backends.http_backend import HttpPerceiver, HttpReasoner
    from tools.tiny.llava import build_llava_onevision
    from tools.tiny.models import build_reasoner

    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        servers = [serve(build_reasoner(Path(tmp) / "r")), serve(build_llava_onevision(Path(tmp) / "p"))]
        try:
            reasoner, perceiver = HttpReasoner(servers[0][1]), HttpPerceiver(servers[1][1])
            settings = SamplingSettings(greedy=True, max_new_tokens=args.tokens, thinking=False)
            reason = ReasonRequest((Message("user", "What colour is the square?"),), settings)
            look = PerceiveRequest((Image.new("RGB", (64, 48), "red"),), "Describe the image.",
                                   max_new_tokens=args.tokens)
            reasoner.reason([reason]), perceiver.perceive([look])  # warm up
            for concurrency in (1, 8):
                r = rate(lambda: reasoner.reason([reason]), args.requests, concurrency)
                p = rate(lambda: perceiver.perceive([look]), args.requests, concurrency)
                print(f"concurrency {concurrency}: reasoner {r:.1f} req/s, perceiver {p:.1f} req/s "
                      f"({args.requests} requests, {args.tokens} new tokens each)")
        finally:
            for proc, _ in servers:
                proc.terminate()
                proc.wait()


if __name__ == "__main__":
    main()
