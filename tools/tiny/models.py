"""Build tiny random-weight models that load through the same `from_pretrained` code as real ones.

Why this lives in the product and not only in tests: `xthink selftest` must check an install offline,
without downloading anything, so it needs models it can make itself. The test suite uses the very same
builders, so what the selftest exercises is what CI exercises.

Every builder writes an ordinary Hugging Face folder (config, weights, tokenizer, processor, chat
template) and returns its path; nothing here is special-cased by the loading code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tools.tiny.configs import save_model, text_config
from tools.tiny.idefics3 import build_idefics3
from tools.tiny.internvl import build_internvl
from tools.tiny.llava import build_llava, build_llava_onevision
from tools.tiny.qwen_vl import build_qwen2_5_vl, build_qwen3_vl
from tools.tiny.tokenizer import build_tokenizer


@dataclass(frozen=True)
class TinyModels:
    """Paths of one set of tiny models: a reasoner and one folder per VLM family."""

    reasoner: Path
    perceivers: dict[str, Path]


def build_reasoner(out_dir: Path, seed: int = 0) -> Path:
    """A 2-layer Qwen3ForCausalLM with the tiny tokenizer and a Qwen3-style chat template."""
    import torch
    from transformers import Qwen3ForCausalLM

    torch.manual_seed(seed)
    tok = build_tokenizer(out_dir)
    model = Qwen3ForCausalLM(text_config(len(tok), tok))
    return save_model(model, tok, out_dir)


PERCEIVER_BUILDERS = {
    "llava_onevision": build_llava_onevision,
    "llava": build_llava,
    "idefics3": build_idefics3,
    "qwen2_5_vl": build_qwen2_5_vl,
    "qwen3_vl": build_qwen3_vl,
    "internvl": build_internvl,
}


def build_all(root: Path, families: tuple[str, ...] = tuple(PERCEIVER_BUILDERS)) -> TinyModels:
    """Build the reasoner and one perceiver per requested VLM family under `root`."""
    root = Path(root)
    reasoner = build_reasoner(root / "reasoner")
    perceivers = {name: PERCEIVER_BUILDERS[name](root / name) for name in families}
    return TinyModels(reasoner=reasoner, perceivers=perceivers)
