"""One eval record per (regime, benchmark, sample): the unit the store appends and reports read."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class SampleRecord(BaseModel):
    """A finished sample: scored, or failed with its reason. Reports are computed from these alone."""

    regime: str
    benchmark: str
    sample_id: str
    category: str
    l2_category: str | None = None
    gold: str
    status: Literal["ok", "error"] = "ok"
    error: str | None = None
    retryable: bool = True  # False for errors in the data itself (a broken image): a rerun cannot fix them
    pred: str | None = None
    correct: bool = False
    method: str = "none"
    raw_output: str = ""
    extraction_calls: int = 0
    thinking_tokens: int = 0
    visible_tokens: int = 0
    perceiver_tokens: int = 0
    seconds: float = 0.0
    trace: str | None = None  # path of the trace JSON, relative to the run folder
    settings_hash: str | None = None  # the settings that made this record (evals/runner.py: settings_hash)
    cached_tokens: int = 0  # prompt tokens of both models whose keys/values were reused
    cycle: int | str | None = None  # HR-Bench: the option order of this row's question (a label: 0-3, or text)
    option_order: list[int] | None = None  # V* release folder: the recorded option shuffle
    tool_calls: int = 0  # iterative: tool calls the reasoner wrote, malformed ones included
    invalid_calls: int = 0  # of those, malformed or refused for bad arguments
    used_region: bool = False  # iterative: at least one extraction zoomed into a region
    repaired_boxes: int = 0  # regions that were repaired before use
    budget_spent: bool = False  # iterative: the extraction budget ran out

    @property
    def key(self) -> str:
        return record_key(self.regime, self.benchmark, self.sample_id)

    @property
    def scored(self) -> bool:
        return self.status == "ok"

    @property
    def store_key(self) -> str:
        """Identity in the run store: the same sample under other settings is another record."""
        return f"{self.key}#{self.settings_hash or ''}"


def record_key(regime: str, benchmark: str, sample_id: str) -> str:
    return f"{regime}/{benchmark}/{sample_id}"
