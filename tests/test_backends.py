"""The transformers backends on tiny models: budget, NoWait, determinism, counts, loading errors."""

from __future__ import annotations

import pytest
import torch

from tools.backends.base import Message, ReasonRequest, SamplingSettings
from tools.backends.hf_perceiver import TransformersPerceiver
from tools.backends.hf_reasoner import TransformersReasoner
from tools.backends.loading import ModelLoadError, Placement
from tools.backends.thinking import ThinkingBudgetProcessor, is_reflection_token, reflection_token_ids
from tools.backends.spec import ModelSpecError, parse_model

CPU = Placement(device="cpu")


def ask(reasoner, settings, text="What colour is the square? Think."):
    return reasoner.reason([ReasonRequest(messages=(Message("user", text),), settings=settings)])[0]


def test_paper_settings():
    think, plain = SamplingSettings.paper(), SamplingSettings.paper(thinking=False)
    assert (think.temperature, think.top_p, think.max_new_tokens, think.thinking_budget) == (0.6, 0.95, 5120, 4096)
    assert (plain.temperature, plain.top_p, plain.max_new_tokens) == (0.7, 0.8, 1024)


def test_budget_schedule_on_scores():
    proc = ThinkingBudgetProcessor(budget=100, prompt_length=3, newline_id=1, end_think_id=2)
    prompt = torch.zeros(1, 3, dtype=torch.long)

    def scores_at(step, generated_token=5):
        ids = torch.cat([prompt, torch.full((1, step), generated_token)], dim=1)
        return proc(ids, torch.zeros(1, 8))

    assert torch.equal(scores_at(94), torch.zeros(1, 8)), "nothing before 95% of the budget"
    early, late = scores_at(95), scores_at(97)
    assert 0 < early[0, 1] < late[0, 1] and early[0, 2] > 0 and late[0, 0] == 0, "the boost grows"
    forced_nl = scores_at(98)  # the 99th token
    assert forced_nl.argmax().item() == 1 and torch.isinf(forced_nl[0, 2])
    forced_end = scores_at(99)  # the 100th token
    assert forced_end.argmax().item() == 2 and torch.isinf(forced_end[0, 1])
    assert torch.equal(scores_at(99, generated_token=2), torch.zeros(1, 8)), "closed rows are left alone"


def test_budget_closes_thinking_in_real_generate(tiny):
    reasoner = TransformersReasoner(str(tiny.reasoner), CPU)
    out = ask(reasoner, SamplingSettings(greedy=True, max_new_tokens=30, thinking_budget=8))
    assert "</think>" in out.raw and 0 < out.thinking_tokens <= 8


def test_without_budget_the_same_run_does_not_close_in_time(tiny):
    """The control for the test above: the close there came from the budget, not from the weights."""
    reasoner = TransformersReasoner(str(tiny.reasoner), CPU)
    out = ask(reasoner, SamplingSettings(greedy=True, max_new_tokens=30, thinking_budget=None))
    assert "</think>" not in out.raw or out.thinking_tokens > 8


@pytest.mark.parametrize("text, hit", [(" Wait", True), ("wait,", True), ("Hmm", True), (" but", True),
                                       ("waiter", False), ("button", False), (" nowhere", False),
                                       ("double-check", True), (" Answer", False)])
def test_reflection_words(text, hit):
    assert is_reflection_token(text) is hit


def test_no_wait_masks_reflection_tokens(tiny):
    reasoner = TransformersReasoner(str(tiny.reasoner), CPU)
    tokenizer, _ = reasoner.load()
    banned = set(reflection_token_ids(tokenizer))
    assert tokenizer.convert_tokens_to_ids("wait") in banned
    assert tokenizer.convert_tokens_to_ids("waiter") not in banned
    settings = SamplingSettings(greedy=False, seed=3, max_new_tokens=40, thinking_budget=None, no_wait=True)
    out = ask(reasoner, settings)
    generated = tokenizer.encode(out.raw, add_special_tokens=False)
    assert not banned & set(generated)


def test_greedy_is_deterministic_and_seeded_sampling_repeats(tiny):
    reasoner = TransformersReasoner(str(tiny.reasoner), CPU)
    greedy = SamplingSettings(greedy=True, max_new_tokens=16, thinking_budget=None)
    assert ask(reasoner, greedy).raw == ask(reasoner, greedy).raw
    seeded = SamplingSettings(seed=7, max_new_tokens=16, thinking_budget=None)
    assert ask(reasoner, seeded).raw == ask(reasoner, seeded).raw


def test_counts_and_length_finish(tiny):
    reasoner = TransformersReasoner(str(tiny.reasoner), CPU)
    settings = SamplingSettings(greedy=True, max_new_tokens=5, thinking_budget=None)
    out = ask(reasoner, settings)
    tokenizer, _ = reasoner.load()
    prompt = reasoner.render(ReasonRequest(messages=(Message("user", "What colour is the square? Think."),),
                                           settings=settings))
    assert out.prompt_tokens == len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    assert out.output_tokens == 5 and out.finish_reason == "length" and out.seconds > 0


def test_models_load_once_per_process(tiny):
    a = TransformersReasoner(str(tiny.reasoner), CPU).load()
    b = TransformersReasoner(str(tiny.reasoner), CPU).load()
    assert a[1] is b[1]


def test_render_uses_the_template_with_tools_and_thinking_switch(tiny):
    reasoner = TransformersReasoner(str(tiny.reasoner), CPU)
    tool = {"type": "function", "function": {"name": "extract", "parameters": {"type": "object"}}}
    off = reasoner.render(ReasonRequest((Message("user", "hi"),), SamplingSettings(thinking=False), (tool,)))
    on = reasoner.render(ReasonRequest((Message("user", "hi"),), SamplingSettings(thinking=True)))
    assert "<tools>" in off and '"name": "extract"' in off and off.endswith("<think>\n\n</think>\n\n")
    assert "<tools>" not in on and on.endswith("<|im_start|>assistant\n")


# --- model names and loading errors -------------------------------------------------------------


def test_hub_id_and_local_folder(tiny):
    assert parse_model("Qwen/Qwen3-1.7B").kind == "hub"
    assert parse_model(str(tiny.reasoner)).kind == "local"


@pytest.mark.parametrize("text, message", [
    ("", "no model"), ("http://", "not an http"), ("./no/such/folder", "neither an existing folder"),
    ("a/b/c", "neither"), ("bad id!", "neither"),
])
def test_bad_model_strings(text, message):
    with pytest.raises(ModelSpecError, match=message):
        parse_model(text)


def test_folder_without_config(tmp_path):
    with pytest.raises(ModelSpecError, match="no config.json"):
        parse_model(str(tmp_path))


def test_unreachable_hub_says_how_to_pass_a_folder():
    with pytest.raises(ModelLoadError) as info:
        TransformersReasoner("nobody/no-such-model-xyz", CPU).load()
    assert "HF_HUB_OFFLINE" in str(info.value) and "pass that folder" in str(info.value)


def test_perceiver_that_is_not_a_vision_model(tiny):
    with pytest.raises(ModelLoadError, match="not a vision-language model"):
        TransformersPerceiver(str(tiny.reasoner), CPU).load()


def test_reasoner_that_is_a_vision_model(tiny):
    with pytest.raises(ModelLoadError, match="vision-language model"):
        TransformersReasoner(str(tiny.perceivers["llava"]), CPU).load()


def _while_blocked(hold, call, seconds: float = 45.0):
    """Run `call` while `hold(build)` is inside `build`, a load that waits until released; return what `call`
    returned in time (nothing if it waited for the load)."""
    import threading

    inside, release, done = threading.Event(), threading.Event(), []

    def build():
        inside.set()
        return release.wait(600)  # longer than `call` may take: the load ends only when released

    blocker = threading.Thread(target=hold, args=(build,), daemon=True)
    blocker.start()
    try:
        assert inside.wait(30), "the slow load never started"
        worker = threading.Thread(target=lambda: done.append(call()), daemon=True)
        worker.start()
        worker.join(seconds)
        return list(done)  # a copy: the worker, released below, may still append
    finally:
        release.set()
        blocker.join(60)


def test_a_model_loading_never_stalls_calls_on_loaded_models(tiny, image_path):
    """One model's load (held open here by a loader that waits) must not make runs on other models wait."""
    from PIL import Image

    from tools.backends.base import PerceiveRequest
    from tools.backends.loading import cached
    from tools.backends.registry import shared_perceiver, shared_reasoner

    reasoner = shared_reasoner(str(tiny.reasoner), CPU)
    perceiver = shared_perceiver(str(tiny.perceivers["llava_onevision"]), CPU)
    quick = SamplingSettings(greedy=True, max_new_tokens=4, thinking_budget=None)
    look = PerceiveRequest((Image.open(image_path).convert("RGB"),), "Describe.", "square", max_new_tokens=4)
    ask(reasoner, quick), perceiver.perceive([look])  # loaded before the slow load starts

    def both():
        return ask(reasoner, quick), perceiver.perceive([look])[0]

    assert _while_blocked(lambda build: cached(("test-slow-model",), build), both), \
        "a call on a loaded model waited for another model's weights"


def test_creating_a_backend_never_stalls_the_registry(tiny, monkeypatch):
    """A slow backend creation (a vLLM engine starting) holds only its own key."""
    from tools.backends import registry

    shared = registry.shared_reasoner(str(tiny.reasoner), CPU)

    def hold(build):
        monkeypatch.setattr(registry, "make_reasoner", lambda *args: build())
        registry.shared_reasoner("test/slow-model", CPU)

    assert _while_blocked(hold, lambda: registry.shared_reasoner(str(tiny.reasoner), CPU) is shared, 20) == [True]
