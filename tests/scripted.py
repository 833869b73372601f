"""Forced decoding for the tiny reasoner (tools/tiny/forced.py): real `generate` calls that emit scripted text.

This is how the tests get deterministic trajectories through the real generate -> parse -> tool ->
perceiver -> reasoner path. `Script` takes the next entry per generate call and keeps the requests seen.
"""

from __future__ import annotations

from transformers import LogitsProcessor

from tools.tiny.forced import ForceTokens, Script, think, tool_call  # noqa: F401 - the tests' scripting API


class Constant:
    """A factory that makes every reasoner call emit the same text (thread-safe: no shared state)."""

    def __init__(self, text: str):
        self.text = text

    def __call__(self, request, tokenizer) -> list[LogitsProcessor]:
        ids = tokenizer.encode(self.text, add_special_tokens=False)
        return [ForceTokens(ids, tokenizer.convert_tokens_to_ids("<|im_end|>"))]
