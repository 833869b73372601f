"""The tiny models' tokenizer: a small byte-level BPE trained on a few lines of the project's own prompts,
wrapped as a Qwen3-style fast tokenizer with the Qwen3 chat template (chat_template.jinja).

Every tiny model shares it (a VLM family only changes its image token and markers), so forced decoding and
prompt snapshots see the same ids whichever perceiver is built.
"""

from __future__ import annotations

from pathlib import Path

CHAT_TEMPLATE_PATH = Path(__file__).with_name("chat_template.jinja")

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<video>"]
# Non-special, as in real Qwen3: decode(skip_special_tokens=True) must keep them, or parsing breaks.
PLAIN_ADDED_TOKENS = ["<think>", "</think>", "<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>"]

CORPUS_LINES = [
    "Describe the fine-grained content of the image, including scenes, objects, relationships,",
    "instance location, and any text present. Especially, pay attention to the colour of the car.",
    "You are an excellent text-based reasoning expert. Question: What is shown? Options: A. red B. blue",
    "Please reason step by step, and give the final answer on the last line by itself in the format of",
    'Answer: A Answer: B Answer: C Answer: D {"name": "extract", "arguments": {"request": "the sign"}}',
    "region image description question options letter colour count text object left right top bottom",
    "0123456789 [0.0, 0.25, 0.5, 0.75, 1.0] the a an of in on is are what which how many where why",
    "wait Wait hmm but however maybe now check again other another waiter button nowhere",
]


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
    bpe.train_from_iterator(CORPUS_LINES * 20, trainer=trainer)
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
