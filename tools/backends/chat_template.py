"""Each role's prompt as the model's own chat template renders it, in one place for every backend that renders.

Reasoner: the conversation with its tools and the `enable_thinking` switch, so a real Qwen3 checkpoint gets
exactly the layout it was trained on; the transformers and vLLM backends render with this function, so both
generate from the same text. Perceiver: one user turn, the images first and the instruction last, thinking
off (templates that know `enable_thinking` honour it; others ignore it); the transformers perceiver and the
VET collator (tools/vet/collate.py) render with it, so training and inference prompts agree. The HTTP
backends send messages instead and the server renders them.
"""

from __future__ import annotations

from tools.backends.base import PerceiveRequest, ReasonRequest


def render_reasoner_prompt(tokenizer, request: ReasonRequest) -> str:
    return tokenizer.apply_chat_template(
        [m.to_template() for m in request.messages],
        tools=list(request.tools) or None,
        add_generation_prompt=True,
        tokenize=False,
        enable_thinking=request.settings.thinking,
    )


def render_perceiver_prompt(processor, request: PerceiveRequest) -> str:
    """The perceiver's prompt text: one user turn (images first, then the instruction), thinking off."""
    content = [{"type": "image"} for _ in request.images] + [{"type": "text", "text": request.instruction}]
    return processor.apply_chat_template(
        [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False, enable_thinking=False
    )
