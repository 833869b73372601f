"""Parse the one string that names a model, in one place.

A model is a Hugging Face hub id (`Qwen/Qwen3-1.7B`) or a local folder (`./models/qwen`). Anything else
fails here with a message listing the valid forms, before any heavy import happens.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$")

VALID_FORMS = (
    "a Hugging Face hub id such as 'Qwen/Qwen3-1.7B', "
    "or a local folder holding config.json and the weights such as './models/Qwen3-1.7B'"
)


class ModelSpecError(ValueError):
    """The model string has no valid form, or names a local folder that does not hold a model."""


@dataclass(frozen=True)
class ModelSpec:
    kind: Literal["hub", "local"]
    name: str

    @property
    def location(self) -> str:
        return self.name


def parse_model(text: str, role: str = "model") -> ModelSpec:
    """Turn `--reasoner`/`--perceiver` text into a ModelSpec, or raise ModelSpecError saying why."""
    value = (text or "").strip()
    if not value:
        raise ModelSpecError(f"no {role} was given: pass {VALID_FORMS}")
    if value.startswith(("http://", "https://")):
        raise ModelSpecError(
            f"{role} '{value}' is a URL; serving models over HTTP is not supported by this version. "
            f"Pass {VALID_FORMS}"
        )
    path = Path(os.path.expanduser(value))
    looks_local = value.startswith((".", "/", "~")) or os.sep in value.rstrip(os.sep) and path.exists()
    if path.exists():
        if not path.is_dir():
            raise ModelSpecError(f"{role} '{value}' is a file; pass the folder that holds config.json")
        if not (path / "config.json").is_file():
            raise ModelSpecError(f"{role} folder '{value}' has no config.json; pass a saved transformers model folder")
        return ModelSpec(kind="local", name=str(path.resolve()))
    if looks_local or value.count("/") > 1 or not _HUB_ID.match(value):
        raise ModelSpecError(f"{role} '{value}' is neither an existing folder nor a hub id: pass {VALID_FORMS}")
    return ModelSpec(kind="hub", name=value)
