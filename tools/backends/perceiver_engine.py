"""The in-process engine of the transformers perceiver: batched first looks, cached follow-ups.

Per batch of requests (one worker thread, tools/backends/batcher.py):
- every request is processed by the model's own processor; when its `image_key` (pixel content, plus the
  region) was seen, the keys/values of the longest stored sequence on that image are looked up. They
  must cover all image tokens (the image comes first, the instruction last), so a hit runs no vision
  tower and no image prefill: `generate` gets the cache and the ids, never the pixels. A hit's processing
  (image work included: the processor gives no ids without it) is done on its caller's thread, with the
  engine's second processor, so the worker spends its time on the model;
- misses run as one padded `generate` (left padding; each processor pads its own pixel inputs; a request
  whose image was never seen is not even processed alone first);
- hits run as padded `generate`s too, each over the hits whose caches can be cut to one length that still
  covers every row's image (kv_cache.shared_prefix_cache): the image tokens are never computed again, the
  rest of each prompt is, in one prefill. Positions come from the padded ids and the attention mask, as for
  misses; a family whose non-pixel inputs are not known here runs its hits one by one;
- every row's prompt + output keys/values are stored under its image key (LRU, bounded in MB).

One request never fails or re-runs another: a request the processor rejects (alone, or only with others) gets
its own error and the rest are processed and generated once; a cancelled request is forced to end at its
next token and gets Cancelled. Nothing is streamed here, so a failed shared `generate` is retried row by row.
The six tested families batch images of different sizes in one call (each processor pads what it needs).
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from dataclasses import dataclass, field

import torch

from tools.backends.base import Cancelled, PerceiveOutput, PerceiveRequest, check_cancel
from tools.backends.batcher import MicroBatcher, RowError
from tools.backends.chat_template import render_perceiver_prompt
from tools.backends.compat import cache_kwargs, returned_cache
from tools.backends.kv_cache import PrefixCache, cache_layers, row_slice, shared_prefix_cache
from tools.backends.options import EngineOptions, model_batcher
from tools.backends.output_parsing import split_thinking
from tools.backends.perceiver_inputs import (IMAGE_INPUTS, PIXEL_INPUTS, TOKEN_INPUTS, forget_positions,
                                              pad_hit_inputs, to_device)
from tools.backends.row_logits import CancelRows

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Job:
    """A request as the worker gets it: a hit's processor inputs made on the caller's thread (or the error)."""

    request: PerceiveRequest
    inputs: dict | None = None
    error: Exception | None = None


@dataclass
class _Row:
    request: PerceiveRequest
    inputs: dict
    ids: list[int]
    cache: object = None
    reused: int = 0
    image_end: int = 0
    output: PerceiveOutput | None = field(default=None)
    error: BaseException | None = None

    def outcome(self) -> PerceiveOutput | RowError:
        cancel = self.request.cancel
        if self.error is None and cancel is not None and cancel.is_set():
            self.error = Cancelled("the run was cancelled")
        return RowError(self.error) if self.error is not None else self.output


class PerceiverEngine:
    def __init__(self, processor, model, options: EngineOptions):
        self.processor = processor
        self.model = model
        self.cache = PrefixCache(options.perceiver_cache_mb)
        self.batcher: MicroBatcher = model_batcher(self._run, model, options, "perceiver-batcher")
        config = model.config
        self.image_token = getattr(config, "image_token_id", None) or getattr(config, "image_token_index", None)
        # Callers process their hits with a copy: the worker's processor pads batches (it changes its tokenizer's
        # padding), and a tokenizer must not be changed while another thread is using it.
        self._caller_processor = copy.deepcopy(processor)
        self._caller_lock = threading.Lock()

    def perceive(self, requests: list[PerceiveRequest]) -> list[PerceiveOutput]:
        return self.batcher.submit([self._job(request) for request in requests])

    def render(self, request: PerceiveRequest) -> str:
        return render_perceiver_prompt(self.processor, request)

    def _job(self, request: PerceiveRequest) -> _Job:
        """On the caller's thread: a request whose image is cached is processed here (a new image waits for the
        worker, which processes its batch in one call)."""
        if not (request.image_key and self.cache.knows(request.image_key)):
            return _Job(request)
        try:
            with self._caller_lock:
                return _Job(request, self._process_alone(self._caller_processor, request))
        except Exception as exc:  # noqa: BLE001 - this row's error, raised for it by the worker
            return _Job(request, error=exc)

    # --- the worker side -------------------------------------------------------------------------

    def _run(self, jobs: list[_Job]) -> list[PerceiveOutput | RowError]:
        rows = [self._prepare(job) for job in jobs]
        misses = [row for row in rows if row.cache is None and row.error is None]
        hits = [row for row in rows if row.cache is not None and row.error is None]
        with torch.inference_mode():
            for group in (m for m in ([r for r in misses if r.request.images],
                                      [r for r in misses if not r.request.images]) if m):
                self._generate_batch(group)  # text-only requests (a teacher's text step) batch apart
            for group in self._hit_groups(hits):
                self._generate_hits(group)
        return [row.outcome() for row in rows]

    def _prepare(self, job: _Job) -> _Row:
        """A row, with its cache when its image's keys/values are stored (processed here if its caller could
        not: the image was not cached yet when it asked)."""
        request = job.request
        row = _Row(request, {}, [])
        try:
            check_cancel(request.cancel)
            if job.error is not None:
                raise job.error
            inputs = job.inputs
            if inputs is None and request.image_key and self.cache.knows(request.image_key):
                inputs = self._process_alone(self.processor, request)
            if inputs is not None:
                row.inputs, row.ids = inputs, inputs["input_ids"][0].tolist()
                row.image_end = self._image_end(row.ids)
                row.cache, row.reused = self.cache.lookup(request.image_key, row.ids, row.image_end)
        except Exception as exc:  # noqa: BLE001 - this row's error, handed to its caller
            row.error = exc
        return row

    def _process_alone(self, processor, request: PerceiveRequest) -> dict:
        return dict(processor(images=list(request.images), text=render_perceiver_prompt(processor, request), return_tensors="pt"))

    def _hit_groups(self, hits: list[_Row]) -> list[list[_Row]]:
        """Hits in groups that can share a generate: the same inputs, known here, and caches that can be cut to
        one length covering every row's image (in the left-padded layout, each row's image must end before
        every row's cache does)."""
        groups: list[list[_Row]] = []
        for row in hits:
            batchable = set(row.inputs) - set(PIXEL_INPUTS) <= set(TOKEN_INPUTS) | set(IMAGE_INPUTS)
            group = next((g for g in groups if batchable and self._fits(g + [row])), None)
            if group is None:
                groups.append([row])
            else:
                group.append(row)
        return groups

    @staticmethod
    def _fits(rows: list[_Row]) -> bool:
        same = len({tuple(sorted(row.inputs)) for row in rows}) == 1
        return same and max(r.image_end - len(r.ids) for r in rows) <= min(r.reused - len(r.ids) for r in rows)

    def _generate_hits(self, rows: list[_Row]) -> None:
        """One padded generate for hits on cached images; alone, row by row, if it raises."""
        if len(rows) == 1:
            self._guarded(self._generate_one, rows[0])
            return
        width = max(len(row.ids) for row in rows)
        cache, kept = shared_prefix_cache([cache_layers(row.cache) for row in rows], [row.reused for row in rows],
                                          [len(row.ids) for row in rows], width)  # fmt: skip
        forget_positions(self.model)
        started = time.perf_counter()
        try:
            out = self._generate(to_device(pad_hit_inputs([r.inputs for r in rows], width, self.processor), self.model),
                                 max(r.request.max_new_tokens for r in rows), [r.request.cancel for r in rows], cache)
        except Exception as exc:  # noqa: BLE001
            log.warning("a batched generate of %d cached rows failed (%s); each row is retried alone", len(rows), exc)
            for row in rows:
                self._guarded(self._generate_one, row)
            return
        seconds = (time.perf_counter() - started) / len(rows)
        for i, (row, n) in enumerate(zip(rows, kept)):
            row.reused = n
            self._finish(row, out.sequences[i, width:].tolist(), returned_cache(out), i, width - len(row.ids), seconds)

    @staticmethod
    def _guarded(step, row: _Row) -> None:
        try:
            step(row)
        except Exception as exc:  # noqa: BLE001
            row.error = exc

    def _image_end(self, ids: list[int]) -> int:
        """1 + the position of the last image token: a cached prefix must reach at least this far."""
        if self.image_token is None or self.image_token not in ids:
            return len(ids)  # cannot tell where the image ends: never reuse
        return len(ids) - ids[::-1].index(self.image_token)

    def _generate_one(self, row: _Row) -> None:
        inputs = row.inputs
        if row.cache is not None:
            inputs = {k: v for k, v in inputs.items() if k not in PIXEL_INPUTS}
            forget_positions(self.model)
        inputs = to_device(inputs, self.model)
        started = time.perf_counter()
        out = self._generate(inputs, row.request.max_new_tokens, [row.request.cancel], row.cache)
        seconds = time.perf_counter() - started
        self._finish(row, out.sequences[0, len(row.ids) :].tolist(), returned_cache(out), 0, 0, seconds)

    def _generate_batch(self, rows: list[_Row]) -> None:
        """One padded generate for `rows` (those the processor accepts); alone, row by row, if it raises."""
        inputs, rows = self._process_rows(rows)
        if not rows:
            return
        width = inputs["input_ids"].shape[1]
        for i, row in enumerate(rows):
            row.ids = inputs["input_ids"][i][inputs["attention_mask"][i].bool()].tolist()
        started = time.perf_counter()
        try:
            out = self._generate(to_device(dict(inputs), self.model), max(r.request.max_new_tokens for r in rows),
                                 [r.request.cancel for r in rows])  # fmt: skip
        except Exception as exc:  # noqa: BLE001
            if len(rows) == 1:
                rows[0].error = exc
                return
            log.warning("a batched generate of %d rows failed (%s); each row is retried alone", len(rows), exc)
            for row in rows:
                self._generate_batch([row])
            return
        seconds = (time.perf_counter() - started) / len(rows)
        for i, row in enumerate(rows):
            self._finish(row, out.sequences[i, width:].tolist(), returned_cache(out), i, width - len(row.ids), seconds)

    def _process_rows(self, rows: list[_Row]) -> tuple[dict | None, list[_Row]]:
        """The rows' joint inputs. When the processor rejects the batch, the rows it rejects alone get the error
        and the others are processed together (processing is cheap next to generating)."""
        try:
            return self._process([r.request for r in rows]), rows
        except Exception as exc:  # noqa: BLE001
            if len(rows) == 1:
                rows[0].error = exc
                return None, []
        good = []
        for row in rows:
            try:
                self._process([row.request])
                good.append(row)
            except Exception as exc:  # noqa: BLE001
                row.error = exc
        if len(good) == len(rows):  # each is fine alone but not together: generate them one by one
            for row in rows:
                self._generate_batch([row])
            return None, []
        return self._process_rows(good) if good else (None, [])

    def _process(self, requests: list[PerceiveRequest]):
        """The processor's inputs for these requests, left-padded."""
        tokenizer = getattr(self.processor, "tokenizer", self.processor)
        side, tokenizer.padding_side = tokenizer.padding_side, "left"
        try:
            images = [list(r.images) for r in requests] if requests[0].images else None
            return self.processor(images=images, text=[self.render(r) for r in requests], return_tensors="pt",
                                  padding=True)  # fmt: skip
        finally:
            tokenizer.padding_side = side

    def _generate(self, inputs: dict, max_new_tokens: int, cancels: list, cache=None):
        if "mm_token_type_ids" in inputs:
            forget_positions(self.model)
        return self.model.generate(
            **inputs, **cache_kwargs(cache), max_new_tokens=max_new_tokens, do_sample=False,
            temperature=None, top_p=None, top_k=None, return_dict_in_generate=True,
            logits_processor=[CancelRows(cancels, self._eos_ids()[0])] if any(cancels) else None,
        )  # fmt: skip

    def _finish(self, row: _Row, tokens: list[int], cache, index: int, pad: int, seconds: float) -> None:
        tokens = self._cut(tokens, row.request.max_new_tokens)
        kept = row.ids + tokens[:-1]
        if row.request.image_key and self.cache.enabled and cache is not None:
            self.cache.store(row.request.image_key, kept, row_slice(cache, index, pad, pad + len(kept)))
        self.cache.stats.reused_tokens += row.reused
        self.cache.stats.computed_tokens += len(row.ids) - row.reused
        _, text = split_thinking(self.processor.decode(tokens, skip_special_tokens=True))
        row.output = PerceiveOutput(text=text, prompt_tokens=len(row.ids), output_tokens=len(tokens),
                                    seconds=seconds, cached_tokens=row.reused)  # fmt: skip

    def _eos_ids(self) -> list[int]:
        eos = self.model.generation_config.eos_token_id
        return list(eos) if isinstance(eos, (list, tuple)) else [eos]

    def _cut(self, tokens: list[int], limit: int) -> list[int]:
        """A row's own tokens: up to and including its end of turn, never past its own limit."""
        eos = set(self._eos_ids())
        for j, token in enumerate(tokens[:limit]):
            if token in eos:
                return tokens[: j + 1]
        return tokens[:limit]
