"""The in-process generation engine of the transformers reasoner: batching plus KV reuse.

One engine per loaded model, one worker thread (tools/backends/batcher.py). Each prompt is rendered and
tokenised on its caller's thread, before it is queued, so the worker spends its time on the model. For a
batch of requests:
1. the KV cache of the longest stored sequence sharing each prompt's prefix is looked up;
2. the rows' caches are left-padded into one batched cache, cut to the length all of them reach (the rows
   end together in the padded layout, so this drops little), and a single greedy `generate` computes every
   row's remaining prompt tokens in one batched prefill, then decodes all rows, each with its own processors
   (thinking budget, NoWait, forced decoding), token limit and sampler (tools/backends/row_logits.py:
   RowLogits): a prompt's prefill costs its new tokens, and the batch's prefills cost one forward pass. That
   prefill pads every row to the longest uncached part, so a row whose uncached part is far longer than the
   others' (a new conversation among follow-ups) has it computed on its own first;
3. each row's prompt + output keys/values are cut out of the batched cache and stored for the next turn.

One request never fails or re-runs another: step 1 (prompt, processors, sampler, prefill) runs per row, and a
row whose setup raises gets its own error while the others decode once. A cancelled request (its `cancel`
set) is forced to end at its next token and gets Cancelled; its companions go on. Should the shared
`generate` itself raise, each row is retried alone with the tokens it already streamed forced first, so no
caller is sent the same text twice.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

import torch

from tools.backends.base import Cancelled, ReasonRequest, check_cancel
from tools.backends.batcher import MicroBatcher, RowError
from tools.backends.cascade_attention import shared_prefix
from tools.backends.chat_template import render_reasoner_prompt
from tools.backends.compat import cache_kwargs, returned_cache
from tools.backends.decode_mask import use_decode_step_mask
from tools.backends.growing_cache import growing_cache, supports_growing
from tools.backends.kv_cache import PrefixCache, cache_layers, row_slice, shared_prefix_cache, to_dynamic_cache
from tools.backends.options import EngineOptions, model_batcher
from tools.backends.row_logits import RowLogits, RowSampler
from tools.backends.row_streamer import RowStreamer
from tools.backends.thinking import thinking_processors

REASONER_NAMESPACE = "reasoner"
OUTLIER, OUTLIER_SLACK = 4, 16  # a row's uncached tokens beyond 4 x the batch's median + 16: prefilled alone
SHARE_MIN = 64  # a batch's shared prompt prefix is computed once when rows lack more than this many of its tokens
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Generated:
    """One row's outcome, before decoding."""

    tokens: list[int]
    prompt_tokens: int
    cached_tokens: int
    seconds: float
    finish_reason: str


@dataclass(frozen=True)
class _Job:
    """A request as the worker gets it: its prompt rendered and tokenised on the caller's thread (or the error
    that raised, which the worker hands back as the row's own)."""

    request: ReasonRequest
    extra: list
    prompt: list[int]
    error: Exception | None = None


@dataclass
class _Row:
    """One request of a batch, set up on its own (see `_setup_row`)."""

    index: int
    job: _Job
    sampler: object
    layers: list  # the keys/values of the prompt's first `covered` tokens
    cached: int  # of those, the ones reused from the prefix cache (the rest was computed for this batch)
    covered: int = 0

    @property
    def request(self) -> ReasonRequest:
        return self.job.request

    @property
    def prompt(self) -> list[int]:
        return self.job.prompt


class ReasonerEngine:
    def __init__(self, tokenizer, model, options: EngineOptions):
        self.tokenizer = tokenizer
        self.model = model
        self.options = options
        self.cache = PrefixCache(options.reasoner_cache_mb)
        self.batcher: MicroBatcher = model_batcher(self._run, model, options, "reasoner-batcher")
        self.eos_ids = stop_ids(tokenizer, model)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_ids[0]
        self.growing = supports_growing(model.config)
        use_decode_step_mask(model)  # a padded batch's decode steps take the padding mask as it is

    def generate(self, jobs: list[tuple[ReasonRequest, list]]) -> list[Generated]:
        """Run (request, extra logits processors) jobs, batched with other callers' jobs."""
        return self.batcher.submit([self._job(request, extra) for request, extra in jobs])

    def _job(self, request: ReasonRequest, extra: list) -> _Job:
        try:
            return _Job(request, extra, self._encode(render_reasoner_prompt(self.tokenizer, request)))
        except Exception as exc:  # noqa: BLE001 - this row's error, raised for it by the worker
            return _Job(request, extra, [], exc)

    # --- the worker side -------------------------------------------------------------------------

    def _run(self, jobs: list[_Job]) -> list[Generated | RowError]:
        started = time.perf_counter()
        results: list = [None] * len(jobs)
        rows = [row for row in (self._setup_row(i, job, results) for i, job in enumerate(jobs)) if row is not None]
        if rows:
            self._share_prefix(rows)
            self._generate_rows(rows, results, started)
        return results

    def _share_prefix(self, rows: list[_Row]) -> None:
        """Compute once the prefix every prompt of the batch shares, where rows lack it: concurrent first turns
        (an eval's first samples, a server's first clients) share a long system prompt, and no row can reuse
        another's cache before anything is stored, so each would compute it. The rows then start from it as
        from a cache hit (their `cached`, what was reused from earlier requests, is left as it was)."""
        common = min(shared_length([row.prompt for row in rows]), min(len(row.prompt) for row in rows) - 1)
        lacking = [row for row in rows if row.covered < common - SHARE_MIN]
        if len(lacking) < 2 or not self.cache.enabled:
            return
        source = max(lacking, key=lambda row: row.covered)
        cache = to_dynamic_cache([(k[:, :, : source.covered], v[:, :, : source.covered]) for k, v in source.layers])
        ids = torch.tensor([source.prompt[source.covered : common]], device=self.model.device)
        try:
            with torch.inference_mode():
                self.model(input_ids=ids, use_cache=True, **cache_kwargs(cache))
        except Exception as exc:  # noqa: BLE001 - an optimisation only: each row then computes the prefix itself
            log.warning("computing the batch's shared prefix failed (%s); each row computes it", exc)
            return
        layers = cache_layers(cache)
        for row in lacking:
            row.layers, row.covered = layers, common

    def _setup_row(self, index: int, job: _Job, results: list) -> _Row | None:
        """Everything of one row that can fail on its own (a bad setting, a prompt the template rejects, a
        cancelled run), done before the shared generate; a failure is this row's result."""
        try:
            check_cancel(job.request.cancel)
            if job.error is not None:
                raise job.error
            self._processors(job.request, job.extra, len(job.prompt))  # built again at the batch's width
            sampler = self._sampler(job.request.settings, self.model.device)
            cache, cached = self.cache.lookup(REASONER_NAMESPACE, job.prompt)
        except Exception as exc:  # noqa: BLE001 - this row's error, handed to its caller
            results[index] = RowError(exc)
            return None
        return _Row(index, job, sampler, cache_layers(cache) if cache is not None else [], cached, cached)

    def _generate_rows(self, rows: list[_Row], results: list, started: float, replay=None) -> None:
        """One generate for `rows`; if it raises, each row alone, starting with what it already streamed."""
        callbacks = [row.request.on_text for row in rows]
        streamer = RowStreamer(self.tokenizer, callbacks, self.eos_ids, replay) if any(callbacks) else None
        try:
            with torch.inference_mode():
                sequences, batched = self._decode(rows, streamer, replay)
        except Exception as exc:  # noqa: BLE001
            if len(rows) == 1:
                results[rows[0].index] = RowError(exc)
                return
            log.warning("a batched generate of %d rows failed (%s); each row is retried alone", len(rows), exc)
            for i, row in enumerate(rows):
                self._retry_alone(row, streamer.sent_tokens(i) if streamer else [], results)
            return
        seconds = time.perf_counter() - started
        width = max(len(row.prompt) for row in rows)
        for i, row in enumerate(rows):
            if row.request.cancel is not None and row.request.cancel.is_set():
                results[row.index] = RowError(Cancelled("the run was cancelled"))
                continue
            tokens, finish = self._cut(sequences[i, width:].tolist(), row.request.settings.max_new_tokens)
            self._store(batched, i, width - len(row.prompt), row.prompt + tokens)
            results[row.index] = Generated(tokens, len(row.prompt), row.cached, seconds, finish)

    def _retry_alone(self, row: _Row, streamed: list[int], results: list) -> None:
        again = self._setup_row(row.index, row.job, results)  # a fresh cache and sampler
        if again is not None:
            self._generate_rows([again], results, time.perf_counter(), replay=[streamed])

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _batched_cache(self, rows: list[_Row], width: int, new_tokens: int):
        """The rows' caches as one (kv_cache.shared_prefix_cache); each row's `cached` becomes what it reuses.
        Where the model allows, the cache writes each step in place (tools/backends/growing_cache.py), also
        when nothing is cached: `generate` would otherwise make a cache that copies itself every step."""
        self._prefill_outliers(rows)
        new_tokens = new_tokens if self.growing else None
        cache, kept = shared_prefix_cache([row.layers for row in rows], [row.covered for row in rows],
                                          [len(row.prompt) for row in rows], width, new_tokens)  # fmt: skip
        if cache is None and new_tokens is not None:
            cache = growing_cache(new_tokens + 1)
        for row, n in zip(rows, kept):
            row.cached = min(row.cached, n)
            self.cache.stats.reused_tokens += row.cached
            self.cache.stats.computed_tokens += len(row.prompt) - row.cached
        return cache

    def _prefill_outliers(self, rows: list[_Row]) -> None:
        """Compute on its own the uncached part of a row whose part is over OUTLIER x the batch's median."""
        todo = sorted(len(row.prompt) - row.covered for row in rows)
        limit = OUTLIER * todo[(len(todo) - 1) // 2] + OUTLIER_SLACK
        for row in rows:
            if len(row.prompt) - row.covered > limit:
                cache = to_dynamic_cache(row.layers)
                ids = torch.tensor([row.prompt[row.covered : -1]], device=self.model.device)
                self.model(input_ids=ids, use_cache=True, **cache_kwargs(cache))
                row.layers, row.covered = cache_layers(cache), len(row.prompt) - 1

    def _decode(self, rows: list[_Row], streamer: RowStreamer | None, replay=None):
        prompts = [row.prompt for row in rows]
        width = max(len(p) for p in prompts)
        input_ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, ids in enumerate(prompts):
            input_ids[i, width - len(ids) :] = torch.tensor(ids)
            mask[i, width - len(ids) :] = 1
        device = self.model.device
        limits = [row.request.settings.max_new_tokens for row in rows]
        processor = RowLogits(
            width,
            [self._processors(row.request, row.job.extra, width) for row in rows],
            [row.sampler for row in rows],
            limits,
            self.eos_ids[0],
            cancels=[row.request.cancel for row in rows],
            prefixes=[list(tokens) for tokens in replay] if replay else None,
        )
        cache = self._batched_cache(rows, width, max(limits))
        pads = [width - len(p) for p in prompts]
        with shared_prefix(pads, shared_length(prompts), device):
            out = self._generate(input_ids, mask, cache, processor, streamer, max(limits))
        return out.sequences.cpu(), returned_cache(out)

    def _generate(self, input_ids, mask, cache, processor, streamer, limit: int):
        device = self.model.device
        return self.model.generate(
            input_ids=input_ids.to(device), attention_mask=mask.to(device), streamer=streamer, **cache_kwargs(cache),
            logits_processor=[processor], max_new_tokens=limit, do_sample=False,
            temperature=None, top_p=None, top_k=None, eos_token_id=self.eos_ids, pad_token_id=self.pad_id,
            return_dict_in_generate=True,
        )  # fmt: skip

    def _processors(self, request: ReasonRequest, extra: list, prompt_len: int) -> list:
        """The row's thinking budget and NoWait (tools/backends/thinking.py), then the caller's extra ones."""
        return thinking_processors(self.tokenizer, request.settings, prompt_len) + list(extra)

    def _sampler(self, settings, device):
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


def shared_length(prompts: list[list[int]]) -> int:
    """How many leading tokens every prompt has in common (`os.path.commonprefix` works on any sequences: it
    walks only the lexicographically smallest and largest, which share exactly what all of them share)."""
    return len(os.path.commonprefix(prompts))


def stop_ids(tokenizer, model) -> list[int]:
    """End-of-turn ids: the generation config's eos ids plus the tokenizer's eos."""
    ids = model.generation_config.eos_token_id
    ids = list(ids) if isinstance(ids, (list, tuple)) else ([ids] if ids is not None else [])
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids
