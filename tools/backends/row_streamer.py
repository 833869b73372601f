"""Text as it is generated, per row of a batched `generate`, for callers that want to show it live.

transformers calls a streamer's `put` with the prompt ids first, then with each step's new token of every
row. Each row with a callback gets its new text; a row stops streaming at its first end-of-turn token (the
rows after it in the batch go on). Text is decoded line by line, so a character split over several tokens
is sent once complete and a long answer is not decoded again from its start at every token.

Each row also keeps the tokens it was sent (`tokens`). A row whose batch failed is retried alone with those
tokens forced first and given here as `replay`: they rebuild the row's state without being sent again, so
a caller never sees the same text twice and the output it gets starts with the text it was shown.
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
        self.done = False  # its end-of-turn token came: nothing after it is the row's
        self.broken = False  # its callback raised: no more text is sent (tokens are still kept)
        self.tokens: list[int] = []
        self.skip = 0  # replayed tokens the retried generate will produce again, not to be sent twice

    def add(self, token: int, send: bool = True) -> None:
        self.line.append(token)
        text = self.tokenizer.decode(self.line, skip_special_tokens=True)
        if text.endswith("\ufffd"):
            return  # a character still incomplete
        if len(text) > self.sent and send and not self.broken:
            try:
                self.callback(text[self.sent :])
            except Exception:  # noqa: BLE001 - a display callback must never break generation
                self.broken = True
        self.sent = len(text)
        if text.endswith("\n"):
            self.line, self.sent = [], 0


class RowStreamer:
    """A transformers streamer (put/end) that sends each row's new text to that row's callback."""

    def __init__(self, tokenizer, callbacks: Sequence[TextCallback | None], stop_ids: Sequence[int],
                 replay: Sequence[Sequence[int]] | None = None):  # fmt: skip
        self.rows = [_Row(tokenizer, cb) if cb is not None else None for cb in callbacks]
        self.stop_ids = set(stop_ids)
        self.prompt_seen = False
        for row, tokens in zip(self.rows, replay or []):
            if row is not None:
                for token in tokens:
                    self._take(row, token, send=False)
                row.skip = len(tokens)

    def sent_tokens(self, i: int) -> list[int]:
        """The tokens row i was streamed so far (its end-of-turn token included): a retry forces them."""
        row = self.rows[i]
        return list(row.tokens) if row is not None else []

    def put(self, value) -> None:
        if not self.prompt_seen:  # the first call carries the prompts
            self.prompt_seen = True
            return
        tokens = value.reshape(-1).tolist()
        for row, token in zip(self.rows, tokens):
            if row is None or row.done:
                continue
            if row.skip:
                row.skip -= 1
                continue
            self._take(row, token)

    def _take(self, row: _Row, token: int, send: bool = True) -> None:
        row.tokens.append(token)
        if token in self.stop_ids:
            row.done = True
        else:
            row.add(token, send)

    def end(self) -> None:
        pass
