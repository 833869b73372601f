"""The in-process vLLM backend's engine thread, with a stand-in `LLM` (tests/fake_vllm.py): vLLM itself
cannot run here, but gathering concurrent callers into one call, each with its own SamplingParams, is
our code. The stand-in raises if two threads are inside it at once, as vLLM's `LLM` must never be."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest
from PIL import Image

from tools.backends import loading, vllm_backend
from tools.backends.base import Message, PerceiveRequest, ReasonRequest, SamplingSettings
from tools.backends.thinking import CLOSE_THINK, reflection_token_ids
from tools.backends.vllm_backend import VllmPerceiver, VllmReasoner
from tests.fake_vllm import fake_vllm_module


@pytest.fixture(autouse=True)
def fake_vllm(monkeypatch):
    monkeypatch.setattr(vllm_backend, "import_vllm", fake_vllm_module)
    forget_vllm_models()
    yield
    forget_vllm_models()


def forget_vllm_models():
    """Each test gets a fresh stand-in `LLM` and engine thread."""
    for key in [k for k in loading._CACHE if str(k[0]).startswith("vllm")]:
        del loading._CACHE[key]


def concurrently(n: int, call) -> list:
    """Run call(i) for i < n from n threads started together; re-raise the first failure."""
    results, errors, start = [None] * n, [], threading.Barrier(n)

    def work(i):
        start.wait()
        try:
            results[i] = call(i)
        except Exception as exc:  # noqa: BLE001 - handed back to the test below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def settings_for(i: int) -> SamplingSettings:
    """Thread i: NoWait on for even i, a 4-token thinking budget (so a second phase) for every 4th."""
    return SamplingSettings(seed=i, no_wait=i % 2 == 0, max_new_tokens=64, thinking_budget=4 if i % 4 == 0 else None)


def test_sixteen_threads_one_engine_thread_each_caller_its_own_output(tiny):
    reasoner = VllmReasoner(f"vllm:{tiny.reasoner}")

    def ask(i):
        return reasoner.reason([ReasonRequest((Message("user", f"Question Q{i}"),), settings_for(i))])[0]

    outs = concurrently(16, ask)
    llm = reasoner.load()
    assert llm.overlaps == 0
    assert [o.text for o in outs] == [f"Answer: Q{i}" for i in range(16)], "each caller gets its own output"
    assert len(llm.calls) < 16 + 4, "16 first phases and 4 continuations are gathered into fewer calls"
    assert max(len(params) for _, params in llm.calls) > 1
    banned = {i: -100.0 for i in reflection_token_ids(llm.tokenizer)}
    for params in (p for _, batch in llm.calls for p in batch):
        i = params["seed"]
        assert params.get("logit_bias") == (banned if i % 2 == 0 else None), f"NoWait of request {i} only"
        assert params["max_tokens"] in ((4, 60) if i % 4 == 0 else (64,)), "each request's own token limit"
    budgeted = [outs[i] for i in range(0, 16, 4)]
    assert all(CLOSE_THINK in o.raw and o.thinking_tokens == 4 and o.output_tokens > 4 for o in budgeted)


def test_no_wait_is_per_request_within_one_call(tiny):
    reasoner = VllmReasoner(f"vllm:{tiny.reasoner}")
    requests = [ReasonRequest((Message("user", f"Question Q{i}"),), settings_for(i)) for i in (2, 3)]
    reasoner.reason(requests)
    (method, (on, off)), = reasoner.load().calls
    assert method == "generate" and on["seed"] == 2 and on["logit_bias"] and "logit_bias" not in off


def test_perceiver_calls_are_gathered_and_kept_apart(tiny):
    perceiver = VllmPerceiver(f"vllm:{tiny.perceivers['qwen3_vl']}")
    image = Image.new("RGB", (32, 32), "red")

    def look(i):
        return perceiver.perceive([PerceiveRequest((image,), f"item {i}", max_new_tokens=20 + i)])[0]

    outs = concurrently(8, look)
    llm = perceiver.load()
    assert llm.overlaps == 0 and len(llm.calls) < 8
    assert [o.text for o in outs] == [f"I see: item {i}" for i in range(8)]
    assert sorted(p["max_tokens"] for _, batch in llm.calls for p in batch) == [20 + i for i in range(8)]
    assert all(p["temperature"] == 0.0 for _, batch in llm.calls for p in batch)


def test_both_roles_on_one_model_share_its_engine_thread(tiny):
    """One `LLM` per model: a reasoner and a perceiver that name the same model must not enter it together."""
    model = f"vllm:{tiny.perceivers['qwen3_vl']}"
    reasoner, perceiver = VllmReasoner(model), VllmPerceiver(model)
    image = Image.new("RGB", (32, 32), "blue")

    def call(i):
        if i % 2:
            return perceiver.perceive([PerceiveRequest((image,), f"item {i}")])[0].text
        return reasoner.reason([ReasonRequest((Message("user", f"Question Q{i}"),), settings_for(i + 1))])[0].text

    texts = concurrently(8, call)
    assert reasoner.load() is perceiver.load() and reasoner.load().overlaps == 0
    assert texts == [f"I see: item {i}" if i % 2 else f"Answer: Q{i}" for i in range(8)]


def test_engine_options_reach_the_gathering(tiny):
    from tools.backends.registry import make_reasoner
    from tools.backends.options import EngineOptions

    reasoner = make_reasoner(f"vllm:{tiny.reasoner}", options=EngineOptions(max_batch=3))
    outs = concurrently(6, lambda i: reasoner.reason([ReasonRequest((Message("user", f"Q{i}"),),
                                                                    settings_for(2 * i + 1))])[0])  # fmt: skip
    assert [o.text for o in outs] == [f"Answer: Q{i}" for i in range(6)]
    assert max(len(params) for _, params in reasoner.load().calls) <= 3


def test_a_hub_model_not_cached_offline_is_a_load_error(monkeypatch):
    """vLLM downloads a hub id itself; offline and not cached, that is the error the transformers backend gives."""
    from huggingface_hub.errors import LocalEntryNotFoundError

    def offline_llm(model, **engine_kwargs):
        raise LocalEntryNotFoundError("Cannot find an appropriate cached snapshot folder")  # as vLLM 0.33 raises it

    monkeypatch.setattr(vllm_backend, "import_vllm", lambda: SimpleNamespace(LLM=offline_llm))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(loading.ModelLoadError, match="not in the local cache and HF_HUB_OFFLINE is set"):
        VllmReasoner("vllm:Qwen/Qwen3-1.7B").load()
