"""A pooled, bounded, retrying JSON client over one or more replicas of an OpenAI-compatible server.

- One `httpx.Client` (connection pool) per base URL, shared by every thread of the process.
- At most `concurrency` requests in flight per model, whatever the number of callers (the CLI sets it from
  `--concurrency`), and at most `max_in_flight` per base URL (default: `concurrency`), so one replica is
  never sent more than it can batch.
- Requests are spread round-robin over the base URLs. A replica that refuses or drops a connection is
  skipped for `down_seconds` and the request fails over to the next one at once.
- 429 and 5xx are retried with exponential backoff and jitter, honouring `Retry-After`; connection errors
  are retried too; other 4xx and read time-outs are not (a slow server is not helped by more load).
- Every error names the endpoint and what went wrong. The API key comes from XTHINK_API_KEY or
  OPENAI_API_KEY.
"""

from __future__ import annotations

from collections.abc import Callable

import json
import os
import random
import threading
import time
from dataclasses import dataclass

import httpx

RETRY_STATUS = {429, 500, 502, 503, 504}


class EndpointError(RuntimeError):
    """A server call failed; the message names the endpoint and the reason."""

    def __init__(self, url: str, reason: str, retryable: bool = False, status: int | None = None):
        super().__init__(f"{url}: {reason}")
        self.url, self.reason, self.retryable, self.status = url, reason, retryable, status


@dataclass(frozen=True)
class HttpSettings:
    connect_timeout: float = 10.0
    read_timeout: float = 600.0
    retries: int = 4
    backoff: float = 0.5
    max_backoff: float = 30.0
    concurrency: int = 8
    max_in_flight: int | None = None  # per base URL; None: the same as `concurrency`

    @property
    def per_endpoint(self) -> int:
        return self.max_in_flight or self.concurrency
    down_seconds: float = 30.0


def api_key() -> str | None:
    return os.environ.get("XTHINK_API_KEY") or os.environ.get("OPENAI_API_KEY")


class Endpoints:
    def __init__(self, urls: tuple[str, ...], settings: HttpSettings = HttpSettings()):
        self.urls = list(urls)
        self.settings = settings
        headers = {"Authorization": f"Bearer {api_key()}"} if api_key() else {}
        timeout = httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout)
        per_url = settings.per_endpoint
        limits = httpx.Limits(max_connections=per_url, max_keepalive_connections=per_url)
        self._clients = {u: httpx.Client(timeout=timeout, limits=limits, headers=headers) for u in self.urls}
        self._slots = threading.BoundedSemaphore(settings.concurrency)
        self._url_slots = {u: threading.BoundedSemaphore(per_url) for u in self.urls}
        self.peak_in_flight = 0  # the most requests seen in flight at once, for tests and benchmarks
        self._in_flight = 0
        self._lock = threading.Lock()
        self._next = 0
        self._down_until: dict[str, float] = {}

    def close(self) -> None:
        for client in self._clients.values():
            client.close()

    def _pick(self) -> list[str]:
        """All URLs, starting from the next in round-robin order, healthy ones first."""
        with self._lock:
            start = self._next
            self._next = (self._next + 1) % len(self.urls)
        order = self.urls[start:] + self.urls[:start]
        now = time.monotonic()
        return [u for u in order if self._down_until.get(u, 0) <= now] + [
            u for u in order if self._down_until.get(u, 0) > now
        ]

    def _mark_down(self, url: str) -> None:
        with self._lock:
            self._down_until[url] = time.monotonic() + self.settings.down_seconds

    def get(self, path: str) -> dict:
        return self.call("GET", path)

    def post(self, path: str, body: dict, on_chunk: Callable[[dict], None] | None = None) -> dict:
        """POST a JSON body; with `on_chunk` the body asks for a stream and each SSE chunk is handed over as it
        arrives, and the chunks put together come back (tools/backends/openai_responses.py: assemble_chunks)."""
        return self.call("POST", path, body, on_chunk)

    def call(self, method: str, path: str, body: dict | None = None,
             on_chunk: Callable[[dict], None] | None = None) -> dict:  # fmt: skip
        with self._slots:
            last: EndpointError | None = None
            for attempt in range(self.settings.retries + 1):
                order = self._pick()
                for i, url in enumerate(order):
                    try:
                        return self._once(url, method, path, body, on_chunk)
                    except EndpointError as exc:
                        last = exc
                        if not exc.retryable:
                            raise
                        if "connection" not in exc.reason or i == len(order) - 1:
                            break  # 429/5xx: back off before the next attempt
                if attempt < self.settings.retries:
                    time.sleep(self._delay(attempt, last))
            assert last is not None
            raise EndpointError(last.url, f"{last.reason} (gave up after {self.settings.retries + 1} attempts)")

    def _delay(self, attempt: int, error: EndpointError | None) -> float:
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            return min(retry_after, self.settings.max_backoff)
        base = min(self.settings.backoff * 2**attempt, self.settings.max_backoff)
        return base * (0.5 + random.random() / 2)

    def _once(self, url: str, method: str, path: str, body: dict | None, on_chunk=None) -> dict:
        with self._url_slots[url]:
            with self._lock:
                self._in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
            try:
                if on_chunk is not None:
                    return self._stream(url, path, body, on_chunk)
                return self._send(url, method, path, body)
            finally:
                with self._lock:
                    self._in_flight -= 1

    def _send(self, url: str, method: str, path: str, body: dict | None) -> dict:
        target = url + path
        try:
            response = self._clients[url].request(method, target, json=body)
        except httpx.ConnectTimeout:
            self._mark_down(url)
            raise EndpointError(url, "connection timed out", retryable=True) from None
        except httpx.ConnectError as exc:
            self._mark_down(url)
            raise EndpointError(url, f"connection refused or unreachable ({exc})", retryable=True) from None
        except httpx.ReadTimeout:
            raise EndpointError(url, f"timed out after {self.settings.read_timeout:g}s waiting for a response") from None
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            self._mark_down(url)
            raise EndpointError(url, f"connection dropped ({exc})", retryable=True) from None
        return self._decode(url, response)

    def _stream(self, url: str, path: str, body: dict | None, on_chunk) -> dict:
        """One streamed request. Errors before the first chunk are retried like any request; after it they are
        not (the caller has already shown part of the answer)."""
        from tools.backends.openai_responses import assemble_chunks

        chunks: list[dict] = []
        try:
            with self._clients[url].stream("POST", url + path, json=body) as response:
                if response.status_code >= 400:
                    response.read()
                    self._decode(url, response)
                for line in response.iter_lines():
                    chunk = _sse_data(line)
                    if chunk is not None:
                        chunks.append(chunk)
                        on_chunk(chunk)
        except EndpointError as exc:
            if chunks:
                exc.retryable = False
            raise
        except httpx.HTTPError as exc:
            if not chunks and isinstance(exc, httpx.ConnectError):
                self._mark_down(url)
            raise EndpointError(url, f"stream broke ({type(exc).__name__})", retryable=not chunks) from None
        return assemble_chunks(chunks)

    @staticmethod
    def _decode(url: str, response: httpx.Response) -> dict:
        status = response.status_code
        if status in RETRY_STATUS:
            error = EndpointError(url, f"HTTP {status}: {_snippet(response.text)}", retryable=True, status=status)
            error.retry_after = _retry_after(response)  # type: ignore[attr-defined]
            raise error
        if status >= 400:
            raise EndpointError(url, f"HTTP {status}: {_snippet(response.text)}", status=status)
        try:
            return response.json()
        except (json.JSONDecodeError, ValueError):
            raise EndpointError(url, f"returned invalid JSON: {_snippet(response.text)}") from None


def _sse_data(line: str) -> dict | None:
    """The JSON of one `data:` line of a server-sent event stream (None for others and `[DONE]`)."""
    if not line.startswith("data:"):
        return None
    data = line[5:].strip()
    if not data or data == "[DONE]":
        return None
    try:
        return json.loads(data)
    except json.JSONDecodeError:
        return None


def _snippet(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None
