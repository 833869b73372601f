"""Convert one of the paper's perception checkpoints into a transformers folder (`xthink convert`).

The mapping itself is tools/backends/llava_next_mapping.py; this writes its result where it was asked, safely:
the destination must be new, empty, or an earlier conversion (never a user's folder), and the model is
written into a temporary sibling and renamed into place, so no reader ever sees a half-written folder.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tools.backends.llava_next_mapping import ConversionError, build_target, load_source_tensors, load_tokenizer
from tools.files.folders import NotOurFolderError, claim_folder

CONVERSION_RECORD = "conversion.json"  # written last into a conversion: marks a folder as one


@dataclass(frozen=True)
class ConversionReport:
    dest: Path
    mapped: int
    ignored: dict[str, str]
    filled: dict[str, str]


def resolve_source(source: str) -> Path:
    """A local folder as is; a hub id downloaded (or found in the hub cache) with huggingface_hub."""
    path = Path(source).expanduser()
    if path.exists():
        return path
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(source))
    except Exception as exc:  # noqa: BLE001
        raise ConversionError(
            f"could not fetch '{source}' from the hub ({exc}); download it elsewhere "
            f"(hf download {source} --local-dir ./{source.rsplit('/', 1)[-1]}) and pass that folder"
        ) from None


def convert(source: str, dest: Path, tokenizer: str | None = None) -> ConversionReport:
    """Convert one checkpoint; writes config, weights, processor and chat template into `dest`.

    `dest` must be new, empty, or an earlier conversion (it holds conversion.json): never a user's folder.
    The model is written into a temporary sibling and renamed into place, so no reader (another process,
    a run killed mid-write) ever sees a half-written folder.
    """
    dest = Path(dest)
    try:
        claim_folder(dest, "OUT", "a converted model (no conversion.json)", marker=CONVERSION_RECORD)
    except NotOurFolderError as exc:
        raise ConversionError(str(exc)) from None
    folder = resolve_source(source)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise ConversionError(f"'{folder}' has no config.json")
    raw = json.loads(config_path.read_text())
    if "mm_vision_tower" not in raw:
        raise ConversionError(f"'{source}' is not a LLaVA-NeXT checkpoint (config.json has no mm_vision_tower)")
    if raw.get("mm_projector_type", "mlp2x_gelu") != "mlp2x_gelu":
        raise ConversionError(f"projector type '{raw['mm_projector_type']}' is not mlp2x_gelu; it cannot be mapped")
    tensors = load_source_tensors(folder)
    tok = load_tokenizer(folder, raw, tokenizer)
    model, processor, mapped, ignored, filled = build_target(raw, tensors, tok)
    with _staging(dest) as staging:
        model.save_pretrained(staging)
        processor.save_pretrained(staging)
        (staging / CONVERSION_RECORD).write_text(json.dumps(
            {"source": source, "mapped": mapped, "ignored": ignored, "filled": filled}, indent=2))
    return ConversionReport(dest=dest, mapped=mapped, ignored=ignored, filled=filled)


@contextmanager
def _staging(dest: Path):
    """A temporary folder beside `dest`, renamed onto it when the block succeeds, removed when it fails.

    An earlier conversion in `dest` is moved aside first and removed after the rename; an empty `dest`
    is removed (rename cannot replace a folder).
    """
    import shutil
    import tempfile

    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        yield staging
        old = None
        if dest.is_dir() and any(dest.iterdir()):
            old = staging.with_suffix(".old")
            dest.rename(old)
        elif dest.is_dir():
            dest.rmdir()
        staging.rename(dest)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
