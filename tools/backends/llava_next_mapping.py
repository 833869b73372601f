"""How the paper's perception checkpoints (LLaVA-NeXT training format) map onto transformers'
`LlavaOnevisionForConditionalGeneration` (loadable by the transformers backend and by vLLM): tensors,
configs, tokenizer, processor, built in memory. tools/backends/checkpoint_convert.py writes the result into
a folder; tools/backends/conversion_cache.py keeps one conversion per source.

Facts of the source layout (from the authors' converter and transformers' LLaVA-OneVision script; the
code is our own):
- keys: `model.vision_tower.vision_tower.vision_model.*` (SigLIP), `model.mm_projector.0/.2` (the two
  projector linears, GELU between), `model.embed_tokens/layers/norm` (Qwen3), `model.image_newline`,
  `lm_head` (absent when tied to the embeddings);
- the trainer drops SigLIP's last encoder layer and its head, so the vision tower holds 26 of so400m's
  27 layers and image features are the last hidden state of those 26 (`vision_feature_layer=-1`,
  `vision_feature_select_strategy="full"`): 729 tokens per 384px crop;
- the text config is the checkpoint's own config.json (a LLaVA config extending Qwen3's); the vision
  config comes from `mm_vision_tower` and is checked against the tensor shapes; the AnyRes grid from
  `image_grid_pinpoints`; `<image>` and `<video>` are added to the Qwen3 tokenizer; the conversation
  template is LLaVA-NeXT's qwen_1_5.

Every source tensor must land in exactly one target tensor or be on IGNORED_SOURCE, and every target
tensor must be filled (or be on FILLABLE_TARGET): anything else is an error, not a warning.
"""

from __future__ import annotations

import re
from pathlib import Path

BASE_TOKENIZERS = {1024: "Qwen/Qwen3-0.6B", 2048: "Qwen/Qwen3-1.7B", 2560: "Qwen/Qwen3-4B"}

RENAMES = [  # source prefix -> target prefix (in-memory state_dict names of transformers 5)
    ("model.vision_tower.vision_tower.vision_model.", "model.vision_tower."),
    ("model.mm_projector.0.", "model.multi_modal_projector.linear_1."),
    ("model.mm_projector.2.", "model.multi_modal_projector.linear_2."),
    ("model.image_newline", "model.image_newline"),
    ("model.embed_tokens.", "model.language_model.embed_tokens."),
    ("model.layers.", "model.language_model.layers."),
    ("model.norm.", "model.language_model.norm."),
    ("lm_head.", "lm_head."),
]
IGNORED_SOURCE = {  # source tensors the target architecture does not use, and why
    r"^model\.vision_tower\.vision_tower\.vision_model\.head\.": "SigLIP's pooling head (LLaVA-NeXT drops it)",
    r"rotary_emb\.inv_freq$": "rotary frequencies are recomputed from the config",
}
FILLABLE_TARGET = {  # target tensors a checkpoint may lack, and what they are set to
    "model.vision_tower.post_layernorm.weight": "ones: the features are read before this norm",
    "model.vision_tower.post_layernorm.bias": "zeros: the features are read before this norm",
}

QWEN_1_5_TEMPLATE = (
    "{%- if messages[0]['role'] != 'system' -%}{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
    "{%- if message['content'] is string -%}{{- message['content'] -}}"
    "{%- else -%}{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'image' -%}{{- '<image>\\n' -}}"
    "{%- elif part['type'] == 'video' -%}{{- '<video>\\n' -}}"
    "{%- elif part['type'] == 'text' -%}{{- part['text'] -}}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)


class ConversionError(ValueError):
    """The source checkpoint cannot be converted exactly; the message names the tensors or fields."""


def target_name(source: str) -> str | None:
    for old, new in RENAMES:
        if source.startswith(old):
            return new + source[len(old) :]
    return None


def ignored_reason(source: str) -> str | None:
    return next((why for pattern, why in IGNORED_SOURCE.items() if re.search(pattern, source)), None)


def load_source_tensors(folder: Path) -> dict:
    from safetensors.torch import load_file

    files = sorted(folder.glob("*.safetensors"))
    if files:
        tensors: dict = {}
        for file in files:
            tensors.update(load_file(str(file)))
        return tensors
    bins = sorted(folder.glob("pytorch_model*.bin"))
    if not bins:
        raise ConversionError(f"'{folder}' holds no *.safetensors or pytorch_model*.bin weights")
    import torch

    tensors = {}
    for file in bins:
        tensors.update(torch.load(file, map_location="cpu", weights_only=True))
    return tensors


def text_config(source: dict):
    from transformers import Qwen3Config

    known = set(Qwen3Config().to_dict())
    fields = {k: v for k, v in source.items() if k in known and k not in ("architectures", "model_type")}
    return Qwen3Config(**fields)


def vision_config(source: dict, tensors: dict):
    """SigLIP config from `mm_vision_tower`, with the layer count of the checkpoint, checked against shapes."""
    from transformers import AutoConfig

    tower = source.get("mm_vision_tower")
    if not tower:
        raise ConversionError("config.json has no 'mm_vision_tower'; cannot tell the vision tower's config")
    try:
        config = AutoConfig.from_pretrained(tower)
    except Exception as exc:  # noqa: BLE001
        raise ConversionError(
            f"could not load the vision tower config '{tower}' ({exc}); pass a local SigLIP folder by editing "
            "mm_vision_tower or download it first"
        ) from None
    vision = getattr(config, "vision_config", config)
    prefix = "model.vision_tower.vision_tower.vision_model."
    layers = {int(m.group(1)) for k in tensors if (m := re.match(re.escape(prefix) + r"encoder\.layers\.(\d+)\.", k))}
    if not layers:
        raise ConversionError("the checkpoint holds no vision tower layers (model.vision_tower.vision_tower.*)")
    vision.num_hidden_layers = max(layers) + 1
    vision.vision_use_head = False
    patch = tensors[prefix + "embeddings.patch_embedding.weight"]
    positions = tensors[prefix + "embeddings.position_embedding.weight"]
    expected = (vision.hidden_size, vision.patch_size, (vision.image_size // vision.patch_size) ** 2)
    found = (patch.shape[0], patch.shape[-1], positions.shape[0])
    if expected != found:
        raise ConversionError(
            f"vision tower '{tower}' (hidden, patch, positions) = {expected} does not match the checkpoint's {found}"
        )
    return vision


def grid_pinpoints(source: dict, crop: int) -> list[list[int]]:
    """`image_grid_pinpoints` as [[h, w], ...]: a list already, or LLaVA's "(1x1),...,(6x6)" in crops."""
    value = source.get("image_grid_pinpoints")
    if isinstance(value, list) and value:
        return [[int(h), int(w)] for h, w in value]
    if isinstance(value, str):
        pairs = [(int(a), int(b)) for a, b in re.findall(r"\((\d+)x(\d+)\)", value)]
        if len(pairs) >= 2:
            (r0, c0), (r1, c1) = pairs[0], pairs[-1]
            return [[r * crop, c * crop] for r in range(r0, r1 + 1) for c in range(c0, c1 + 1)]
        return [[r * crop, c * crop] for r, c in pairs]
    return [[crop, crop]]


def load_tokenizer(folder: Path, source: dict, tokenizer: str | None):
    """The checkpoint's tokenizer when it ships one, else the base Qwen3 model's; `<image>`/`<video>` added."""
    from transformers import AutoTokenizer

    if tokenizer is None and not any((folder / f).exists() for f in ("tokenizer.json", "tokenizer_config.json")):
        tokenizer = BASE_TOKENIZERS.get(int(source.get("hidden_size", 0)))
        if tokenizer is None:
            raise ConversionError("the checkpoint ships no tokenizer and its size matches no Qwen3 base; pass --tokenizer")
    try:
        tok = AutoTokenizer.from_pretrained(tokenizer or str(folder))
    except Exception as exc:  # noqa: BLE001
        raise ConversionError(f"could not load the tokenizer '{tokenizer or folder}': {exc}") from None
    tok.add_tokens(["<image>", "<video>"], special_tokens=True)
    tok.chat_template = QWEN_1_5_TEMPLATE
    return tok


def map_tensors(tensors: dict, targets: dict, tied: bool) -> tuple[dict, dict[str, str], dict[str, str]]:
    """Place every source tensor; returns (target state dict, ignored sources, filled targets)."""
    import torch

    out: dict = {}
    ignored: dict[str, str] = {}
    unknown = []
    for name, tensor in tensors.items():
        target = target_name(name)
        if target is None or target not in targets:
            reason = ignored_reason(name)
            if reason is None:
                unknown.append(name)
            else:
                ignored[name] = reason
            continue
        if target in out:
            raise ConversionError(f"two source tensors map to '{target}'")
        if tuple(tensor.shape) != tuple(targets[target].shape):
            if target.endswith(("embed_tokens.weight", "lm_head.weight")) and tensor.shape[1:] == targets[target].shape[1:]:
                tensor = _resize_rows(tensor, targets[target].shape[0])
            else:
                raise ConversionError(f"'{name}' has shape {tuple(tensor.shape)}, '{target}' needs "
                                      f"{tuple(targets[target].shape)}")
        out[target] = tensor
    if unknown:
        raise ConversionError(f"{len(unknown)} source tensor(s) have no place in the target: {', '.join(unknown[:8])}")
    if "lm_head.weight" not in out and tied and "model.language_model.embed_tokens.weight" in out:
        out["lm_head.weight"] = out["model.language_model.embed_tokens.weight"]
    filled = {}
    for name, reason in FILLABLE_TARGET.items():
        if name in targets and name not in out:
            out[name] = (torch.ones if name.endswith("weight") else torch.zeros)(targets[name].shape)
            filled[name] = reason
    missing = sorted(set(targets) - set(out))
    if missing:
        raise ConversionError(f"{len(missing)} target tensor(s) would stay uninitialised: {', '.join(missing[:8])}")
    return out, ignored, filled


def _resize_rows(tensor, rows: int):
    """Pad (with the mean row) or cut an embedding matrix to `rows`: the added tokens get the mean embedding."""
    import torch

    if tensor.shape[0] >= rows:
        return tensor[:rows].clone()
    pad = tensor.float().mean(dim=0, keepdim=True).to(tensor.dtype).expand(rows - tensor.shape[0], -1)
    return torch.cat([tensor, pad], dim=0)


def build_target(source: dict, tensors: dict, tok):
    from transformers import (
        GenerationConfig,
        LlavaOnevisionConfig,
        LlavaOnevisionForConditionalGeneration,
        LlavaOnevisionImageProcessor,
        LlavaOnevisionProcessor,
        LlavaOnevisionVideoProcessor,
    )

    text = text_config(source)
    vision = vision_config(source, tensors)
    text.vocab_size = max(text.vocab_size, len(tok))
    tied = bool(source.get("tie_word_embeddings", False)) or "lm_head.weight" not in tensors
    crop = vision.image_size
    pinpoints = grid_pinpoints(source, crop)
    aspect = source.get("image_aspect_ratio") or "anyres_max_9"
    config = LlavaOnevisionConfig(
        vision_config=vision.to_dict(), text_config=text.to_dict(),
        image_token_index=tok.convert_tokens_to_ids("<image>"), video_token_index=tok.convert_tokens_to_ids("<video>"),
        vision_feature_select_strategy="full", vision_feature_layer=-1, image_grid_pinpoints=pinpoints,
        vision_aspect_ratio=aspect if aspect.startswith("anyres") else "anyres_max_9", tie_word_embeddings=tied,
    )  # fmt: skip
    dtype = next(iter(tensors.values())).dtype
    model = LlavaOnevisionForConditionalGeneration._from_config(config, dtype=dtype)
    mapped, ignored, filled = map_tensors(tensors, model.state_dict(), tied)
    model.load_state_dict({k: v.to(dtype) for k, v in mapped.items()}, strict=True)
    eos = [tok.convert_tokens_to_ids("<|im_end|>")]
    model.generation_config = GenerationConfig(eos_token_id=eos, pad_token_id=tok.pad_token_id or eos[0])
    size = {"height": crop, "width": crop}
    mean, std = [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]  # SigLIP normalisation
    processor = LlavaOnevisionProcessor(
        image_processor=LlavaOnevisionImageProcessor(size=size, image_grid_pinpoints=pinpoints, image_mean=mean,
                                                     image_std=std),
        video_processor=LlavaOnevisionVideoProcessor(size=size, image_mean=mean, image_std=std),
        tokenizer=tok, num_image_tokens=(crop // vision.patch_size) ** 2, vision_feature_select_strategy="full",
        chat_template=QWEN_1_5_TEMPLATE, vision_aspect_ratio=config.vision_aspect_ratio,
    )  # fmt: skip
    return model, processor, len(mapped), ignored, filled
