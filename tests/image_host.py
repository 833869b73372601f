"""A real HTTP server on 127.0.0.1 that answers image fetches by path, for the URL-rule tests.

Each server gets its own routes: path -> (status, headers, body) or (status, headers, body, delay seconds).
`/drip` sends a byte every 0.4 s (never a read timeout, but over a whole-fetch deadline). `seen` keeps the
Accept-Encoding of every request.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ImageHost(ThreadingHTTPServer):
    def __init__(self, routes: dict | None = None):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes: dict = dict(routes or {})
        self.seen: list = []
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def handle_error(self, request, client_address):
        pass  # clients hang up on purpose (size caps, timeouts, refused encodings)


class _Handler(BaseHTTPRequestHandler):
    server: ImageHost

    def do_GET(self):  # noqa: N802
        self.server.seen.append(self.headers.get("Accept-Encoding"))
        if self.path == "/drip":
            self.send_response(200)
            self.end_headers()
            for _ in range(20):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.4)
            return
        status, headers, body, *delay = self.server.routes.get(self.path, (404, {}, b""))
        time.sleep(delay[0] if delay else 0)
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass
