"""An OpenAI-compatible endpoint for the whole agent: `POST /v1/chat/completions`, `GET /v1/models`.

Web stack: FastAPI on uvicorn. Requests are pydantic models (unknown fields ignored, as OpenAI clients send
many), the SSE stream is a plain StreamingResponse, and the same stack already runs `transformers serve`
and vLLM's server, so it adds nothing new to install. Each request is stateless (OpenAI clients send the
whole conversation) and runs the `assistant` graph once, in a worker thread; the models are shared, so
concurrent requests meet in the backends' batches.

A public endpoint needs limits: body size, images per request, pixels per image, concurrent runs, a time limit
per request, an API key compared in constant time. Every error is an OpenAI-style JSON body with its 4xx/5xx
code; nothing a client sends can stop the server.

Admission: `max_concurrent` runs at once; a request that finds them all busy waits in a FIFO queue of at most
`max_queue` requests for up to `queue_timeout_s`, then gets 429 with Retry-After (at once when the queue is
full), so a burst a little over capacity is served rather than refused. A run holds its slot until it ends;
a client that hangs up (streaming or not) or a run past `timeout_s` cancels it: its model calls stop at the
next token (tools/backends/cancel.py) and the slot frees within a second or two.

What a client sees names models by the served id it asked for, never the operator's model strings (folders,
internal URLs, credentials) or server folders; the details of a failure go to the server log.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, StrictBool, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from agent.assistant_turns import content_text, image_source
from agent.settings import AskOptions, InputError, SettingCaps, SettingError, validated
from agent.trace import ExtractStep, ReasonStep, Result
from graphs import assistant
from graphs.conversation import ChatTurn, Token, TurnSettings, run_turn
from tools.images.inputs import ImageInputError, ImagePolicy, acquire

MODELS = {"extract-think": "iterative", "extract-think-extract": "extract", "extract-think-caption": "caption",
          "extract-think-direct": "direct"}  # fmt: skip
log = logging.getLogger("xthink.serve")
ASK_FIELDS = ("greedy", "max_new_tokens", "max_extractions", "perceiver_max_new_tokens", "thinking",
              "thinking_budget", "no_wait", "first_look", "temperature", "top_p", "seed")  # fmt: skip


@dataclass(frozen=True)
class ServeLimits:
    max_body_bytes: int = 32 * 1024 * 1024
    max_images: int = 8
    max_pixels: int = 25_000_000
    max_concurrent: int = 4
    timeout_s: float = 600.0
    max_queue: int = 16  # requests waiting for a slot (beyond them: 429 at once)
    queue_timeout_s: float = 30.0  # the longest a request waits for a slot (then: 429)
    retry_after_s: int = 2  # the Retry-After of a 429
    # Per-request compute a client may ask for (a larger value is a 400 naming the cap); the same caps as a
    # LangGraph run's context. `xthink serve` passes SettingCaps.from_env() (the XTHINK_*_CAP variables).
    caps: SettingCaps = SettingCaps()


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", param: str | None = None,
                 headers: dict | None = None):  # fmt: skip
        super().__init__(message)
        self.status, self.message, self.kind, self.param, self.headers = status, message, kind, param, headers


class ChatRequest(BaseModel):
    """The fields we read; OpenAI's others (n=1, stop, tools, ...) are accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[dict]
    stream: StrictBool = False  # "yes" or 1 is no flag
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None


def error_body(status: int, message: str, kind: str, param: str | None = None) -> dict:
    code = {401: "invalid_api_key", 404: "model_not_found", 413: "request_too_large", 429: "rate_limit_exceeded",
            504: "timeout"}.get(status)  # fmt: skip
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def create_app(agent, limits: ServeLimits = ServeLimits(), api_key: str | None = None) -> FastAPI:
    app = FastAPI(title="extract-think", docs_url=None, redoc_url=None)
    admission = Admission(limits)
    policy = ImagePolicy.from_env(max_pixels=limits.max_pixels)
    redact = Redactor.for_server(agent, policy)

    @app.exception_handler(ApiError)
    async def _api_error(_, exc: ApiError):
        return JSONResponse(error_body(exc.status, redact(exc.message), exc.kind, exc.param), exc.status, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_, exc: StarletteHTTPException):
        return JSONResponse(error_body(exc.status_code, str(exc.detail), "invalid_request_error"), exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_, exc: RequestValidationError):
        return JSONResponse(error_body(400, f"invalid request: {exc.errors()[0].get('msg')}", "invalid_request_error"),
                            400)  # fmt: skip

    @app.exception_handler(Exception)
    async def _internal(_, exc: Exception):
        log.error("internal error", exc_info=exc)
        return JSONResponse(error_body(500, f"internal error ({type(exc).__name__})", "server_error"), 500)

    app.add_middleware(AuthAndSize, api_key=api_key, max_body_bytes=limits.max_body_bytes)

    @app.get("/v1/models")
    async def models():
        now = int(time.time())
        return {"object": "list", "data": [{"id": name, "object": "model", "created": now, "owned_by": "extract-think"}
                                           for name in MODELS]}  # fmt: skip

    @app.post("/v1/chat/completions")
    async def completions(request: Request):
        body = await _read_body(request, limits.max_body_bytes)
        chat = _parse(body)
        mode = MODELS.get(chat.model)
        if mode is None:
            raise ApiError(404, f"model '{chat.model}' does not exist; GET /v1/models lists "
                           f"{', '.join(MODELS)}", param="model")  # fmt: skip
        settings = ask_options(chat, limits)
        hangup = Hangup(request)
        try:
            await admission.enter(hangup.gone)
            turn = TurnSettings(mode, settings, cancel=hangup.cancel)
            # Images are read inside the run (its slot, its deadline); a bad one still answers 4xx before any output.
            run = BackgroundRun(_events(agent, chat.messages, policy, limits.max_images, turn, admission.release_soon),
                                limits.timeout_s, hangup.cancel)  # fmt: skip
            await run.ready()
            rid, model = f"chatcmpl-{uuid.uuid4().hex[:24]}", chat.model
            if chat.stream:
                stream, hangup = _until_done(sse(run, rid, model, redact), run, hangup), None  # the stream owns it
                return StreamingResponse(stream, media_type="text/event-stream")
            return completion(await run.turn(), rid, model, redact)
        finally:
            if hangup is not None:
                hangup.stop()

    return app


class AuthAndSize:
    """The API key and the declared body size, checked before any route runs (a plain ASGI middleware, so
    the routes see the client's own `receive` and can tell when it hangs up)."""

    def __init__(self, app: ASGIApp, api_key: str | None, max_body_bytes: int):
        self.app, self.api_key, self.max_body_bytes = app, api_key, max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            request = Request(scope)
            refusal = None
            if self.api_key and not _authorized(request, self.api_key):
                refusal = (401, "invalid or missing API key (Authorization: Bearer KEY)")
            declared = request.headers.get("content-length")
            if refusal is None and declared and declared.isdigit() and int(declared) > self.max_body_bytes:
                refusal = (413, f"request body over {self.max_body_bytes:,} bytes")
            if refusal is not None:
                status, message = refusal
                await JSONResponse(error_body(status, message, "invalid_request_error"), status)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class Admission:
    """Run slots, and a bounded FIFO queue of requests waiting for one (see the module docstring).

    Lives on the event loop; a run's worker thread gives its slot back with `release_soon`."""

    def __init__(self, limits: ServeLimits):
        self.free = limits.max_concurrent
        self.limits = limits
        self.waiting: deque[asyncio.Future] = deque()
        self.loop: asyncio.AbstractEventLoop | None = None

    async def enter(self, gone: asyncio.Event) -> None:
        """Take a slot, waiting in the queue if need be; 429 when the queue is full or the wait too long."""
        self.loop = asyncio.get_running_loop()
        if self.free > 0 and not self.waiting:
            self.free -= 1
            return
        if len(self.waiting) >= self.limits.max_queue:
            raise self._busy("every run slot is busy and the queue is full")
        turn = self.loop.create_future()
        self.waiting.append(turn)
        hung_up = asyncio.ensure_future(gone.wait())
        try:
            await asyncio.wait({turn, hung_up}, timeout=self.limits.queue_timeout_s,
                               return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        finally:
            hung_up.cancel()
            granted = turn.done() and not turn.cancelled()
            if not granted:
                turn.cancel()
                self.waiting.remove(turn)
            elif gone.is_set() or asyncio.current_task().cancelling():
                self.release()  # the client left as its turn came: pass the slot on
                granted = False
        if not granted:
            if gone.is_set():
                raise ApiError(499, "the client closed the request", "invalid_request_error")
            raise self._busy(f"no run slot freed within {self.limits.queue_timeout_s:g} s")

    def release(self) -> None:
        """Give a slot to the first request still waiting, else back to the pool."""
        while self.waiting:
            turn = self.waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        self.free += 1

    def release_soon(self) -> None:
        """`release` from any thread (a run ends in its worker thread)."""
        if self.loop is None:
            self.free += 1
            return
        try:
            self.loop.call_soon_threadsafe(self.release)
        except RuntimeError:  # the server (and its loop) is shutting down
            pass

    def _busy(self, why: str) -> ApiError:
        return ApiError(429, f"{why}; retry shortly", "rate_limit_error",
                        headers={"Retry-After": str(self.limits.retry_after_s)})  # fmt: skip


class Hangup:
    """Watches a request's connection: when the client hangs up, `gone` is set and the run is cancelled."""

    def __init__(self, request: Request):
        self.gone = asyncio.Event()
        self.cancel = threading.Event()  # the run's cancel token (tools/backends/cancel.py)
        self._task = asyncio.ensure_future(self._watch(request.receive))

    async def _watch(self, receive: Receive) -> None:
        while True:  # the body was read: the next message is the disconnect (or the response's end)
            message = await receive()
            if message["type"] == "http.disconnect":
                self.gone.set()
                self.cancel.set()
                return

    def stop(self) -> None:
        """The response is complete: stop watching (a finished run has nothing left to cancel)."""
        self._task.cancel()


async def _until_done(stream, run: BackgroundRun, hangup: Hangup):
    """The SSE stream; when it ends early (the client went away) the run is cancelled."""
    try:
        async for piece in stream:
            yield piece
    finally:
        run.cancel()
        hangup.stop()


class Redactor:
    """Replaces the operator's strings (model folders and URLs, server folders) in what clients see, and any
    credentials written into a URL."""

    _CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@'\"]+@")

    def __init__(self, replacements: list[tuple[str, str]]):
        self.replacements = sorted((r for r in replacements if r[0]), key=lambda r: -len(r[0]))  # longest first

    @classmethod
    def for_server(cls, agent, policy: ImagePolicy) -> Redactor:
        pairs: list[tuple[str, str]] = []
        for role in ("reasoner", "perceiver"):
            backend = getattr(agent, role, None)
            spec = getattr(backend, "spec", None)
            names = [getattr(backend, "name", None), getattr(spec, "name", None), *getattr(spec, "urls", ())]
            pairs += [(name, role) for name in names if isinstance(name, str) and len(name) > 2]
        for folder in (policy.image_root, policy.store_dir or _store_root()):
            if folder is not None:
                pairs += [(f"{folder}/", ""), (str(folder), "<server folder>")]
        return cls(pairs)

    def __call__(self, text: str) -> str:
        for secret, public in self.replacements:
            text = text.replace(secret, public)
        return self._CREDENTIALS.sub(r"\1***@", text)

    def data(self, value):
        """The same over every string of a JSON-like value."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, list):
            return [self.data(v) for v in value]
        if isinstance(value, dict):
            return {k: self.data(v) for k, v in value.items()}
        return value


def _store_root():
    from tools.images.inputs import default_store_dir

    return default_store_dir()


def _authorized(request: Request, api_key: str) -> bool:
    given = request.headers.get("authorization", "")
    token = given[7:] if given.lower().startswith("bearer ") else ""
    return hmac.compare_digest(token.encode(), api_key.encode())


async def _read_body(request: Request, cap: int) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > cap:
            raise ApiError(413, f"request body over {cap:,} bytes")
    return bytes(body)


def _parse(body: bytes) -> ChatRequest:
    try:
        return ChatRequest.model_validate(json.loads(body or b"null"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise ApiError(400, "the request body is not valid JSON") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise ApiError(400, f"{where}: {first['msg']}", param=where) from None


def ask_options(chat: ChatRequest, limits: ServeLimits = ServeLimits()) -> AskOptions:
    """OpenAI's max_tokens/temperature/top_p/seed and our extra fields onto the ask settings, type- and
    range-checked (agent/settings.py) and within the server's caps; a bad one is a 400 naming it in `param`.
    OpenAI's temperature 0 or top_p 0 means greedy decoding, which the ask settings spell `greedy`."""
    extra = chat.model_extra or {}
    values = {k: extra[k] for k in ASK_FIELDS if k in extra}
    for name in ("temperature", "top_p", "seed"):
        if getattr(chat, name) is not None:
            values[name] = getattr(chat, name)
    for name in ("temperature", "top_p"):
        if values.get(name) == 0 and not isinstance(values[name], bool):
            values.pop(name)
            values["greedy"] = True
    sent = {name: name for name in values}  # ask field -> the request's key, for the error's `param`
    token_key = "max_completion_tokens" if chat.max_completion_tokens is not None else "max_tokens"
    if getattr(chat, token_key) is not None and "max_new_tokens" not in values:
        values["max_new_tokens"], sent["max_new_tokens"] = getattr(chat, token_key), token_key
    try:
        options = limits.caps.apply(validated(AskOptions, values))
    except SettingError as exc:
        key = sent.get(exc.field, exc.field)
        raise ApiError(400, f"{key} {exc.problem}", param=key) from None
    return options


def to_chat_messages(messages: list[dict], policy: ImagePolicy, max_images: int) -> list[dict]:
    """OpenAI messages with every image read under the policy and stored: blocks name stored files only."""
    out, count = [], 0
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "assistant", "system", "developer", "tool"):
            raise ApiError(400, f"messages[{i}]: role must be user, assistant or system", param=f"messages.{i}")
        if role not in ("user", "assistant"):
            continue  # the agent's own system prompts are fixed; tool turns belong to other agents
        content = message.get("content") or ""
        if role == "assistant" or isinstance(content, str):
            out.append({"role": role, "content": content_text(content)})
            continue
        if not isinstance(content, list):
            raise ApiError(400, f"messages[{i}].content must be a string or a list of parts")
        blocks = []
        for part in content:
            source = image_source(part)
            if source is None:
                if isinstance(part, dict) and part.get("type") == "text":
                    blocks.append({"type": "text", "text": str(part.get("text", ""))})
                continue
            count += 1
            if count > max_images:
                raise ApiError(400, f"more than {max_images} images in one request")
            blocks.append({"type": "image", "file_id": _stored(source, policy, f"image {count}")})
        out.append({"role": "user", "content": blocks})
    if not out or out[-1]["role"] != "user":
        raise ApiError(400, "the last message must be the user's question", param="messages")
    return out


def _stored(source: str, policy: ImagePolicy, label: str) -> str:
    if source.startswith("stored:"):
        raise ApiError(400, f"{label}: file ids are not accepted here; send a data URL")
    try:
        return acquire(source, policy, label).digest
    except ImageInputError as exc:
        raise ApiError(exc.status, str(exc)) from None


READY = object()  # the images were read and stored: the run itself starts


def _events(agent, raw: list[dict], policy: ImagePolicy, max_images: int, turn: TurnSettings,
            release: Callable[[], None]):  # fmt: skip
    """The run's events (READY first); the slot is given back when the run ends, however it ends."""
    try:
        messages = to_chat_messages(raw, policy, max_images)
        yield READY
        yield from run_turn(agent, assistant.graph, {"messages": messages}, uuid.uuid4().hex, turn)
    finally:
        release()


class BackgroundRun:
    """A blocking run in a worker thread, started at once. It ends by itself, or at the next token once
    cancelled: when its deadline passes or its client goes away (`cancel`).

    At most MAX_PENDING events wait for a slow reader; then the run waits too (and, once cancelled, is closed)."""

    _DONE = object()
    MAX_PENDING = 1024

    def __init__(self, events: Iterator, timeout_s: float, cancel: threading.Event):
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue = asyncio.Queue()
        self.timeout_s, self.deadline = timeout_s, self.loop.time() + timeout_s  # one deadline for the whole run
        self._cancel = cancel
        self._room = threading.Semaphore(self.MAX_PENDING)
        threading.Thread(target=self._pump, args=(events,), daemon=True, name="xthink-serve-run").start()

    def cancel(self) -> None:
        self._cancel.set()

    def _pump(self, events: Iterator) -> None:
        try:
            for event in events:
                if not self._wait_for_room():
                    events.close()  # cancelled and nobody reads: end the run here (its slot is given back)
                    break
                self.loop.call_soon_threadsafe(self.queue.put_nowait, event)
        except BaseException as exc:  # noqa: BLE001  (handed to the request, which answers with its code)
            self.loop.call_soon_threadsafe(self.queue.put_nowait, exc)
        self.loop.call_soon_threadsafe(self.queue.put_nowait, self._DONE)

    def _wait_for_room(self) -> bool:
        while not self._room.acquire(timeout=0.1):
            if self._cancel.is_set():
                return False
        return True

    async def ready(self) -> None:
        """Wait until the run's input was read: an error in it (a bad image) is raised here, as a 4xx."""
        async for event in self.events():
            if event is READY:
                return

    async def events(self):
        """The run's events as they come, until the run's deadline (which cancels it)."""
        while True:
            try:
                event = await asyncio.wait_for(self.queue.get(), max(0.0, self.deadline - self.loop.time()))
            except asyncio.TimeoutError:
                self.cancel()
                raise ApiError(504, f"the run took over {self.timeout_s:g} s", "server_error") from None
            if event is self._DONE:
                return
            if isinstance(event, BaseException):
                raise _as_api_error(event)
            self._room.release()
            yield event

    async def turn(self) -> ChatTurn:
        last = None
        async for last in self.events():
            pass
        return last


def _as_api_error(exc: BaseException) -> ApiError:
    """The client's error for a failed run. A model's failure names no model string (they are the operator's:
    folders, internal URLs); the server log has the details."""
    from tools.backends.base import Cancelled
    from tools.backends.http_client import EndpointError
    from tools.backends.loading import ModelLoadError
    from tools.images.pixels import ImageError

    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, (InputError, ImageError)):
        return ApiError(400, str(exc))
    if isinstance(exc, ImageInputError):
        return ApiError(exc.status, str(exc))
    if isinstance(exc, Cancelled):
        log.info("a run was stopped: its client went away or its time was up")
        return ApiError(504, "the run was stopped before it finished", "server_error")
    if isinstance(exc, (ModelLoadError, EndpointError)):
        log.error("a model failed: %s", exc)
        return ApiError(502, "a model this server uses failed; the server log has the details", "server_error")
    log.error("a run failed", exc_info=exc)
    return ApiError(500, f"internal error ({type(exc).__name__})", "server_error")


def usage(result: Result | None) -> dict:
    """Tokens of both models: every step's prompt and output."""
    steps = result.steps if result else []
    prompt = sum(s.prompt_tokens for s in steps)
    completion_tokens = sum(s.output_tokens for s in steps)
    return {"prompt_tokens": prompt, "completion_tokens": completion_tokens, "total_tokens": prompt + completion_tokens}


def public_result(result: Result | None, model: str, redact: Redactor) -> dict | None:
    """The Result for a client: the models named by the served id `model`, image paths by the stored file's
    name, and no operator string in any text (a step's error may quote one)."""
    if result is None:
        return None
    data = result.model_dump(mode="json")
    for image in data["images"]:
        image["path"] = image["path"].rsplit("/", 1)[-1]
    data["reasoner"] = model if data["reasoner"] is not None else None
    data["perceiver"] = model
    return redact.data(data)


def completion(turn: ChatTurn, rid: str, model: str, redact: Redactor) -> dict:
    if turn.error:
        raise ApiError(400, turn.error)
    result = turn.result
    finish = "length" if result and result.steps and getattr(result.steps[-1], "finish_reason", "") == "length" \
        else "stop"  # fmt: skip
    message = {"role": "assistant", "content": redact(turn.reply), "reasoning_content": redact(turn.reasoning)}
    return {
        "id": rid, "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "finish_reason": finish, "message": message}],
        "usage": usage(result), "extract_think": public_result(result, model, redact),
    }  # fmt: skip


async def sse(run: BackgroundRun, rid: str, model: str, redact: Redactor):
    """Chunks as the agent works: its thinking and each extraction as `reasoning_content`, the answer as
    `content`, then a last chunk with the finish reason, usage and the Result, then `[DONE]`."""
    created = int(time.time())

    def chunk(delta: dict, finish: str | None = None, **extra) -> str:
        body = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}  # fmt: skip
        return f"data: {json.dumps(body)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    try:
        async for event in run.events():
            if isinstance(event, Token) and event.phase == "thinking":
                yield chunk({"reasoning_content": event.text})
            elif isinstance(event, ExtractStep):
                yield chunk({"reasoning_content": f"\n[looked at {event.image_id}: {event.request or event.purpose}]\n"})
            elif isinstance(event, ReasonStep) and event.tool_calls:
                yield chunk({"reasoning_content": event.text})
            elif isinstance(event, ChatTurn):
                if event.error:
                    raise ApiError(400, event.error)
                yield chunk({"content": redact(event.reply)})
                extra = {"usage": usage(event.result), "extract_think": public_result(event.result, model, redact)}
                yield chunk({}, "stop", **extra)
    except ApiError as exc:
        yield f"data: {json.dumps(error_body(exc.status, redact(exc.message), exc.kind))}\n\n"
    yield "data: [DONE]\n\n"
