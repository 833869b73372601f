"""Parse the one string that names a model, in one place.

Forms:
- a Hugging Face hub id (`Qwen/Qwen3-1.7B`) or a local folder (`./models/qwen`): transformers, in process;
- `vllm:` + hub id or folder: vLLM, in process (extra `[vllm]`);
- an OpenAI-compatible server's `/v1` base URL (`http://host:8000/v1`), optionally `#MODEL` to pick one of
  the models it serves, and several comma-separated URLs (`http://a:8000/v1,http://b:8000/v1#MODEL`) to
  spread requests over replicas and fail over when one is down.
Anything else fails here with a message listing the valid forms, before any heavy import happens.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$")

VALID_FORMS = (
    "a Hugging Face hub id such as 'Qwen/Qwen3-1.7B', "
    "a local folder holding config.json and the weights such as './models/Qwen3-1.7B', "
    "'vllm:' followed by either of those, "
    "or an OpenAI-compatible server URL such as 'http://127.0.0.1:8000/v1' (optionally '#MODEL')"
)


class ModelSpecError(ValueError):
    """The model string has no valid form, or names a local folder that does not hold a model."""


@dataclass(frozen=True)
class ModelSpec:
    kind: Literal["hub", "local", "http", "vllm"]
    name: str
    urls: tuple[str, ...] = ()
    served_model: str | None = None  # http: the `#MODEL` part, if given

    @property
    def location(self) -> str:
        return self.name


def parse_model(text: str, role: str = "model") -> ModelSpec:
    """Turn `--reasoner`/`--perceiver` text into a ModelSpec, or raise ModelSpecError saying why."""
    value = (text or "").strip()
    if not value:
        raise ModelSpecError(f"no {role} was given: pass {VALID_FORMS}")
    if value.startswith(("http://", "https://")):
        return _parse_urls(value, role)
    if value.startswith("vllm:"):
        inner = _parse_local_or_hub(value[len("vllm:") :], role)
        return ModelSpec(kind="vllm", name=inner.name)
    return _parse_local_or_hub(value, role)


def _parse_local_or_hub(value: str, role: str) -> ModelSpec:
    path = Path(os.path.expanduser(value))
    looks_local = value.startswith((".", "/", "~"))
    if path.exists():
        if not path.is_dir():
            raise ModelSpecError(f"{role} '{value}' is a file; pass the folder that holds config.json")
        if not (path / "config.json").is_file():
            raise ModelSpecError(f"{role} folder '{value}' has no config.json; pass a saved transformers model folder")
        return ModelSpec(kind="local", name=str(path.resolve()))
    if looks_local or value.count("/") > 1 or not _HUB_ID.match(value):
        raise ModelSpecError(f"{role} '{value}' is neither an existing folder nor a hub id: pass {VALID_FORMS}")
    return ModelSpec(kind="hub", name=value)


def _parse_urls(value: str, role: str) -> ModelSpec:
    bases, _, model = value.partition("#")
    urls = []
    for raw in bases.split(","):
        url = raw.strip().rstrip("/")
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ModelSpecError(f"{role} URL '{raw.strip()}' is not an http(s) URL with a host; pass {VALID_FORMS}")
        urls.append(url)
    model = model.strip() or None
    return ModelSpec(kind="http", name=value, urls=tuple(urls), served_model=model)
