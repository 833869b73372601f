"""A stand-in for vLLM's offline `LLM` (vLLM cannot run on these machines), for testing our engine thread.

vLLM does not report two threads inside one `LLM` at once (it mixes their outputs), so this one raises
when it is entered while another thread is inside. It records every call (method, SamplingParams), and
its replies are computed from each prompt, so a caller can tell its own output from another's. The
tokenizer is a real one, loaded from the model folder like vLLM loads it.
"""

from __future__ import annotations

import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from types import SimpleNamespace


class SamplingParams:
    def __init__(self, **kwargs):
        self.kwargs = kwargs


@dataclass
class Sample:
    text: str
    token_ids: list[int]
    finish_reason: str


@dataclass
class RequestOutput:
    prompt_token_ids: list[int]
    outputs: list[Sample]


class FakeLLM:
    def __init__(self, model: str, **engine_kwargs):
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.engine_kwargs = engine_kwargs
        self.calls: list[tuple[str, list[dict]]] = []  # (method, each request's SamplingParams kwargs)
        self.overlaps = 0
        self._inside = 0
        self._lock = threading.Lock()

    def get_tokenizer(self):
        with self._entered("get_tokenizer"):
            return self.tokenizer

    def generate(self, prompts, sampling_params, use_tqdm=True):
        with self._entered("generate", sampling_params):
            return [self._reply(p, self._answer(p), sp.kwargs) for p, sp in zip(prompts, sampling_params)]

    def chat(self, messages, sampling_params, use_tqdm=True, chat_template_kwargs=None):
        assert chat_template_kwargs == {"enable_thinking": False}
        with self._entered("chat", sampling_params):
            instructions = [m[-1]["content"][-1]["text"] for m in messages]
            return [self._reply(i, f"I see: {i}", sp.kwargs) for i, sp in zip(instructions, sampling_params)]

    @contextmanager
    def _entered(self, method: str, sampling_params=None):
        with self._lock:
            self._inside += 1
            crowded = self._inside > 1
            self.overlaps += crowded
        try:
            if crowded:
                raise RuntimeError("two threads inside one vLLM LLM at once")
            if sampling_params is not None:
                self.calls.append((method, [sp.kwargs for sp in sampling_params]))
                time.sleep(0.05)  # a call takes a while; other threads' requests arrive meanwhile
            yield
        finally:
            with self._lock:
                self._inside -= 1

    @staticmethod
    def _answer(prompt: str) -> str:
        """Think about the caller's question (Q<number>) then answer it; answer at once once thinking is closed."""
        tag = re.findall(r"Q\d+", prompt)[-1]
        turn = prompt.rsplit("<|im_start|>assistant", 1)[-1]
        return f"Answer: {tag}" if "</think>" in turn else f"<think>{tag} {'hmm ' * 12}</think>\n\nAnswer: {tag}"

    def _reply(self, prompt: str, text: str, params: dict) -> RequestOutput:
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        finish = "length" if len(ids) > params["max_tokens"] else "stop"
        ids = ids[: params["max_tokens"]]
        sample = Sample(self.tokenizer.decode(ids), ids, finish)
        return RequestOutput(self.tokenizer.encode(prompt, add_special_tokens=False), [sample])


def fake_vllm_module():
    """What `import vllm` gives the backend in these tests."""
    return SimpleNamespace(LLM=FakeLLM, SamplingParams=SamplingParams)
