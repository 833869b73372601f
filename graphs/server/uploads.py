"""`POST /files`: images uploaded to LangGraph Server once, then named by `file_id` in messages.

LangGraph keeps each run's input, as sent, in the run's first checkpoint, so an image sent inline (a data URL)
stays in the thread's database for as long as the thread does. This route (mounted by `langgraph.json`'s
`http.app`, behind the server's own auth: `enable_custom_route_auth`) takes the image instead, under the caps
every other entry point has (XTHINK_MAX_IMAGE_BYTES, XTHINK_MAX_PIXELS), stores it in the content store
(tools/images/store.py) and answers its `file_id`, the sha256 of its bytes: a message then carries
`{"type": "image", "file_id": ...}` (agent/assistant_turns.py reads it), a few dozen bytes instead of the image.
The answer never names a server path. The body is read with its cap counted as it arrives and within a deadline
(XTHINK_UPLOAD_TIMEOUT, 60 s: a client that stalls cannot hold a slot), and at most MAX_UPLOADS_AT_ONCE uploads
are held in memory at once; more get 429 (no queue to grow).
"""

from __future__ import annotations

import contextlib
import threading

import anyio
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tools.images.inputs import ImagePolicy
from tools.images.store import ImageInputError, env_number

FIELD = "file"
MAX_UPLOADS_AT_ONCE = 8
DEFAULT_TIMEOUT_S = 60.0
FORM_OVERHEAD = 64 * 1024  # boundaries and part headers around the image in a multipart body
_SLOTS = threading.BoundedSemaphore(MAX_UPLOADS_AT_ONCE)


class UploadError(Exception):
    """An upload the route refuses; `status` is the HTTP answer."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


async def upload(request: Request) -> JSONResponse:
    """Store one image; answer `{"file_id", "width", "height", "bytes", "format"}` or `{"detail": why}`."""
    if not _SLOTS.acquire(blocking=False):
        return JSONResponse({"detail": f"more than {MAX_UPLOADS_AT_ONCE} uploads at once; retry shortly"}, 429,
                            headers={"Retry-After": "1"})  # fmt: skip
    try:
        policy = ImagePolicy.from_env()
        data = await _received(request, policy.max_bytes)
        stored = await run_in_threadpool(policy.store.put, data, "the uploaded file")
    except (UploadError, ImageInputError) as exc:
        return JSONResponse({"detail": str(exc)}, exc.status)
    finally:
        _SLOTS.release()
    return JSONResponse({"file_id": stored.digest, "width": stored.width, "height": stored.height,
                         "bytes": len(data), "format": stored.path.suffix[1:]})  # fmt: skip


async def _received(request: Request, max_bytes: int) -> bytes:
    """The image bytes, within the upload deadline."""
    timeout = env_number("XTHINK_UPLOAD_TIMEOUT", DEFAULT_TIMEOUT_S) or DEFAULT_TIMEOUT_S
    with anyio.move_on_after(timeout):
        return await _image_bytes(request, max_bytes)
    raise UploadError(f"the upload took over {timeout:g} s (XTHINK_UPLOAD_TIMEOUT)", 408)


async def _image_bytes(request: Request, max_bytes: int) -> bytes:
    """The image of a multipart form (field `file`) or of a raw body with an image/* content type."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        data = await _form_file(request, max_bytes)
    elif kind.startswith("image/"):
        data = await _capped_body(request, max_bytes, max_bytes)
    else:
        raise UploadError(f"send the image as the multipart form field '{FIELD}' or as the body with an image/* "
                          f"content type, not '{kind[:60] or 'no content type'}'", 415)  # fmt: skip
    if len(data) > max_bytes:
        raise _too_large(max_bytes)
    if not data:
        raise UploadError("the uploaded file is empty (0 bytes)")
    return data


async def _capped_body(request: Request, limit: int, cap: int) -> bytes:
    """The body, refused as soon as it passes `limit` bytes (a declared length over it before any is read);
    the refusal names the image cap `cap`."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(cap)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_large(cap)
    return bytes(body)


async def _form_file(request: Request, max_bytes: int) -> bytes:
    """The `file` field of a multipart form, the whole body capped at the image cap plus the form's overhead."""
    try:
        import python_multipart  # noqa: F401  (Starlette's form parser needs it)
    except ImportError:
        raise UploadError("multipart uploads need python-multipart: pip install 'extract-think[server]' (a raw "
                          "body with an image/* content type works without it)", 500) from None  # fmt: skip
    from starlette.formparsers import MultiPartException

    body = await _capped_body(request, max_bytes + FORM_OVERHEAD, max_bytes)
    replay = Request(request.scope, _replay(body))
    try:
        async with replay.form(max_files=1, max_fields=8) as form:
            part = form.get(FIELD)
            if part is None:
                raise UploadError(f"the form has no '{FIELD}' field: send the image as the form field '{FIELD}'")
            if isinstance(part, str):
                raise UploadError(f"the form field '{FIELD}' must be a file, not text")
            return await part.read()
    except MultiPartException as exc:
        raise UploadError(f"the multipart form cannot be read: {exc}") from None


def _replay(body: bytes):
    """An ASGI receive that hands over an already read (and capped) body."""
    sent = False

    async def receive() -> dict:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def _too_large(cap: int) -> UploadError:
    return UploadError(f"the uploaded file is over the size limit of {cap:,} bytes (XTHINK_MAX_IMAGE_BYTES)", 413)


@contextlib.asynccontextmanager
async def lifespan(_app):
    """At the server's start: tracing from OTEL_EXPORTER_OTLP_ENDPOINT (agent/telemetry.py), before any run, so
    the first run's graph and node spans are recorded too; nothing when it is unset."""
    from agent import telemetry

    telemetry.configure()
    yield


# Mounted by LangGraph Server (`langgraph.json`: http.app); building a Starlette app does no I/O.
app = Starlette(routes=[Route("/files", upload, methods=["POST"])], lifespan=lifespan)
