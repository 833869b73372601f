"""Text as it is generated, per row of a batched `generate`, for callers that want to show it live.

transformers calls a streamer's `put` with the prompt ids first, then with each step's new token of every
row. Each row with a callback gets its new text; a row stops streaming at its first end-of-turn token (the
rows after it in the batch go on). Text is decoded line by line, so a character split over several tokens
is sent once complete and a long answer is not decoded again from its start at every token.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

TextCallback = Callable[[str], None]


class _Row:
    def __init__(self, tokenizer, callback: TextCallback):
        self.tokenizer = tokenizer
        self.callback = callback
        self.line: list[int] = []
        self.sent = 0
        self.done = False

    def add(self, token: int) -> None:
        self.line.append(token)
        text = self.tokenizer.decode(self.line, skip_special_tokens=True)
        if text.endswith("\ufffd"):
            return  # a character still incomplete
        if len(text) > self.sent:
            self.callback(text[self.sent :])
        self.sent = len(text)
        if text.endswith("\n"):
            self.line, self.sent = [], 0


class RowStreamer:
    """A transformers streamer (put/end) that sends each row's new text to that row's callback."""

    def __init__(self, tokenizer, callbacks: Sequence[TextCallback | None], stop_ids: Sequence[int]):
        self.rows = [_Row(tokenizer, cb) if cb is not None else None for cb in callbacks]
        self.stop_ids = set(stop_ids)
        self.prompt_seen = False

    def put(self, value) -> None:
        if not self.prompt_seen:  # the first call carries the prompts
            self.prompt_seen = True
            return
        tokens = value.reshape(-1).tolist()
        for row, token in zip(self.rows, tokens):
            if row is None or row.done:
                continue
            if token in self.stop_ids:
                row.done = True
                continue
            try:
                row.add(token)
            except Exception:  # a display callback must never break generation
                row.done = True

    def end(self) -> None:
        pass
