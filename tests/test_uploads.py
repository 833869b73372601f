"""Uploads on a real LangGraph Server (`langgraph dev`, our `http.app`): an image goes to `POST /files` once,
messages name its `file_id`, and no checkpoint of the thread holds the image.

The server runs with small caps (XTHINK_MAX_IMAGE_BYTES, XTHINK_MAX_PIXELS) so over-the-cap uploads are cheap.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import io
import json
import random
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from agent.settings import AskOptions, InputError
from graphs.client import ServerChat, ServerError, aupload_image, thread_uuid, upload_image
from tests.test_langgraph_server import CONTEXT, data_url, free_port, start_langgraph_dev, user

sdk = pytest.importorskip("langgraph_sdk")

ROOT = Path(__file__).resolve().parents[1]
MAX_BYTES = 200_000
MAX_PIXELS = 1_000_000
UPLOAD_TIMEOUT_S = 4


@pytest.fixture(scope="module")
def server(tiny, tmp_path_factory):
    store = tmp_path_factory.mktemp("up_store")
    cwd = _server_folder(tmp_path_factory.mktemp("up_cwd"), json.loads((ROOT / "langgraph.json").read_text()))
    with _langgraph_dev(tiny, tmp_path_factory, cwd, store) as url:
        yield url, store


@pytest.fixture(scope="module")
def auth_server(tiny, tmp_path_factory):
    """Our langgraph.json plus LangGraph's custom auth (a key in `x-api-key`): the upload route sits behind it."""
    cwd = tmp_path_factory.mktemp("up_auth_cwd")
    (cwd / "key_auth.py").write_text(AUTH_MODULE)
    config = {**json.loads((ROOT / "langgraph.json").read_text()), "auth": {"path": "./key_auth.py:auth"}}
    store = tmp_path_factory.mktemp("up_auth_store")
    with _langgraph_dev(tiny, tmp_path_factory, _server_folder(cwd, config), store) as url:
        yield url


AUTH_MODULE = """
from langgraph_sdk import Auth

auth = Auth()


@auth.authenticate
async def authenticate(headers: dict) -> str:
    if headers.get(b"x-api-key") != b"test-key":
        raise Auth.exceptions.HTTPException(status_code=401, detail="a valid x-api-key is needed")
    return "tester"
"""


def _server_folder(cwd: Path, config: dict) -> Path:
    """A folder of its own that sees the repository (the server keeps its data in ./.langgraph_api)."""
    for name in ("pyproject.toml", "agent", "tools", "graphs", "evals"):
        (cwd / name).symlink_to(ROOT / name)
    (cwd / "langgraph.json").write_text(json.dumps(config))
    return cwd


@contextlib.contextmanager
def _langgraph_dev(tiny, tmp_path_factory, cwd: Path, store: Path):
    """Our server with small caps, so the tests can pass them with small images."""
    proc, url = start_langgraph_dev(
        tiny, tmp_path_factory, cwd=cwd, XTHINK_IMAGE_STORE=str(store), XTHINK_MAX_IMAGE_BYTES=str(MAX_BYTES),
        XTHINK_MAX_PIXELS=str(MAX_PIXELS), XTHINK_UPLOAD_TIMEOUT=str(UPLOAD_TIMEOUT_S),
    )  # fmt: skip
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def png(width: int, height: int, noise: bool = False) -> bytes:
    """A PNG; with noise it barely compresses (for the byte cap), without it a large one stays small."""
    img = Image.new("RGB", (width, height), "red")
    if noise:
        rng = random.Random(0)
        img = Image.frombytes("RGB", (width, height), bytes(rng.getrandbits(8) for _ in range(width * height * 3)))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def image_traces(dump: str, data: bytes) -> list[str]:
    """Ways the image's bytes could sit in JSON: base64 at any of the three alignments, or a PNG header."""
    found = []
    for shift in range(3):
        chunk = base64.b64encode(data[shift:shift + 300]).decode()[4:200]
        if chunk in dump:
            found.append(f"base64 of bytes from offset {shift}")
    return found + [marker for marker in ("iVBORw0KGgo", "data:image") if marker in dump]


def history_dump(url: str, thread_id: str) -> tuple[int, str]:
    async def go():
        client = sdk.get_client(url=url)
        return await client.threads.get_history(thread_id, limit=1000)

    history = asyncio.run(go())
    return len(history), json.dumps(history)


def test_upload_then_two_turns_by_file_id_keep_the_image_out_of_every_checkpoint(server, image_path):
    url, store = server
    data = image_path.read_bytes()
    upload = upload_image(url, image_path)
    assert upload.file_id == hashlib.sha256(data).hexdigest()
    assert (upload.width, upload.height, upload.bytes, upload.format) == (120, 80, len(data), "png")
    assert (store / f"{upload.file_id}.png").read_bytes() == data

    async def go():
        client = sdk.get_client(url=url)
        thread = await client.threads.create()
        question = {"role": "user", "content": [{"type": "text", "text": "What colour is the square?"},
                                                {"type": "image", "file_id": upload.file_id}]}
        first = await client.runs.wait(thread["thread_id"], "assistant", context=CONTEXT,
                                       input={"messages": [question]})
        second = await client.runs.wait(thread["thread_id"], "assistant", context=CONTEXT,
                                        input={"messages": [user("And its shape?")]})
        return thread["thread_id"], first, second

    thread_id, first, second = asyncio.run(go())
    assert first["error"] is None and first["result"]["images"][0]["id"] == "image_1"
    assert first["result"]["images"][0]["width"] == 120
    assert second["result"]["question"] == "And its shape?" and second["result"]["images"][0]["id"] == "image_1"
    assert [m["type"] for m in second["messages"]] == ["human", "ai", "human", "ai"]
    count, dump = history_dump(url, thread_id)
    assert count >= 6, "each turn leaves several checkpoints"
    assert upload.file_id in dump
    assert image_traces(dump, data) == []


def test_an_inline_image_does_stay_in_the_checkpoints(server, image_path):
    """The reason for uploads, and proof that the check above can see an image: a data URL sent as input is
    kept in the run's first checkpoint."""
    url, _ = server

    async def go():
        client = sdk.get_client(url=url)
        thread = await client.threads.create()
        await client.runs.wait(thread["thread_id"], "assistant", context=CONTEXT,
                               input={"messages": [user("What colour?", data_url(image_path))]})
        return thread["thread_id"]

    _, dump = history_dump(url, asyncio.run(go()))
    inline = base64.b64decode(data_url(image_path).split(",", 1)[1])
    assert image_traces(dump, inline)


def test_server_chat_uploads_and_remembers_the_thread(server, image_path, second_image):
    url, _ = server
    chat = ServerChat(url)
    settings = AskOptions(greedy=True, max_new_tokens=16, thinking_budget=8, perceiver_max_new_tokens=6,
                          max_extractions=1)
    first = chat.chat("What colour is the square?", [image_path], thread_id="uploads-demo", settings=settings)
    second = chat.chat("And this one?", [second_image], thread_id="uploads-demo", settings=settings, mode="caption")
    assert first.error is None and first.result.mode == "iterative" and first.reply == first.result.steps[-1].text.strip()
    assert second.result.mode == "caption"
    assert [(i.id, i.width) for i in second.result.images] == [("image_1", 120), ("image_2", 64)]
    _, dump = history_dump(url, thread_uuid("uploads-demo"))
    assert image_traces(dump, image_path.read_bytes()) == [] and image_traces(dump, second_image.read_bytes()) == []


def test_raw_body_upload_is_the_same_file(server, image_path):
    url, _ = server
    data = image_path.read_bytes()
    answer = httpx.post(f"{url}/files", content=data, headers={"content-type": "image/png"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"file_id": hashlib.sha256(data).hexdigest(), "width": 120, "height": 80,
                             "bytes": len(data), "format": "png"}
    assert asyncio.run(aupload_image(url, image_path)).file_id == answer.json()["file_id"]


@pytest.mark.parametrize("how", ["form", "raw", "raw-chunked"])
def test_over_the_byte_cap_is_413(server, how):
    url, store = server
    big = png(300, 300, noise=True)
    assert len(big) > MAX_BYTES
    if how == "form":
        answer = httpx.post(f"{url}/files", files={"file": ("big.png", big, "image/png")})
    elif how == "raw":
        answer = httpx.post(f"{url}/files", content=big, headers={"content-type": "image/png"})
    else:  # no Content-Length: the cap is counted as the body arrives
        answer = httpx.post(f"{url}/files", content=iter([big[i:i + 65536] for i in range(0, len(big), 65536)]),
                            headers={"content-type": "image/png"})
    assert answer.status_code == 413 and f"size limit of {MAX_BYTES:,} bytes" in answer.json()["detail"]
    assert not list(store.glob(f"{hashlib.sha256(big).hexdigest()}.*"))


def test_over_the_pixel_cap_is_413(server):
    url, _ = server
    wide = png(2000, 600)
    assert len(wide) < MAX_BYTES
    answer = httpx.post(f"{url}/files", files={"file": ("wide.png", wide, "image/png")})
    assert answer.status_code == 413 and "pixels" in answer.json()["detail"]


def test_non_images_are_refused(server, tmp_path):
    url, _ = server
    text = httpx.post(f"{url}/files", files={"file": ("notes.png", b"not an image at all", "image/png")})
    assert text.status_code == 400 and "not an image" in text.json()["detail"]
    plain = httpx.post(f"{url}/files", content=b"hello", headers={"content-type": "text/plain"})
    assert plain.status_code == 415 and "'text/plain'" in plain.json()["detail"]
    empty = httpx.post(f"{url}/files", content=b"", headers={"content-type": "image/png"})
    assert empty.status_code == 400 and "empty" in empty.json()["detail"]
    (tmp_path / "notes.txt").write_text("just text")
    with pytest.raises(InputError, match=r"refused .*notes.txt.*\(HTTP 400\).*not an image"):
        upload_image(url, tmp_path / "notes.txt")


def test_a_form_without_the_file_field_is_400(server, image_path):
    url, _ = server
    wrong = httpx.post(f"{url}/files", files={"image": ("a.png", image_path.read_bytes(), "image/png")})
    assert wrong.status_code == 400 and "no 'file' field" in wrong.json()["detail"]
    text = httpx.post(f"{url}/files", data={"file": "a.png"}, files={"other": ("x", b"x")})
    assert text.status_code == 400 and "must be a file" in text.json()["detail"]
    two = httpx.post(f"{url}/files", files=[("file", ("a.png", b"1")), ("file", ("b.png", b"2"))])
    assert two.status_code == 400 and "Too many files" in two.json()["detail"]


def test_an_unknown_file_id_is_named_in_the_turn(server):
    url, _ = server

    async def go():
        client = sdk.get_client(url=url)
        thread = await client.threads.create()
        message = {"role": "user", "content": [{"type": "text", "text": "What colour?"},
                                               {"type": "image", "file_id": "0" * 64}]}
        return await client.runs.wait(thread["thread_id"], "assistant", input={"messages": [message]})

    values = asyncio.run(go())
    assert "send the image again" in values["error"] and values["result"] is None


def test_client_errors_are_one_line(image_path, tmp_path):
    with pytest.raises(InputError, match="cannot be read"):
        upload_image("http://127.0.0.1:9", tmp_path / "missing.png")
    with pytest.raises(ServerError, match=r"could not upload .* to http://127.0.0.1:\d+ \(ConnectError"):
        upload_image(f"http://127.0.0.1:{free_port()}", image_path)


def test_server_chat_failures_are_one_line(server, image_path):
    url, _ = server
    over_cap = AskOptions(max_extractions=1000, greedy=True)
    with pytest.raises(ServerError, match=r"the server's run failed: .*max_extractions"):
        ServerChat(url).chat("What colour?", [image_path], thread_id="over-cap", settings=over_cap)
    no_image = ServerChat(url).chat("And now?", thread_id="no-image-yet")
    assert "no image in the conversation" in no_image.error and no_image.result is None
    with pytest.raises(ServerError, match=r"could not upload .* \(ConnectError"):
        ServerChat(f"http://127.0.0.1:{free_port()}").chat("What colour?", [image_path])
    with pytest.raises(ServerError, match=r"the server at .* failed the turn \(ConnectError"):
        ServerChat(f"http://127.0.0.1:{free_port()}").chat("What colour?")


def test_thread_names_map_to_stable_uuids():
    assert thread_uuid("demo") == thread_uuid("demo") != thread_uuid("demo2")
    same = "6f1c1e36-8f1e-4c52-9d4c-3f0b0d6c1a11"
    assert thread_uuid(same) == same


def test_uploads_sit_behind_the_servers_auth(auth_server, image_path):
    refused = httpx.post(f"{auth_server}/files", content=image_path.read_bytes(), headers={"content-type": "image/png"})
    assert refused.status_code == 401 and "x-api-key" in refused.text
    with pytest.raises(InputError, match=r"HTTP 401"):
        upload_image(auth_server, image_path, api_key="wrong-key")
    upload = upload_image(auth_server, image_path, api_key="test-key")
    assert upload.file_id == hashlib.sha256(image_path.read_bytes()).hexdigest()


def test_stalled_uploads_are_bounded_and_time_out(server, image_path):
    """MAX_UPLOADS_AT_ONCE clients that send a first chunk and stall fill the slots: one more gets 429 at once;
    at the deadline the stalled ones are answered 408 and their slots are free, while they still hold on."""
    from graphs.server.uploads import MAX_UPLOADS_AT_ONCE

    url, _ = server
    release = threading.Event()

    def stalled_body():
        yield b"\x89PNG"
        release.wait(UPLOAD_TIMEOUT_S + 10)

    def stall(results: list) -> None:
        try:
            answer = httpx.post(f"{url}/files", content=stalled_body(), headers={"content-type": "image/png"},
                                timeout=UPLOAD_TIMEOUT_S + 20)
            results.append(answer.status_code)
        except httpx.HTTPError as exc:  # the server answered and closed while the body was still open
            results.append(type(exc).__name__)

    results: list = []
    started = time.monotonic()
    threads = [threading.Thread(target=stall, args=(results,)) for _ in range(MAX_UPLOADS_AT_ONCE)]
    for thread in threads:
        thread.start()
    time.sleep(2.0)  # all connected and holding a slot
    extra = httpx.post(f"{url}/files", content=image_path.read_bytes(), headers={"content-type": "image/png"})
    assert extra.status_code == 429 and extra.headers["retry-after"] == "1", extra.text
    time.sleep(max(0.0, started + UPLOAD_TIMEOUT_S + 1.5 - time.monotonic()))
    freed = httpx.post(f"{url}/files", content=image_path.read_bytes(), headers={"content-type": "image/png"})
    assert freed.status_code == 200, "the deadline freed the slots while the stalled clients still hold on"
    release.set()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == MAX_UPLOADS_AT_ONCE, results
    assert all(r in (408, "WriteError", "RemoteProtocolError", "ReadError") for r in results), results


def test_a_server_without_python_multipart_names_the_extra(monkeypatch, tmp_path, image_path):
    """In process (the app object LangGraph mounts): a form needs python-multipart; a raw body does not."""
    from starlette.testclient import TestClient

    from graphs.server.uploads import app

    monkeypatch.setitem(sys.modules, "python_multipart", None)
    monkeypatch.setenv("XTHINK_IMAGE_STORE", str(tmp_path))
    client = TestClient(app)
    form = client.post("/files", files={"file": ("a.png", image_path.read_bytes(), "image/png")})
    assert form.status_code == 500 and "extract-think[server]" in form.json()["detail"]
    assert client.post("/files", content=image_path.read_bytes(), headers={"content-type": "image/png"}).is_success


def test_a_misconfigured_cap_is_named(monkeypatch, tmp_path, image_path):
    from starlette.testclient import TestClient

    from graphs.server.uploads import app

    monkeypatch.setenv("XTHINK_IMAGE_STORE", str(tmp_path))
    monkeypatch.setenv("XTHINK_MAX_IMAGE_BYTES", "lots")
    answer = TestClient(app).post("/files", content=image_path.read_bytes(), headers={"content-type": "image/png"})
    assert answer.status_code == 500 and "XTHINK_MAX_IMAGE_BYTES" in answer.json()["detail"]
