"""What lmms-eval gets back for one doc: the response its task scores (the chosen option letter, the visible
answer, or the whole output: the `response` model_arg) and the token counts of both models, which lmms-eval's
efficiency summary sums and `--log_samples` keeps per doc.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from lmms_eval.api.instance import TokenCounts


@dataclass
class AgentTokenCounts(TokenCounts):
    """lmms-eval's token counts (its efficiency summary sums input and output) plus the split by model.

    input_tokens / output_tokens: prompt and generated tokens of every call of both models (thinking included);
    reasoning_tokens: the reasoner's thinking. The per-model fields land in `--log_samples` next to them.
    """

    reasoner_input_tokens: int = 0
    reasoner_output_tokens: int = 0
    perceiver_input_tokens: int = 0
    perceiver_output_tokens: int = 0
    extraction_calls: int = 0

    def to_dict(self) -> dict:
        out = super().to_dict()
        out.update({f.name: getattr(self, f.name) for f in fields(self) if f.name.startswith(("reasoner_",
                    "perceiver_", "extraction_"))})
        return out


def token_counts(result) -> AgentTokenCounts:
    from agent.trace import ExtractStep, ReasonStep

    reasons = [s for s in result.steps if isinstance(s, ReasonStep)]
    extracts = [s for s in result.steps if isinstance(s, ExtractStep)]
    counts = {
        "reasoner_input_tokens": sum(s.prompt_tokens for s in reasons),
        "reasoner_output_tokens": sum(s.output_tokens for s in reasons),
        "perceiver_input_tokens": sum(s.prompt_tokens for s in extracts),
        "perceiver_output_tokens": sum(s.output_tokens for s in extracts),
    }
    return AgentTokenCounts(
        input_tokens=counts["reasoner_input_tokens"] + counts["perceiver_input_tokens"],
        output_tokens=counts["reasoner_output_tokens"] + counts["perceiver_output_tokens"],
        reasoning_tokens=sum(s.thinking_tokens for s in reasons), extraction_calls=result.extraction_calls,
        **counts,
    )  # fmt: skip


def response_of(result, options: list[str], response: str) -> str:
    """What the task's scorer gets: the chosen letter (MC), the final visible answer (open), or more."""
    from tools.backends.output_parsing import split_thinking
    from evals.scoring import extract_choice

    if response == "full":
        return result.final_output
    visible = split_thinking(result.final_output or "")[1].strip()
    if response == "text":
        return visible
    if options:
        letter, _ = extract_choice(result.final_output, options)  # the same rules as `xthink eval` scores by
        return letter or ""
    return result.answer if result.answer_found and result.answer else visible
