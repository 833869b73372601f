"""The API key and the body size cap: a public endpoint checks both before it reads a request.

The key is compared in constant time. The size is checked twice: the declared Content-Length before any route
runs, and the bytes counted as they arrive (a client may declare nothing, or lie).
"""

from __future__ import annotations

import hmac

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from graphs.server.errors import ApiError, error_body


class AuthAndSize:
    """The API key and the declared body size, checked before any route runs (a plain ASGI middleware, so
    the routes see the client's own `receive` and can tell when it hangs up)."""

    def __init__(self, app: ASGIApp, api_key: str | None, max_body_bytes: int):
        self.app, self.api_key, self.max_body_bytes = app, api_key, max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = self._refusal(Request(scope)) if scope["type"] == "http" else None
        if refusal is not None:
            status, message = refusal
            await JSONResponse(error_body(status, message, "invalid_request_error"), status)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _refusal(self, request: Request) -> tuple[int, str] | None:
        """The status and message of a request refused before it is read, or None to let it through."""
        if self.api_key and not _authorized(request, self.api_key):
            return 401, "invalid or missing API key (Authorization: Bearer KEY)"
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_body_bytes:
            return 413, f"request body over {self.max_body_bytes:,} bytes"
        return None


def _authorized(request: Request, api_key: str) -> bool:
    given = request.headers.get("authorization", "")
    token = given[7:] if given.lower().startswith("bearer ") else ""
    return hmac.compare_digest(token.encode(), api_key.encode())


async def read_body(request: Request, cap: int) -> bytes:
    """The body, refused with 413 as soon as it passes the cap (without holding more than that)."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > cap:
            raise ApiError(413, f"request body over {cap:,} bytes")
    return bytes(body)
