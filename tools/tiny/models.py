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

CHAT_TEMPLATE_PATH = Path(__file__).with_name("chat_template.jinja")

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<video>"]
# Non-special, as in real Qwen3: decode(skip_special_tokens=True) must keep them, or parsing breaks.
PLAIN_ADDED_TOKENS = ["<think>", "</think>", "<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>"]

_CORPUS_LINES = [
    "Describe the fine-grained content of the image, including scenes, objects, relationships,",
    "instance location, and any text present. Especially, pay attention to the colour of the car.",
    "You are an excellent text-based reasoning expert. Question: What is shown? Options: A. red B. blue",
    "Please reason step by step, and give the final answer on the last line by itself in the format of",
    'Answer: A Answer: B Answer: C Answer: D {"name": "extract", "arguments": {"request": "the sign"}}',
    "region image description question options letter colour count text object left right top bottom",
    "0123456789 [0.0, 0.25, 0.5, 0.75, 1.0] the a an of in on is are what which how many where why",
    "wait Wait hmm but however maybe now check again other another waiter button nowhere",
]


@dataclass(frozen=True)
class TinyModels:
    """Paths of one set of tiny models: a reasoner and one folder per VLM family."""

    reasoner: Path
    perceivers: dict[str, Path]


def build_tokenizer(
    out_dir: Path | None = None,
    image_token: str = "<image>",
    image_placeholder: str = "<image>\n",
    extra_special: tuple[str, ...] = (),
    named_special: dict[str, str] | None = None,
):
    """Train a small byte-level BPE and wrap it as a Qwen3-style fast tokenizer with a chat template.

    `image_token` is what the VLM's processor expands; `image_placeholder` is what the chat template
    writes for an image part (Qwen-VL wraps its pad token in vision start/end markers).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=SPECIAL_TOKENS + [t for t in (image_token, *extra_special) if t not in SPECIAL_TOKENS],
        show_progress=False,
    )
    bpe.train_from_iterator(_CORPUS_LINES * 20, trainer=trainer)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens={"image_token": image_token, "video_token": "<video>", **(named_special or {})},
    )
    tok.add_tokens(PLAIN_ADDED_TOKENS, special_tokens=False)
    placeholder = "'" + image_placeholder.replace("\n", "\\n") + "'"
    tok.chat_template = CHAT_TEMPLATE_PATH.read_text().replace("'<image>\\n'", placeholder)
    if out_dir is not None:
        tok.save_pretrained(out_dir)
    return tok


def _text_config(vocab_size: int, tok):
    from transformers import Qwen3Config

    return Qwen3Config(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=8192,
        tie_word_embeddings=False,
        bos_token_id=tok.convert_tokens_to_ids("<|endoftext|>"),
        eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tok.pad_token_id,
    )


def _vision_config(image_size: int, patch_size: int = 16):
    from transformers import SiglipVisionConfig

    return SiglipVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=image_size,
        patch_size=patch_size,
        vision_use_head=False,
    )


def _save_model(model, tok, out_dir: Path) -> Path:
    from transformers import GenerationConfig

    eos = [tok.convert_tokens_to_ids("<|im_end|>"), tok.convert_tokens_to_ids("<|endoftext|>")]
    model.generation_config = GenerationConfig(eos_token_id=eos, pad_token_id=tok.pad_token_id)
    model.save_pretrained(out_dir)
    return out_dir


def build_reasoner(out_dir: Path, seed: int = 0) -> Path:
    """A 2-layer Qwen3ForCausalLM with the tiny tokenizer and a Qwen3-style chat template."""
    import torch
    from transformers import Qwen3ForCausalLM

    torch.manual_seed(seed)
    tok = build_tokenizer(out_dir)
    model = Qwen3ForCausalLM(_text_config(len(tok), tok))
    return _save_model(model, tok, out_dir)


def build_llava_onevision(out_dir: Path, seed: int = 0) -> Path:
    """LLaVA-OneVision (the paper's perceiver architecture): SigLIP + projector + Qwen3, AnyRes grid."""
    import torch
    from transformers import (
        LlavaOnevisionConfig,
        LlavaOnevisionForConditionalGeneration,
        LlavaOnevisionImageProcessor,
        LlavaOnevisionProcessor,
        LlavaOnevisionVideoProcessor,
    )

    torch.manual_seed(seed)
    tok = build_tokenizer()
    pinpoints = [[32, 32], [32, 64], [64, 32], [64, 64]]
    config = LlavaOnevisionConfig(
        vision_config=_vision_config(32),
        text_config=_text_config(len(tok), tok),
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        video_token_index=tok.convert_tokens_to_ids("<video>"),
        image_grid_pinpoints=pinpoints,
        vision_feature_select_strategy="full",
        tie_word_embeddings=False,
    )
    model = LlavaOnevisionForConditionalGeneration(config)
    size = {"height": 32, "width": 32}
    processor = LlavaOnevisionProcessor(
        image_processor=LlavaOnevisionImageProcessor(size=size, image_grid_pinpoints=pinpoints),
        video_processor=LlavaOnevisionVideoProcessor(size=size),
        tokenizer=tok,
        num_image_tokens=4,
        vision_feature_select_strategy="full",
        chat_template=tok.chat_template,
    )
    processor.save_pretrained(out_dir)
    return _save_model(model, tok, out_dir)


def build_llava(out_dir: Path, seed: int = 0) -> Path:
    """Classic Llava with a SigLIP tower: one 64px image becomes 16 image tokens."""
    import torch
    from transformers import LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor, SiglipImageProcessor

    torch.manual_seed(seed)
    tok = build_tokenizer()
    config = LlavaConfig(
        vision_config=_vision_config(64),
        text_config=_text_config(len(tok), tok),
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="full",
        vision_feature_layer=-1,
        tie_word_embeddings=False,
    )
    model = LlavaForConditionalGeneration(config)
    processor = LlavaProcessor(
        image_processor=SiglipImageProcessor(size={"height": 64, "width": 64}),
        tokenizer=tok,
        patch_size=16,
        vision_feature_select_strategy="full",
        num_additional_image_tokens=0,
        chat_template=tok.chat_template,
    )
    processor.save_pretrained(out_dir)
    return _save_model(model, tok, out_dir)


def build_idefics3(out_dir: Path, seed: int = 0) -> Path:
    """Idefics3, the SmolVLM architecture: SigLIP-style tower, pixel shuffle, a Llama text model."""
    import torch
    from transformers import (
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3ImageProcessor,
        Idefics3Processor,
        Idefics3VisionConfig,
        LlamaConfig,
    )

    torch.manual_seed(seed)
    grid = [f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)]
    extra = ("<fake_token_around_image>", "<global-img>", "<end_of_utterance>", *grid)
    tok = build_tokenizer(extra_special=extra)
    text = _text_config(len(tok), tok).to_dict()
    text = LlamaConfig(**{k: v for k, v in text.items() if k in LlamaConfig().to_dict() or k == "head_dim"})
    vision = Idefics3VisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32, patch_size=16
    )
    config = Idefics3Config(
        vision_config=vision,
        text_config=text,
        scale_factor=2,
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        tie_word_embeddings=False,
    )
    model = Idefics3ForConditionalGeneration(config)
    processor = Idefics3Processor(
        image_processor=Idefics3ImageProcessor(
            size={"longest_edge": 64}, max_image_size={"longest_edge": 32}, do_image_splitting=True
        ),
        tokenizer=tok,
        image_seq_len=1,
        chat_template=tok.chat_template,
    )
    processor.save_pretrained(out_dir)
    return _save_model(model, tok, out_dir)


def _qwen_vl_tokenizer():
    """The Qwen-VL tokenizer layout: an image is `<|vision_start|><|image_pad|><|vision_end|>`."""
    markers = ("<|vision_start|>", "<|vision_end|>", "<|video_pad|>")
    return build_tokenizer(
        image_token="<|image_pad|>",
        image_placeholder="<|vision_start|><|image_pad|><|vision_end|>",
        extra_special=markers,
    )


def _qwen_vl_text(tok) -> dict:
    """A 2-layer text model; mrope sections sum to head_dim / 2 (16 / 2)."""
    return {
        "vocab_size": len(tok), "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 8192,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
        "eos_token_id": tok.convert_tokens_to_ids("<|im_end|>"), "pad_token_id": tok.pad_token_id,
    }  # fmt: skip


def _qwen_vl_token_ids(tok) -> dict:
    return {
        "image_token_id": tok.convert_tokens_to_ids("<|image_pad|>"),
        "video_token_id": tok.convert_tokens_to_ids("<|video_pad|>"),
        "vision_start_token_id": tok.convert_tokens_to_ids("<|vision_start|>"),
        "vision_end_token_id": tok.convert_tokens_to_ids("<|vision_end|>"),
    }


def _save_qwen_vl(model, tok, processor_class, patch_size: int, out_dir: Path) -> Path:
    """Save a Qwen-VL model with its processor: 4 to 16 merged 2x2 patches per image."""
    from transformers import Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    side = patch_size * 2
    pixels = {"shortest_edge": side * side * 4, "longest_edge": side * side * 16}
    grid = dict(size=pixels, patch_size=patch_size, merge_size=2, temporal_patch_size=2)
    processor = processor_class(
        image_processor=Qwen2VLImageProcessor(**grid),
        video_processor=Qwen2VLVideoProcessor(**grid),
        tokenizer=tok,
        chat_template=tok.chat_template,
    )
    processor.save_pretrained(out_dir)
    return _save_model(model, tok, out_dir)


def build_qwen2_5_vl(out_dir: Path, seed: int = 0) -> Path:
    """Qwen2.5-VL: a windowed ViT with 2x2 patch merging and multimodal RoPE over a Qwen2 text model."""
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor

    torch.manual_seed(seed)
    tok = _qwen_vl_tokenizer()
    vision = {
        "depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
        "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 56,
        "fullatt_block_indexes": [1],
    }  # fmt: skip
    config = Qwen2_5_VLConfig(text_config=_qwen_vl_text(tok), vision_config=vision, tie_word_embeddings=False,
                              **_qwen_vl_token_ids(tok))  # fmt: skip
    model = Qwen2_5_VLForConditionalGeneration(config)
    return _save_qwen_vl(model, tok, Qwen2_5_VLProcessor, 14, out_dir)


def build_qwen3_vl(out_dir: Path, seed: int = 0) -> Path:
    """Qwen3-VL: a ViT with learned (interpolated) position embeddings, 2x2 merging and DeepStack (vision
    features added to early text layers), interleaved multimodal RoPE over a Qwen3 text model."""
    import torch
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration, Qwen3VLProcessor

    torch.manual_seed(seed)
    tok = _qwen_vl_tokenizer()
    text = _qwen_vl_text(tok)
    text["head_dim"] = 16  # Qwen3 sets it apart from hidden_size / heads (default 128)
    text["bos_token_id"] = tok.convert_tokens_to_ids("<|endoftext|>")  # the default is the real Qwen id
    text["rope_parameters"] = {**text["rope_parameters"], "mrope_interleaved": True}
    vision = {
        "depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
        "patch_size": 16, "spatial_merge_size": 2, "temporal_patch_size": 2, "num_position_embeddings": 64,
        "deepstack_visual_indexes": [0],
    }  # fmt: skip
    config = Qwen3VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=False,
                           **_qwen_vl_token_ids(tok))  # fmt: skip
    model = Qwen3VLForConditionalGeneration(config)
    return _save_qwen_vl(model, tok, Qwen3VLProcessor, 16, out_dir)


def build_internvl(out_dir: Path, seed: int = 0) -> Path:
    """InternVL in transformers' `-hf` layout (the paper's InternVL2.5 end-to-end row): an InternViT tower,
    pixel-shuffle downsampling and an MLP projector over a Qwen2 text model; images cut into tiles."""
    import torch
    from transformers import (
        GotOcr2ImageProcessor,
        InternVLConfig,
        InternVLForConditionalGeneration,
        InternVLProcessor,
        InternVLVideoProcessor,
        InternVLVisionConfig,
        Qwen2Config,
    )

    torch.manual_seed(seed)
    markers = {"start_image_token": "<img>", "end_image_token": "</img>", "context_image_token": "<IMG_CONTEXT>"}
    tok = build_tokenizer(image_token="<IMG_CONTEXT>", image_placeholder="<IMG_CONTEXT>\n",
                          extra_special=("<img>", "</img>"), named_special=markers)  # fmt: skip
    text = Qwen2Config(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=8192, tie_word_embeddings=False,
        eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"), pad_token_id=tok.pad_token_id,
    )  # fmt: skip
    vision = InternVLVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                                  image_size=[32, 32], patch_size=[16, 16])  # fmt: skip
    config = InternVLConfig(vision_config=vision, text_config=text, downsample_ratio=0.5, image_seq_length=1,
                            image_token_id=tok.convert_tokens_to_ids("<IMG_CONTEXT>"), tie_word_embeddings=False)
    model = InternVLForConditionalGeneration(config)
    size = {"height": 32, "width": 32}
    processor = InternVLProcessor(
        image_processor=GotOcr2ImageProcessor(size=size, crop_to_patches=True, min_patches=1, max_patches=4),
        video_processor=InternVLVideoProcessor(size=size),
        tokenizer=tok,
        image_seq_length=1,
        chat_template=tok.chat_template,
    )
    processor.save_pretrained(out_dir)
    return _save_model(model, tok, out_dir)


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
