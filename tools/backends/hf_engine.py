"""The in-process generation engine of the transformers reasoner: batching plus KV reuse.

One engine per loaded model, one worker thread (tools/backends/batcher.py). For a batch of requests:
1. each prompt is rendered and tokenised; the KV cache of the longest stored sequence sharing its
   prefix is looked up, and only the row's remaining prompt tokens (but the last) are run through the
   model, row by row, so a prompt's prefill costs its new tokens;
2. the rows' caches are left-padded into one batched cache and a single greedy `generate` decodes all
   rows, each with its own processors (thinking budget, NoWait, forced decoding), token limit and
   sampler (tools/backends/logits.py: RowLogits);
3. each row's prompt + output keys/values are cut out of the batched cache and stored for the next turn.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from tools.backends.base import ReasonRequest
from tools.backends.batcher import MicroBatcher
from tools.backends.kv_cache import PrefixCache, cache_layers, row_slice, stack_left_padded, to_dynamic_cache
from tools.backends.options import EngineOptions, model_batcher
from tools.backends.streaming import RowStreamer

REASONER_NAMESPACE = "reasoner"


@dataclass(frozen=True)
class Generated:
    """One row's outcome, before decoding."""

    tokens: list[int]
    prompt_tokens: int
    cached_tokens: int
    seconds: float
    finish_reason: str


class ReasonerEngine:
    def __init__(self, tokenizer, model, options: EngineOptions):
        self.tokenizer = tokenizer
        self.model = model
        self.options = options
        self.cache = PrefixCache(options.reasoner_cache_mb)
        self.batcher: MicroBatcher = model_batcher(self._run, model, options, "reasoner-batcher")
        self.eos_ids = stop_ids(tokenizer, model)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_ids[0]

    def generate(self, jobs: list[tuple[ReasonRequest, list]]) -> list[Generated]:
        """Run (request, extra logits processors) jobs, batched with other callers' jobs."""
        return self.batcher.submit(jobs)

    # --- the worker side -------------------------------------------------------------------------

    def _run(self, jobs: list[tuple[ReasonRequest, list]]) -> list[Generated]:
        started = time.perf_counter()
        prompts = [self._encode(render_prompt(self.tokenizer, request)) for request, _ in jobs]
        with torch.inference_mode():
            rows, cached = zip(*[self._prefill(ids) for ids in prompts])
            sequences, batched = self._decode(jobs, prompts, list(rows))
        seconds = time.perf_counter() - started
        width = max(len(p) for p in prompts)
        out = []
        for i, ((request, _), prompt) in enumerate(zip(jobs, prompts)):
            tokens, finish = self._cut(sequences[i, width:].tolist(), request.settings.max_new_tokens)
            self._store(batched, i, width - len(prompt), prompt + tokens)
            out.append(Generated(tokens, len(prompt), cached[i], seconds, finish))
        return out

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _prefill(self, ids: list[int]):
        """This row's cache over ids[:-1]: reused where stored, computed for the rest."""
        cache, reused = self.cache.lookup(REASONER_NAMESPACE, ids)
        if cache is None:
            cache = to_dynamic_cache([])
        todo = ids[reused:-1]
        if todo:
            self.model(input_ids=torch.tensor([todo], device=self.model.device), cache=cache, use_cache=True)
        self.cache.stats.reused_tokens += reused
        self.cache.stats.computed_tokens += len(todo) + 1
        return cache_layers(cache), reused

    def _decode(self, jobs, prompts: list[list[int]], rows):
        from tools.backends.logits import RowLogits

        width = max(len(p) for p in prompts)
        input_ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, ids in enumerate(prompts):
            input_ids[i, width - len(ids) :] = torch.tensor(ids)
            mask[i, width - len(ids) :] = 1
        device = self.model.device
        limits = [request.settings.max_new_tokens for request, _ in jobs]
        processor = RowLogits(
            width,
            [self._processors(request, extra, width) for request, extra in jobs],
            [self._sampler(request.settings, device) for request, _ in jobs],
            limits,
            self.eos_ids[0],
        )
        cache = stack_left_padded(rows, width - 1) if all(rows) else None  # a 1-token prompt has no cache
        callbacks = [request.on_text for request, _ in jobs]
        streamer = RowStreamer(self.tokenizer, callbacks, self.eos_ids) if any(callbacks) else None
        out = self.model.generate(
            input_ids=input_ids.to(device), attention_mask=mask.to(device), cache=cache, streamer=streamer,
            logits_processor=[processor], max_new_tokens=max(limits), do_sample=False,
            temperature=None, top_p=None, top_k=None, eos_token_id=self.eos_ids, pad_token_id=self.pad_id,
            return_dict_in_generate=True,
        )  # fmt: skip
        return out.sequences.cpu(), out.cache

    def _processors(self, request: ReasonRequest, extra: list, prompt_len: int) -> list:
        from tools.backends.logits import SuppressTokensProcessor, ThinkingBudgetProcessor, reflection_token_ids

        settings = request.settings
        procs: list = []
        end_think = self.tokenizer.convert_tokens_to_ids("</think>")
        has_think = end_think is not None and end_think != self.tokenizer.unk_token_id
        if settings.thinking and settings.thinking_budget and has_think:
            newline = self.tokenizer.encode("\n", add_special_tokens=False)[0]
            procs.append(ThinkingBudgetProcessor(settings.thinking_budget, prompt_len, newline, end_think))
        if settings.no_wait:
            procs.append(SuppressTokensProcessor(reflection_token_ids(self.tokenizer)))
        return procs + list(extra)

    def _sampler(self, settings, device):
        from tools.backends.logits import RowSampler

        if settings.greedy:
            return None
        top_k = getattr(self.model.generation_config, "top_k", None)
        return RowSampler(settings.temperature, settings.top_p, top_k, settings.seed, device)

    def _cut(self, tokens: list[int], limit: int) -> tuple[list[int], str]:
        """The row's own tokens: up to its end-of-turn token, or its limit (the forced stop dropped)."""
        for j, token in enumerate(tokens[: limit + 1]):
            if token in self.eos_ids:
                return (tokens[: j + 1], "stop") if j < limit else (tokens[:limit], "length")
        return tokens[:limit], "length"

    def _store(self, batched, row: int, pad: int, sequence: list[int]) -> None:
        """Keep the keys/values of the row's prompt and output (all but its last token, never fed back)."""
        if not self.cache.enabled or batched is None:
            return
        kept = sequence[:-1]
        self.cache.store(REASONER_NAMESPACE, kept, row_slice(batched, row, pad, pad + len(kept)))


def render_prompt(tokenizer, request: ReasonRequest) -> str:
    return tokenizer.apply_chat_template(
        [m.to_template() for m in request.messages],
        tools=list(request.tools) or None,
        add_generation_prompt=True,
        tokenize=False,
        enable_thinking=request.settings.thinking,
    )


def stop_ids(tokenizer, model) -> list[int]:
    """End-of-turn ids: the generation config's eos ids plus the tokenizer's eos."""
    ids = model.generation_config.eos_token_id
    ids = list(ids) if isinstance(ids, (list, tuple)) else ([ids] if ids is not None else [])
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids
