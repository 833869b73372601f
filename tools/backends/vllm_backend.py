"""vLLM in process, for batch evaluation on a GPU (extra `[vllm]`). Kept thin on purpose.

vLLM's offline `LLM` is not thread-safe, so each loaded `LLM` is called only by its engine thread
(tools/backends/vllm_engine.py), which gathers the requests of concurrent callers into one call. What a
request sends and what it gets back are plain functions (tools/backends/vllm_requests.py): prompts are
rendered by the model's own chat template through its Hugging Face tokenizer, with the function the
transformers backend renders with (tools/backends/chat_template.py); each request has its own SamplingParams
(sampling, NoWait, thinking budget), and the budget runs in two phases (tools/backends/thinking.py). Prefix
caching is on, so the repeated prefixes of an iterative trajectory (and of several requests on one image) are
computed once.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

from tools.backends.base import PerceiveOutput, PerceiveRequest, ReasonOutput, ReasonRequest
from tools.backends.chat_template import render_reasoner_prompt
from tools.backends.data_urls import DataUrlCache
from tools.backends.loading import ModelLoadError, cached, explain_load_failure, hub_failure
from tools.backends.options import EngineOptions
from tools.backends.spec import parse_model
from tools.backends.thinking import reflection_token_ids
from tools.backends.vllm_engine import VllmEngine
from tools.backends.vllm_requests import first_job, perceive_job, perceive_output, reason_output, second_job

INSTALL_HINT = "vLLM is not installed: pip install 'extract-think[vllm]' (needs a CUDA GPU)"


def import_vllm():
    try:
        import vllm
    except ImportError:
        raise ModelLoadError(INSTALL_HINT) from None
    return vllm


class _VllmModel:
    role = "model"

    def __init__(self, model: str, options: EngineOptions = EngineOptions(), **engine_kwargs: Any):
        self.spec = parse_model(model, self.role)
        self.name = model
        self.options = options
        self.engine_kwargs = {"enable_prefix_caching": True, **engine_kwargs}

    def load(self):
        vllm = import_vllm()
        return cached(("vllm", self.spec.name), lambda: self._start(vllm))

    def _start(self, vllm):
        """Build the `LLM` and read its tokenizer at once, before any engine thread is inside it. vLLM fetches a
        hub id itself; the hub's refusals (offline and not cached, no such model, gated) are worded as the
        transformers backend words them, other failures (no GPU, out of memory) are vLLM's own."""
        try:
            llm = vllm.LLM(model=self.spec.name, **self.engine_kwargs)
        except Exception as exc:
            if not hub_failure(exc):
                raise
            raise explain_load_failure(self.spec, self.role, exc) from None
        cached(("vllm-tokenizer", self.spec.name), llm.get_tokenizer)
        return llm

    @property
    def engine(self) -> VllmEngine:
        """The one thread that calls this model's `LLM`; both roles share it when they name one model."""
        llm, vllm = self.load(), import_vllm()
        name = f"vllm-engine {self.spec.name}"
        return cached(("vllm-engine", self.spec.name), lambda: VllmEngine(llm, vllm.SamplingParams, self.options, name))

    def tokenizer(self):
        """The tokenizer read when the `LLM` was built; callers render prompts with it in their own threads."""
        self.load()
        return cached(("vllm-tokenizer", self.spec.name), lambda: self.load().get_tokenizer())


class VllmReasoner(_VllmModel):
    role = "reasoner"

    def render(self, request: ReasonRequest) -> str:
        return render_reasoner_prompt(self.tokenizer(), request)

    def reason(self, requests: Sequence[ReasonRequest]) -> list[ReasonOutput]:
        """Every request's first phase in one submission; the continuations of those that ran out of
        thinking budget in a second one (each may share its engine call with other threads' requests)."""
        engine, reflection = self.engine, self._reflection_ids(requests)
        prompts = [self.render(r) for r in requests]
        started = time.perf_counter()
        firsts = engine.submit([first_job(p, r.settings, reflection) for p, r in zip(prompts, requests)])
        seconds = [time.perf_counter() - started] * len(requests)
        follows = [second_job(p, f, r.settings, reflection) for p, f, r in zip(prompts, firsts, requests)]
        pending = [i for i, job in enumerate(follows) if job is not None]
        second_phase: dict = {}
        if pending:
            started = time.perf_counter()
            second_phase = dict(zip(pending, engine.submit([follows[i] for i in pending])))
            took = time.perf_counter() - started
            seconds = [s + (took if i in second_phase else 0.0) for i, s in enumerate(seconds)]
        return [reason_output(f, second_phase.get(i), seconds[i]) for i, f in enumerate(firsts)]

    def _reflection_ids(self, requests: Sequence[ReasonRequest]) -> list[int]:
        """NoWait's banned tokens, computed once per model and only when some request asks for NoWait."""
        if not any(r.settings.no_wait for r in requests):
            return []
        return cached(("vllm-nowait", self.spec.name), lambda: reflection_token_ids(self.tokenizer()))


class VllmPerceiver(_VllmModel):
    role = "perceiver"

    def __init__(self, model: str, options: EngineOptions = EngineOptions(), **engine_kwargs: Any):
        super().__init__(model, options, **engine_kwargs)
        self._urls = DataUrlCache()

    def perceive(self, requests: Sequence[PerceiveRequest]) -> list[PerceiveOutput]:
        engine = self.engine
        jobs = [perceive_job(r, [self._urls.get(img) for img in r.images]) for r in requests]
        started = time.perf_counter()
        done = engine.submit(jobs)
        seconds = (time.perf_counter() - started) / max(len(requests), 1)
        return [perceive_output(d, seconds) for d in done]
