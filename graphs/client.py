"""A LangGraph Server running our graphs, from the client's side: upload each image once, then name it by `file_id`.

LangGraph keeps every run's input in the thread's first checkpoint of that run, so an image sent inline stays in
the server's database; `POST /files` (graphs/server/uploads.py) stores it beside the database instead and answers its
`file_id`. `upload_image` / `aupload_image` do that one request; `ServerChat` is `ExtractThink.chat` with the
turns run by a server (images uploaded, messages carrying `file_id` blocks, settings sent as the run's context).
"""

from __future__ import annotations

import mimetypes
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from agent.settings import AskOptions, InputError
from agent.trace import Result
from graphs.conversation import ChatTurn


class ServerError(RuntimeError):
    """The server cannot be reached, or failed (5xx); the message says which and why."""


@dataclass(frozen=True)
class Upload:
    """What `POST /files` answered: the image's content id and its size; never a server path."""

    file_id: str
    width: int
    height: int
    bytes: int
    format: str

    def block(self) -> dict:
        """The image as a LangChain content block, for a message's `content` list."""
        return {"type": "image", "file_id": self.file_id}


def upload_image(url: str, path: str | Path, api_key: str | None = None, headers: dict | None = None,
                 timeout: float = 60.0) -> Upload:
    """Send one image file to the server's `POST /files`; InputError if it refuses it, ServerError if it fails."""
    name, data, mime = _read(path)
    try:
        with httpx.Client(timeout=timeout) as client:
            response = client.post(_files_url(url), files={"file": (name, data, mime)},
                                    headers=_headers(api_key, headers))  # fmt: skip
    except httpx.HTTPError as exc:
        raise ServerError(f"could not upload '{path}' to {url} ({type(exc).__name__}: {exc})") from None
    return _answer(response, path)


async def aupload_image(url: str, path: str | Path, api_key: str | None = None, headers: dict | None = None,
                        timeout: float = 60.0) -> Upload:
    """`upload_image` for asyncio clients (langgraph-sdk's `get_client`)."""
    name, data, mime = _read(path)
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.post(_files_url(url), files={"file": (name, data, mime)},
                                         headers=_headers(api_key, headers))  # fmt: skip
    except httpx.HTTPError as exc:
        raise ServerError(f"could not upload '{path}' to {url} ({type(exc).__name__}: {exc})") from None
    return _answer(response, path)


def _read(path: str | Path) -> tuple[str, bytes, str]:
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise InputError(f"image '{path}' cannot be read ({exc.strerror or type(exc).__name__})") from None
    return p.name, data, mimetypes.guess_type(p.name)[0] or "application/octet-stream"


def _files_url(url: str) -> str:
    return url.rstrip("/") + "/files"


def _headers(api_key: str | None, headers: dict | None) -> dict:
    """The headers langgraph-sdk sends, so the server's auth sees an upload as it sees a run."""
    return {**({"x-api-key": api_key} if api_key else {}), **(headers or {})}


def _answer(response: httpx.Response, path) -> Upload:
    try:
        body = response.json()
    except ValueError:
        body = {"detail": response.text[:200]}
    if response.status_code >= 500:
        raise ServerError(f"the server failed to store '{path}' (HTTP {response.status_code}): "
                          f"{body.get('detail', '')}")  # fmt: skip
    if response.status_code != 200:
        raise InputError(f"the server refused '{path}' (HTTP {response.status_code}): {body.get('detail', body)}")
    return Upload(**{k: body[k] for k in ("file_id", "width", "height", "bytes", "format")})


class ServerChat:
    """`ExtractThink.chat` against a LangGraph Server: the same turns, run by the server's `assistant` graph on
    the server's models. Thread names map to stable UUIDs (LangGraph's thread ids), so a name comes back to
    the same conversation from any process."""

    def __init__(self, url: str, api_key: str | None = None, headers: dict | None = None,
                 assistant: str = "assistant", timeout: float = 600.0):
        try:
            from langgraph_sdk import get_sync_client
        except ImportError:
            raise ImportError("ServerChat needs langgraph-sdk: pip install 'extract-think[server]'") from None

        self.url, self.assistant = url, assistant
        self._auth = (api_key, headers)
        self._client = get_sync_client(url=url, api_key=api_key, headers=headers, timeout=timeout)

    def chat(self, message: str, images: Sequence[str | Path] = (), thread_id: str = "default",
             mode: str = "iterative", settings: AskOptions | None = None) -> ChatTurn:
        """One turn on `thread_id`: each image uploaded first, the message naming them by `file_id`."""
        blocks = [{"type": "text", "text": message}]
        blocks += [upload_image(self.url, path, *self._auth).block() for path in images]
        thread = thread_uuid(thread_id)
        context = {**(settings or AskOptions()).as_dict(), "mode": mode}
        try:
            self._client.threads.create(thread_id=thread, if_exists="do_nothing")
            values = self._client.runs.wait(thread, self.assistant, context=context, raise_error=False,
                                            input={"messages": [{"role": "user", "content": blocks}]})  # fmt: skip
        except httpx.HTTPError as exc:
            raise ServerError(f"the server at {self.url} failed the turn ({type(exc).__name__}: {exc})") from None
        if isinstance(values, dict) and isinstance(values.get("__error__"), dict):
            error = values["__error__"]
            raise ServerError(f"the server's run failed: {error.get('error')}: {error.get('message')}")
        return _turn(values, thread_id)


def thread_uuid(name: str) -> str:
    """A thread name as LangGraph Server's thread id: a UUID as it is, any other name as its UUID5."""
    try:
        return str(uuid.UUID(name))
    except ValueError:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"extract-think:{name}"))


def _turn(values: dict, thread_id: str) -> ChatTurn:
    last = next((m for m in reversed(values.get("messages", [])) if m.get("type") == "ai"), None) or {}
    content = last.get("content", "")
    reply = content if isinstance(content, str) else "".join(b.get("text", "") for b in content
                                                               if isinstance(b, dict))  # fmt: skip
    result = values.get("result")
    return ChatTurn(thread_id=thread_id, reply=reply, error=values.get("error"),
                    reasoning=last.get("additional_kwargs", {}).get("reasoning_content", ""),
                    result=Result.model_validate(result) if result else None)  # fmt: skip
