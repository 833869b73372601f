"""One thread feeds each in-process vLLM `LLM`: concurrent callers' requests become one `generate` call.

Why: vLLM's offline `LLM` is not thread-safe. Two threads inside `generate` at once step the same engine
and each collects whatever requests finish, so outputs get mixed between callers. `xthink eval` calls a
model from up to 32 threads, so every call goes through a MicroBatcher (tools/backends/batcher.py), as
the transformers engines do: the worker thread is the only one that enters the `LLM`, and whatever
requests arrived while it was busy go into its next call, one SamplingParams per request, so each keeps
its own sampling, seed, NoWait bias and token limit (vLLM schedules them together inside the call).

Reasoner prompts (rendered text, `generate`) and perceiver conversations (`chat`) on one `LLM` share its
one engine; a gathered batch that holds both makes one call of each kind, in the same thread.
Everything here is plain Python over duck-typed `LLM` outputs, so it is tested without vLLM installed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from tools.backends.batcher import MicroBatcher
from tools.backends.options import EngineOptions


@dataclass(frozen=True)
class Job:
    """One request for the engine: a rendered prompt for `generate`, or a conversation for `chat`."""

    prompt: str | list[dict]
    params: dict  # SamplingParams keyword arguments of this request alone
    chat_kwargs: dict = field(default_factory=dict)  # `chat` only, e.g. chat_template_kwargs

    @property
    def is_chat(self) -> bool:
        return not isinstance(self.prompt, str)


@dataclass(frozen=True)
class Completion:
    """What one request got back, read off vLLM's RequestOutput."""

    text: str
    prompt_tokens: int
    output_tokens: int
    finish: str  # "stop" or "length"


def completion(output: Any) -> Completion:
    """A RequestOutput (one sample per request) as a Completion."""
    sample = output.outputs[0]
    finish = "length" if sample.finish_reason == "length" else "stop"
    return Completion(sample.text, len(output.prompt_token_ids or ()), len(sample.token_ids), finish)


class VllmEngine:
    """The only caller of one `LLM`; `submit` may be called from any number of threads."""

    def __init__(self, llm: Any, make_params: Callable[..., Any], options: EngineOptions = EngineOptions(),
                 name: str = "vllm-engine"):  # fmt: skip
        self.llm = llm
        self.make_params = make_params  # vllm.SamplingParams
        self.batcher: MicroBatcher[Job, Completion] = MicroBatcher(
            self._run, options.max_batch, options.batch_wait_ms / 1000, name=name
        )

    def submit(self, jobs: Sequence[Job]) -> list[Completion]:
        """Run `jobs`, possibly in one call with other threads' jobs; results in the order given."""
        return self.batcher.submit(list(jobs))

    def _run(self, jobs: list[Job]) -> list[Completion]:
        """The worker thread: one `generate` for the prompts, one `chat` per set of chat options."""
        results: dict[int, Completion] = {}
        for indices in _groups(jobs):
            group = [jobs[i] for i in indices]
            params = [self.make_params(**job.params) for job in group]
            if group[0].is_chat:
                outputs = self.llm.chat([j.prompt for j in group], params, use_tqdm=False, **group[0].chat_kwargs)
            else:
                outputs = self.llm.generate([j.prompt for j in group], params, use_tqdm=False)
            results.update(zip(indices, map(completion, outputs)))
        return [results[i] for i in range(len(jobs))]


def _groups(jobs: list[Job]) -> list[list[int]]:
    """Indices of the jobs that can share one call: all prompts; chats with equal options."""
    groups: dict[str, list[int]] = {}
    for i, job in enumerate(jobs):
        key = repr(sorted(job.chat_kwargs.items())) if job.is_chat else ""
        groups.setdefault(key, []).append(i)
    return list(groups.values())
