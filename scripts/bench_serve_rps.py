"""Requests per second of `xthink serve`: one client against many, the same tiny models, CPU.

Usage: python scripts/bench_serve_rps.py [--clients 1 24] [--requests 192] [--slots 16] [--model extract-think]
                                         [--stream] [--device cpu]
Starts `xthink serve --max-concurrent SLOTS` with the tiny models (random weights, built in a temp folder), warms
it up, then for each client count sends REQUESTS chat completions, each client one after the other, and prints
requests/s, the speed-up over the first count and the server's CPU time per request (on a shared machine the
CPU time is the steadier figure: it does not count the time other programs held the cores). Every request has
its own question and its own image (a different drawing), so no run borrows another's perceiver cache more than
a real client would. The request bodies are built before the clock starts: real clients run elsewhere, and
here they share the server's cores.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench_serve_load import SETTINGS, start_server

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def body(index: int, model: str, stream: bool) -> dict:
    """Request `index`: a red square at its own place on a white image, and a question naming it."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (96, 64), "white")
    x, y = index % 48, (index // 48) % 24
    ImageDraw.Draw(img).rectangle((x, y, x + 32, y + 32), fill="red")
    buf = io.BytesIO()
    img.save(buf, "PNG")
    url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    content = [{"type": "text", "text": f"Request {index}: what colour is the square?"},
               {"type": "image_url", "image_url": {"url": url}}]  # fmt: skip
    return {"model": model, "stream": stream, **SETTINGS, "messages": [{"role": "user", "content": content}]}


def send(client, url: str, payload: bytes, stream: bool) -> None:
    headers = {"content-type": "application/json"}
    if not stream:
        response = client.post(url + "/v1/chat/completions", content=payload, headers=headers)
        response.raise_for_status()
        return
    with client.stream("POST", url + "/v1/chat/completions", content=payload, headers=headers) as response:
        response.raise_for_status()
        if not any(line == "data: [DONE]" for line in response.iter_lines()):
            raise RuntimeError("a stream ended without [DONE]")


def rate(url: str, clients: int, requests: int, first: int, model: str, stream: bool) -> float:
    """Requests/s of `requests` requests shared by `clients` clients, each sending its share in turn."""
    import httpx

    payloads = [json.dumps(body(first + i, model, stream)).encode() for i in range(requests)]

    def client_run(k: int) -> None:
        with httpx.Client(timeout=600) as client:
            for i in range(k, requests, clients):
                send(client, url, payloads[i], stream)

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client_run, range(clients)))
    return requests / (time.perf_counter() - started)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 24])
    parser.add_argument("--requests", type=int, default=192, help="requests per client count")
    parser.add_argument("--slots", type=int, default=16)
    parser.add_argument("--model", default="extract-think", help="served model id: the regime (GET /v1/models)")
    parser.add_argument("--stream", action="store_true", help="streamed requests (SSE) instead of plain ones")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_server(Path(tmp), args.slots, args.device, 2048)
        try:
            rate(url, max(args.clients), max(args.clients), 10**6, args.model, args.stream)  # warm up
            rates = []
            for n, clients in enumerate(args.clients):
                cpu = cpu_seconds(proc.pid)
                rates.append(rate(url, clients, args.requests, n * args.requests, args.model, args.stream))
                cpu = (cpu_seconds(proc.pid) - cpu) / args.requests
                print(f"{args.model} {'streamed' if args.stream else 'plain'}, {clients:>3} clients, --max-concurrent "
                      f"{args.slots}: {args.requests} requests at {rates[-1]:6.2f} requests/s "
                      f"({rates[-1] / rates[0]:.1f}x); server CPU {1000 * cpu:.0f} ms/request", flush=True)  # fmt: skip
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
