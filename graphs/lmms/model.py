"""extract-think as an lmms-eval model (`--model extract_think`): every lmms-eval task, scored by its own code.

lmms-eval evaluates one model call per doc; here one "call" is a whole agent run (the iterative loop, or one
of the single-pass regimes), so a task's generation kwargs are mapped (graphs/lmms/prompt.py) rather than
obeyed, and the response handed to the task's scorer is the option letter the agent chose: lmms-eval's
extractors take the first letter-like token of a response, and an agent's visible answer often names other
options before its own. The requests of one `generate_until` call run concurrently so the in-process engines
batch them. Each doc's trace is written as a Result JSON (`xthink view` reads it) under
`trace_dir/<task>/<mode>/<doc_id>.json`.

This module subclasses lmms-eval's base class, so it imports lmms_eval; lmms-eval imports it only when the
model is asked for (graphs/lmms/plugin.py registers it by path).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from lmms_eval.api.instance import GenerationResult
from lmms_eval.api.model import lmms
from loguru import logger
from tqdm import tqdm

from agent.settings import AskOptions, from_switches, setting_names, validated
from graphs.lmms.responses import response_of, token_counts

REGIMES = ("iterative", "iterative+look", "extract", "caption", "direct")
RESPONSES = ("letter", "text", "full")
# model_args named as `xthink ask` / `xthink eval` name them: every AskOptions field, no_think for thinking
# (agent/settings.py OFF_SWITCHES); first_look comes from the mode (iterative+look)
ASK_ARGS = setting_names(skip=("first_look",), switches=True)
ENGINE_ARGS = ("max_batch", "reasoner_cache_mb", "perceiver_cache_mb", "max_in_flight")
LAUNCHER_ARGS = ("batch_size", "max_batch_size")  # lmms-eval's CLI always passes these; `concurrency` is ours


@dataclass(frozen=True)
class Job:
    """One doc to run: what the agent is asked, where its trace goes."""

    index: int
    task: str
    split: str
    doc_id: int
    context: str
    gen_kwargs: dict
    doc_to_visual: object
    trace_name: str


class ExtractThinkLMM(lmms):
    """The agent behind lmms-eval's simple-model interface (`generate_until`)."""

    is_simple = True

    def __init__(self, reasoner: str | None = None, perceiver: str | None = None, pair: str | None = None,
                 mode: str = "iterative", device: str | None = None, dtype: str = "auto", response: str = "letter",
                 concurrency: int | None = None, trace_dir: str | None = None, agent=None, **settings):
        super().__init__()
        if mode not in REGIMES:
            raise ValueError(f"extract_think: unknown mode '{mode}'; choose one of {', '.join(REGIMES)}")
        if response not in RESPONSES:
            raise ValueError(f"extract_think: unknown response '{response}'; choose one of {', '.join(RESPONSES)}")
        unknown = sorted(set(settings) - set(ASK_ARGS) - set(ENGINE_ARGS) - set(LAUNCHER_ARGS))
        if unknown:
            valid = ["reasoner", "perceiver", "pair", "mode", "device", "dtype", "response", "concurrency",
                     "trace_dir", *ASK_ARGS, *ENGINE_ARGS]
            raise ValueError(f"extract_think: unknown model_args {', '.join(unknown)}; valid: {', '.join(valid)}")
        self.mode = mode
        self.response = response
        self.trace_dir = Path(trace_dir) if trace_dir else None
        ask = {k: v for k, v in settings.items() if k in ASK_ARGS and v is not None}
        self.explicit = set(ask)  # what model_args set wins over the task's generation kwargs
        ask = from_switches(ask)
        ask["first_look"] = "caption" if mode == "iterative+look" else "none"
        self.settings = validated(AskOptions, ask, "extract_think model_args")
        if agent is not None and (reasoner or perceiver or pair):
            raise ValueError("extract_think: pass either agent= or reasoner/perceiver/pair, not both")
        device = self._data_parallel(device)
        self._placement = device
        self.agent = agent if agent is not None else self._build_agent(reasoner, perceiver, pair, device, dtype,
                                                                       settings, concurrency)
        self.concurrency = int(concurrency) if concurrency else self._default_concurrency(device)
        self._logged: set[str] = set()
        self._log_lock = threading.Lock()

    def _data_parallel(self, device: str | None) -> str:
        """Under `accelerate launch` (WORLD_SIZE > 1) each rank takes its own GPU and its share of the docs."""
        if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
            return device or "auto"
        from accelerate import Accelerator

        self.accelerator = Accelerator()
        self._rank = self.accelerator.process_index
        self._world_size = self.accelerator.num_processes
        import torch

        if device in (None, "auto", "cuda") and torch.cuda.is_available():
            device = f"cuda:{self.accelerator.local_process_index}"
            torch.cuda.set_device(device)
        return device or "auto"

    @property
    def device(self):
        """The torch device of this rank (lmms-eval gathers per-rank request counts on it)."""
        import torch

        from tools.backends.loading import Placement

        return torch.device(Placement(device=self._placement).resolve()[0])

    def _build_agent(self, reasoner, perceiver, pair, device, dtype, settings, concurrency):
        from graphs.api import ExtractThink, resolve_models
        from tools.backends.options import EngineOptions

        reasoner, perceiver = resolve_models(pair, reasoner, perceiver)
        engine = {k: settings[k] for k in ENGINE_ARGS if settings.get(k) is not None}
        if concurrency:
            engine["concurrency"] = int(concurrency)
        return ExtractThink(reasoner=reasoner, perceiver=perceiver, device=device, dtype=dtype,
                            engine=EngineOptions(**engine))

    def _default_concurrency(self, device: str) -> int:
        from evals.runner import default_concurrency

        return default_concurrency(self.agent, device)

    # --- lmms-eval's interface -----------------------------------------------------------------------------

    def generate_until(self, requests) -> list[GenerationResult]:
        """Run every request's doc through the agent, `concurrency` at a time; a failure (or a padding
        request) gives ''."""
        from tools.backends.batcher import expect_burst

        self.agent.load_models("iterative" if self.mode == "iterative+look" else self.mode)
        jobs = self._jobs(requests)
        expect_burst(min(max(1, self.concurrency), len(jobs)))
        results = [GenerationResult(text="", token_counts=None) for _ in requests]
        bar = tqdm(total=len(jobs), disable=self.rank != 0, desc="Model Responding")
        with tempfile.TemporaryDirectory(prefix="xthink-lmms-") as scratch, \
                ThreadPoolExecutor(max_workers=max(1, self.concurrency)) as pool:
            futures = [(job.index, pool.submit(self._run, job, Path(scratch))) for job in jobs]
            for index, future in futures:
                results[index] = future.result()
                bar.update(1)
        bar.close()
        return results

    def loglikelihood(self, requests):
        raise NotImplementedError(
            "extract_think generates answers and cannot score continuations: tasks with output_type "
            "'loglikelihood' or 'multiple_choice' (ranking options by likelihood) need a single language model; "
            "run generate_until tasks (mmstar, vstar_bench, vmcbench, hrbench, ...)"
        )

    def generate_until_multi_round(self, requests):
        raise NotImplementedError(
            "extract_think does not run multi-round tasks (output_type 'generate_until_multi_round'); it answers "
            "each doc in one agent run: use generate_until tasks"
        )

    # --- one doc -------------------------------------------------------------------------------------------

    def _jobs(self, requests) -> list[Job]:
        seen: Counter = Counter()
        jobs = []
        for index, request in enumerate(requests):
            if (request.metadata or {}).get("__padding_only__"):
                continue  # data parallel: lmms-eval pads short ranks with copies whose answers it drops
            context, gen_kwargs, doc_to_visual, doc_id, task, split = request.args
            key = (task, split, doc_id)
            repeat = seen[key]
            seen[key] += 1
            name = f"{doc_id}" if repeat == 0 else f"{doc_id}-{repeat}"
            jobs.append(Job(index, task, split, doc_id, context, dict(gen_kwargs or {}), doc_to_visual, name))
        return jobs

    def _run(self, job: Job, scratch: Path) -> GenerationResult:
        """One doc through the agent; any failure is logged and gives an empty response."""
        from graphs.lmms.prompt import map_generation_kwargs, parse_task_prompt
        from evals.runner import graph_mode

        try:
            prompt = parse_task_prompt(job.context)
            mapped = map_generation_kwargs(job.gen_kwargs, self.settings, self.explicit)
            self._log_once(job.task, prompt, mapped.ignored)
            images = self._images(job, scratch)
            result = self.agent.ask(prompt.agent_question(), images, prompt.options or None,
                                    mode=graph_mode(self.mode), settings=mapped.settings)
        except Exception as exc:  # noqa: BLE001 - one bad doc must not end the run; the reason is logged
            reason = f"{type(exc).__name__}: {exc}"
            logger.warning(f"extract_think: {job.task} doc {job.doc_id} failed, empty response ({reason})")
            self._write(job, "error.json", json.dumps({"task": job.task, "doc_id": job.doc_id, "error": reason}))
            return GenerationResult(text="", token_counts=None)
        self._write(job, "json", result.model_dump_json(indent=1))
        return GenerationResult(text=response_of(result, prompt.options, self.response),
                                token_counts=token_counts(result))

    def _images(self, job: Job, scratch: Path) -> list[Path]:
        """The doc's visuals as files (the agent's image store reads paths): next to the traces, or scratch."""
        doc = self.task_dict[job.task][job.split][job.doc_id]
        visuals = job.doc_to_visual(doc) or []
        root = self._folder(job, "images") if self.trace_dir else scratch / _safe(job.task)
        root.mkdir(parents=True, exist_ok=True)
        paths = []
        for k, visual in enumerate(visuals):
            if not hasattr(visual, "save"):
                raise ValueError(f"visual {k} is a {type(visual).__name__}, not an image (video/audio tasks are "
                                 "not supported)")
            path = root / f"{job.doc_id}_{k}.png"
            _atomic_write(path, lambda tmp, image=visual: image.save(tmp, format="PNG"))
            paths.append(path)
        return paths

    def _folder(self, job: Job, leaf: str) -> Path:
        return self.trace_dir / _safe(job.task) / leaf

    def _write(self, job: Job, suffix: str, text: str) -> None:
        if self.trace_dir is None:
            return
        folder = self._folder(job, self.mode)
        folder.mkdir(parents=True, exist_ok=True)
        _atomic_write(folder / f"{job.trace_name}.{suffix}", lambda tmp: Path(tmp).write_text(text))

    def _log_once(self, task: str, prompt, ignored: dict) -> None:
        """Say once per task what the agent does not take from the task (logs, not per doc)."""
        with self._log_lock:
            if task in self._logged:
                return
            self._logged.add(task)
        if ignored:
            logger.info(f"extract_think: {task}: generation kwargs not applied to the agent (they shape a single "
                        f"model call): {ignored}")
        if prompt.dropped:
            logger.info(f"extract_think: {task}: the agent's own answer format replaces the instruction "
                        f"{prompt.dropped!r}; the chosen letter is returned")


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)) or "_"


def _atomic_write(path: Path, write) -> None:
    """Write to a temporary name, then rename: ranks and threads never see (or leave) half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{id(write)}.tmp")
    write(str(tmp))
    os.replace(tmp, path)
