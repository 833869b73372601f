"""An OpenAI-compatible endpoint for the whole agent: `POST /v1/chat/completions`, `GET /v1/models`.

Web stack: FastAPI on uvicorn. The same stack already runs `transformers serve` and vLLM's server, so it adds
nothing new to install. This module only puts the app together; each job has its own file here:
the request and its validation (chat_request.py), the OpenAI fields -> our settings (settings_mapping.py),
the API key and body size (auth_and_size.py), run slots and the queue (limits.py), the run in a worker thread
and its cancellation (background_run.py), the answer (completion.py) or its stream (sse.py), error bodies
(errors.py) and the scrubbing of operator strings (redaction.py).

A public endpoint needs limits: body size, images per request, pixels per image, concurrent runs, a time limit
per request, an API key compared in constant time. Every error is an OpenAI-style JSON body with its 4xx/5xx
code; nothing a client sends can stop the server.
"""

from __future__ import annotations

import time
import uuid

from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

from graphs.conversation import TurnSettings
from graphs.server.auth_and_size import AuthAndSize, read_body
from graphs.server.background_run import BackgroundRun, Hangup, run_events, until_done
from graphs.server.chat_request import parse_request
from graphs.server.completion import completion
from graphs.server.errors import add_error_handlers
from graphs.server.limits import Admission
from graphs.server.serve_limits import ServeLimits
from graphs.server.redaction import Redactor
from graphs.server.settings_mapping import MODELS, ask_options, served_mode
from graphs.server.sse import sse
from tools.images.inputs import ImagePolicy


def create_app(agent, limits: ServeLimits = ServeLimits(), api_key: str | None = None) -> FastAPI:
    """The server for a loaded agent: error bodies, the key and size checks, then the two routes."""
    app = FastAPI(title="extract-think", docs_url=None, redoc_url=None)
    policy = ImagePolicy.from_env(max_pixels=limits.max_pixels)
    redact = Redactor.for_server(agent, policy)
    add_error_handlers(app, redact)
    app.add_middleware(AuthAndSize, api_key=api_key, max_body_bytes=limits.max_body_bytes)
    app.get("/v1/models")(models)
    app.post("/v1/chat/completions")(chat_route(agent, limits, policy, redact))
    return app


async def models():
    """The served ids, one per regime."""
    now = int(time.time())
    return {"object": "list", "data": [{"id": name, "object": "model", "created": now, "owned_by": "extract-think"}
                                       for name in MODELS]}  # fmt: skip


def chat_route(agent, limits: ServeLimits, policy: ImagePolicy, redact: Redactor):
    """`POST /v1/chat/completions` for one server: its agent, limits and run slots."""
    admission = Admission(limits)

    async def completions(request: Request):
        chat = parse_request(await read_body(request, limits.max_body_bytes))
        mode = served_mode(chat)
        settings = ask_options(chat, limits)
        hangup = Hangup(request)
        try:
            await admission.enter(hangup.gone)
            turn = TurnSettings(mode, settings, cancel=hangup.cancel, stream_text=chat.stream)
            # Images are read inside the run (its slot, its deadline); a bad one still answers 4xx before any output.
            run = BackgroundRun(run_events(agent, chat.messages, policy, limits.max_images, turn,
                                           admission.release_soon), limits.timeout_s, hangup.cancel)  # fmt: skip
            await run.ready()
            rid, model = f"chatcmpl-{uuid.uuid4().hex[:24]}", chat.model
            if chat.stream:
                stream, hangup = until_done(sse(run, rid, model, redact), run, hangup), None  # the stream owns it
                return StreamingResponse(stream, media_type="text/event-stream")
            return completion(await run.turn(), rid, model, redact)
        finally:
            if hangup is not None:
                hangup.stop()

    return completions
