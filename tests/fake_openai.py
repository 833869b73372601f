"""A real local HTTP server of the tests' own that speaks just enough OpenAI chat-completions to misbehave.

Each instance binds 127.0.0.1 on a free port and answers from a script of behaviours; every request is
recorded. Behaviours: "ok", "500", "429" (Retry-After), "hang", "drop", "badjson", "400", and "think-length"
(a reply cut at `max_tokens` inside its thinking, as a reasoning parser returns it). `listed` models are the
ones `/models` names (all it serves unless given, as `transformers serve` 5.20 lists its hub cache instead).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeOpenAI:
    def __init__(self, models=("fake-model",), answer="Answer: A", script=(), retry_after="0.2", hang=3.0,
                 owned_by="fake", listed=None):  # fmt: skip
        self.models, self.answer, self.retry_after, self.hang = list(models), answer, retry_after, hang
        self.listed = self.models if listed is None else list(listed)
        self.owned_by = owned_by
        self.in_flight = self.peak_in_flight = 0
        self.script = list(script)
        self.requests: list[tuple[str, str, dict | None, float]] = []
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def next_behaviour(self) -> str:
        with self._lock:
            return self.script.pop(0) if self.script else "ok"

    def chat_paths(self) -> list[str]:
        return [p for _, p, _, _ in self.requests if p.endswith("/chat/completions")]

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, payload, headers=()):
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers:
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                fake.requests.append(("GET", self.path, None, time.monotonic()))
                if self.path.endswith("/models"):
                    self._send(200, {"object": "list", "data": [{"id": m, "object": "model", "owned_by": fake.owned_by}
                                                             for m in fake.listed]})
                else:
                    self._send(404, {"error": "not found"})

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                fake.requests.append(("POST", self.path, body, time.monotonic()))
                with fake._lock:
                    fake.in_flight += 1
                    fake.peak_in_flight = max(fake.peak_in_flight, fake.in_flight)
                try:
                    self._answer(body, fake.next_behaviour())
                finally:
                    with fake._lock:
                        fake.in_flight -= 1

            def _answer(self, body, behaviour):
                if behaviour == "500":
                    return self._send(500, {"error": "internal"})
                if behaviour == "429":
                    return self._send(429, {"error": "slow down"}, [("Retry-After", fake.retry_after)])
                if behaviour == "400":
                    return self._send(400, {"error": {"message": "bad request: context too long"}})
                if behaviour == "hang":
                    time.sleep(fake.hang)
                if behaviour == "drop":
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.connection.close()
                    return None
                if behaviour == "badjson":
                    return self._send(200, b"{this is not json")
                if behaviour == "think-length":
                    tokens = body.get("max_tokens", 16)
                    return self._send(200, {
                        "id": "x", "object": "chat.completion", "model": body["model"],
                        "choices": [{"index": 0, "finish_reason": "length",
                                     "message": {"role": "assistant", "content": None,
                                                 "reasoning": "thinking " * tokens}}],
                        "usage": {"prompt_tokens": 7, "completion_tokens": tokens, "total_tokens": 7 + tokens},
                    })
                if body.get("model") not in fake.models:
                    return self._send(404, {"error": {"message": f"model {body.get('model')} not found"}})
                self._send(200, {
                    "id": "x", "object": "chat.completion", "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": fake.answer}}],
                    "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
                })

        return Handler


def closed_port_url() -> str:
    """A URL on loopback where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
