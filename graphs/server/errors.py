"""The errors a client sees: OpenAI-style JSON bodies with a 4xx/5xx code, whatever failed.

Nothing a client sends can stop the server, and no failure shows the operator's strings: a model's failure
names no model string (they are the operator's: folders, internal URLs) and an unexpected one names only its
type; the details go to the server log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from agent.settings import InputError
from tools.images.store import ImageInputError

log = logging.getLogger("xthink.serve")
CODES = {401: "invalid_api_key", 404: "model_not_found", 413: "request_too_large", 429: "rate_limit_exceeded",
         504: "timeout"}  # fmt: skip


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", param: str | None = None,
                 headers: dict | None = None):  # fmt: skip
        super().__init__(message)
        self.status, self.message, self.kind, self.param, self.headers = status, message, kind, param, headers


def error_body(status: int, message: str, kind: str, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": kind, "param": param, "code": CODES.get(status)}}


def add_error_handlers(app: FastAPI, redact: Callable[[str], str]) -> None:
    """Every way a request can fail answers an error body: ours, the framework's, and anything unexpected."""

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


def as_api_error(exc: BaseException) -> ApiError:
    """The client's error for a failed run; the server log has the details."""
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
