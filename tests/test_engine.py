"""The in-process engines: batched and cached outputs equal plain `generate`, token for token (greedy).

References are computed with the model's own `generate` on one prompt at a time, without any cache, so
a bug shared by the engine's batched and cached paths cannot hide. Random-weight tiny models in float32
on CPU gave no tie flips on these prompts, so exact equality is asserted (no logit tolerance needed).
"""

from __future__ import annotations

import contextlib
import threading

import pytest
import torch
from PIL import Image, ImageDraw

from tools.backends.base import Message, PerceiveRequest, ReasonRequest, SamplingSettings
from tools.backends.hf_perceiver import TransformersPerceiver
from tools.backends.hf_reasoner import TransformersReasoner
from tools.backends.loading import Placement
from tools.backends.thinking import ThinkingBudgetProcessor
from tools.backends.options import EngineOptions
from tools.tiny.models import PERCEIVER_BUILDERS

CPU = Placement(device="cpu")
GREEDY = SamplingSettings(greedy=True, max_new_tokens=24, thinking_budget=10)
QUESTIONS = ["What colour is the square? Think.", "Count the objects on the left.", "Is there text? Answer: A",
             "Which option: A. red B. blue"]


def fresh_engines():
    """Each test gets engines with empty caches and fresh counters (the models stay loaded)."""
    from tools.backends import loading

    for key in [k for k in loading._CACHE if str(k[0]).endswith("-engine")]:
        del loading._CACHE[key]


@pytest.fixture(autouse=True)
def _fresh():
    fresh_engines()
    yield
    fresh_engines()


def reference_reason(reasoner: TransformersReasoner, request: ReasonRequest) -> str:
    tokenizer, model = reasoner.load()
    enc = tokenizer(reasoner.render(request), return_tensors="pt", add_special_tokens=False)
    n = enc["input_ids"].shape[1]
    budget = request.settings.thinking_budget
    processors = [ThinkingBudgetProcessor(budget, n, tokenizer.encode("\n")[0],
                                          tokenizer.convert_tokens_to_ids("</think>"))] if budget else []
    out = model.generate(**enc, max_new_tokens=request.settings.max_new_tokens, do_sample=False,
                         logits_processor=processors, eos_token_id=[tokenizer.eos_token_id],
                         pad_token_id=tokenizer.pad_token_id)
    return tokenizer.decode(out[0, n:], skip_special_tokens=True)


def request(text: str, settings=GREEDY, history=()) -> ReasonRequest:
    return ReasonRequest(messages=(*history, Message("user", text)), settings=settings)


@contextlib.contextmanager
def counting_forwards(reasoner: TransformersReasoner):
    """The input_ids shape of every forward pass of the reasoner's model while the block runs (a hook: replacing
    `forward` would change what `generate` passes it)."""
    _, model = reasoner.load()
    shapes: list = []
    hook = model.register_forward_pre_hook(lambda _, args, kw: shapes.append(tuple(kw["input_ids"].shape)),
                                           with_kwargs=True)  # fmt: skip
    try:
        yield shapes
    finally:
        hook.remove()


def run_concurrently(fn, items):
    results = [None] * len(items)

    def work(i):
        results[i] = fn(items[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(items))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_reasoner_batched_equals_unbatched(tiny):
    reasoner = TransformersReasoner(str(tiny.reasoner), CPU)
    requests = [request(q) for q in QUESTIONS]
    outs = run_concurrently(lambda r: reasoner.reason([r])[0], requests)
    assert max(reasoner.engine.batcher.batch_sizes) > 1, "concurrent callers must share a generate call"
    assert [o.raw for o in outs] == [reference_reason(reasoner, r) for r in requests]


def test_reasoner_cached_equals_uncached_over_turns(tiny):
    """Turn k+1 reuses turn k's keys/values, and the output does not change."""
    reasoner = TransformersReasoner(str(tiny.reasoner), CPU)
    history: tuple = ()
    previous_prompt = 0
    for turn, text in enumerate(QUESTIONS[:3]):
        req = request(text, history=history)
        out = reasoner.reason([req])[0]
        assert out.raw == reference_reason(reasoner, req)
        if turn:
            assert out.cached_tokens >= previous_prompt, "the whole previous prompt is reused"
        previous_prompt = out.prompt_tokens
        history = (*req.messages, Message("assistant", out.text, reasoning=out.thinking))
    stats = reasoner.engine.cache.stats
    assert stats.reused_tokens > stats.computed_tokens / 2


def test_rows_with_different_cached_prefixes_share_one_prefill(tiny):
    """A conversation's next turn (most of it cached) batched with new prompts (little cached): one generate
    computes every row's uncached tokens, and each output equals plain `generate`."""
    reasoner = TransformersReasoner(str(tiny.reasoner), CPU)
    first = request(QUESTIONS[0])
    out = reasoner.reason([first])[0]
    follow = request(QUESTIONS[1], history=(*first.messages, Message("assistant", out.text, reasoning=out.thinking)))
    batch = [follow, request(QUESTIONS[2]), request(QUESTIONS[3])]
    with counting_forwards(reasoner) as shapes:
        outs = reasoner.reason(batch)
    prefills = [shape[1] > 1 for shape in shapes]
    assert reasoner.engine.batcher.batch_sizes[-1] == 3 and sum(prefills) == 1, "one forward pass prefills all rows"
    assert [o.raw for o in outs] == [reference_reason(reasoner, r) for r in batch]
    assert outs[0].cached_tokens >= out.prompt_tokens, "the conversation still reuses its whole first turn"


def test_a_prefix_shared_by_new_prompts_of_one_batch_is_computed_once(tiny):
    """Four first turns behind one long system prompt, nothing cached: the system prompt's tokens are computed
    once for the batch (not once per row), and every output still equals plain `generate`."""
    reasoner = TransformersReasoner(str(tiny.reasoner), CPU)
    system = Message("system", "You are a careful visual assistant. " * 12)
    batch = [ReasonRequest(messages=(system, Message("user", q)), settings=GREEDY) for q in QUESTIONS]
    tokenizer, _ = reasoner.load()
    lengths = [len(tokenizer(reasoner.render(r), add_special_tokens=False)["input_ids"]) for r in batch]
    with counting_forwards(reasoner) as shapes:
        outs = reasoner.reason(batch)
    computed = sum(rows * length for rows, length in shapes if length > 1)
    shared = min(lengths) - 20  # the system prompt and template around it: well over 64 tokens
    assert shared > 64 and reasoner.engine.batcher.batch_sizes[-1] == 4
    assert computed < sum(lengths) - 2 * shared, "the shared prefix was computed once, not per row"
    assert [o.raw for o in outs] == [reference_reason(reasoner, r) for r in batch]


def test_a_row_with_a_long_uncached_prompt_is_prefilled_on_its_own(tiny):
    """Three follow-ups (a few new tokens each) and one long new prompt: the long one is prefilled alone, so
    the batched prefill pads the follow-ups to their own few tokens, not to its hundreds; outputs unchanged."""
    reasoner = TransformersReasoner(str(tiny.reasoner), CPU)
    firsts = [request(q) for q in QUESTIONS[:3]]
    outs = [reasoner.reason([r])[0] for r in firsts]
    batch = [request("And why?", history=(*r.messages, Message("assistant", o.text, reasoning=o.thinking)))
             for r, o in zip(firsts, outs)] + [request(" ".join(QUESTIONS * 8))]
    with counting_forwards(reasoner) as prefills:
        outs = reasoner.reason(batch)
    assert [o.raw for o in outs] == [reference_reason(reasoner, r) for r in batch]
    long, batched = [shape for shape in prefills if shape[1] > 1]
    assert long[0] == 1 and long[1] > 300 and batched[0] == 4 and batched[1] < 100, "the follow-ups pad to their own"


def test_cache_off_is_the_same(tiny):
    reasoner = TransformersReasoner(str(tiny.reasoner), CPU, options=EngineOptions(reasoner_cache_mb=0, max_batch=1))
    out = reasoner.reason([request(QUESTIONS[0])])[0]
    assert out.cached_tokens == 0 and out.raw == reference_reason(reasoner, request(QUESTIONS[0]))


def test_seeded_sampling_is_per_request_and_leaves_the_global_rng_alone(tiny):
    reasoner = TransformersReasoner(str(tiny.reasoner), CPU)
    seeded = SamplingSettings(seed=11, max_new_tokens=20, thinking_budget=None)
    alone = reasoner.reason([request("hi", seeded)])[0].raw
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    together = reasoner.reason([request("hi", seeded), request("something else", seeded.replace(seed=5))])
    assert torch.equal(torch.rand(3), expected_next), "sampling must not draw from the global RNG"
    assert together[0].raw == alone, "a request's sample must not depend on its batch companions"
    other = reasoner.reason([request("hi", seeded.replace(seed=12))])[0].raw
    assert other != alone


def test_rows_keep_their_own_limits_in_one_batch(tiny):
    reasoner = TransformersReasoner(str(tiny.reasoner), CPU)
    short = SamplingSettings(greedy=True, max_new_tokens=3, thinking_budget=None)
    long = SamplingSettings(greedy=True, max_new_tokens=12, thinking_budget=None)
    a, b = reasoner.reason([request(QUESTIONS[0], short), request(QUESTIONS[1], long)])
    assert (a.output_tokens, a.finish_reason) == (3, "length")
    assert b.raw == reference_reason(reasoner, request(QUESTIONS[1], long))


def test_budget_boost_starts_at_95_percent_not_before():
    """Every step before 95% of the budget leaves the scores untouched (a boost from 50% would not)."""
    proc = ThinkingBudgetProcessor(budget=100, prompt_length=2, newline_id=1, end_think_id=2)
    for step in range(0, 95):
        ids = torch.cat([torch.zeros(1, 2, dtype=torch.long), torch.full((1, step), 5)], dim=1)
        assert torch.equal(proc(ids, torch.zeros(1, 8)), torch.zeros(1, 8)), f"changed at step {step}"
    ids = torch.cat([torch.zeros(1, 2, dtype=torch.long), torch.full((1, 95), 5)], dim=1)
    assert proc(ids, torch.zeros(1, 8))[0, 2] > 0


def test_budget_close_comes_in_the_last_5_percent_of_real_generate(tiny):
    reasoner = TransformersReasoner(str(tiny.reasoner), CPU)
    out = reasoner.reason([request(QUESTIONS[0], SamplingSettings(greedy=True, max_new_tokens=60,
                                                                  thinking_budget=40))])[0]
    free = reasoner.reason([request(QUESTIONS[0], SamplingSettings(greedy=True, max_new_tokens=60,
                                                                   thinking_budget=None))])[0]
    assert "</think>" not in free.raw[: len(out.raw)] or free.thinking_tokens > 40, "control: weights alone"
    assert 38 <= out.thinking_tokens <= 40, "closed by the budget's last steps, not by an early boost"


# --- perceiver ----------------------------------------------------------------------------------


def picture(colour: str, size=(120, 80)) -> Image.Image:
    img = Image.new("RGB", size, "white")
    ImageDraw.Draw(img).rectangle((10, 10, 60, 60), fill=colour)
    return img


def reference_perceive(perceiver: TransformersPerceiver, req: PerceiveRequest) -> str:
    from tools.backends.output_parsing import split_thinking

    processor, model = perceiver.load()
    inputs = processor(images=list(req.images), text=perceiver.render(req), return_tensors="pt")
    out = model.generate(**inputs, max_new_tokens=req.max_new_tokens, do_sample=False)
    return split_thinking(processor.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True))[1]


@pytest.mark.parametrize("family", list(PERCEIVER_BUILDERS))
def test_perceiver_batched_and_cached_equal_plain_generate(tiny, family):
    perceiver = TransformersPerceiver(str(tiny.perceivers[family]), CPU)
    red, blue = picture("red"), picture("blue", (64, 150))

    def req(img, key, text):
        return PerceiveRequest((img,), text, image_key=key, max_new_tokens=10)

    first = [req(red, "red", "Describe the colour of the car."), req(blue, "blue", "Count the objects.")]
    follow = [req(red, "red", "What text is present?"), req(blue, "blue", "Describe the colour of the car.")]
    outs = perceiver.perceive(first) + perceiver.perceive(follow)
    assert [o.text for o in outs] == [reference_perceive(perceiver, r) for r in first + follow]
    assert [o.cached_tokens > 0 for o in outs] == [False, False, True, True], "follow-ups reuse the image"
    assert perceiver.engine.batcher.batch_sizes[0] == 2
    # Same placeholder tokens, other pixels: an image key never borrows another image's keys/values.
    other = perceiver.perceive([req(picture("green"), "green", "What text is present?")])[0]
    assert other.cached_tokens == 0


@pytest.mark.parametrize("family", list(PERCEIVER_BUILDERS))
def test_perceiver_follow_ups_on_cached_images_share_one_generate(tiny, family):
    """Follow-up extractions on cached images (the paper's instruction with requests of different lengths, two
    images) batch into one padded generate without pixels, and each output equals plain `generate`."""
    from tools.perception import extraction_instruction

    perceiver = TransformersPerceiver(str(tiny.perceivers[family]), CPU)
    red, blue = picture("red"), picture("blue")

    def req(img, key, request):
        return PerceiveRequest((img,), extraction_instruction(request), image_key=key, max_new_tokens=8)

    perceiver.perceive([req(red, "red", None), req(blue, "blue", None)])
    follow = [req(red, "red", "the text"), req(blue, "blue", "the colour of the car on the left"),
              req(red, "red", "the number of objects")]
    engine = perceiver.engine
    calls, generate = [], engine.model.generate
    engine.model.generate = lambda **kw: calls.append("pixel_values" in kw) or generate(**kw)
    try:
        outs = perceiver.perceive(follow)
    finally:
        engine.model.generate = generate
    assert [o.text for o in outs] == [reference_perceive(perceiver, r) for r in follow]
    assert calls == [False], "one generate for the three follow-ups, and no pixels in it"
    assert all(o.cached_tokens > 0 for o in outs)


def test_perceiver_cache_is_bounded_and_can_be_off(tiny):
    path = str(tiny.perceivers["llava"])
    small = TransformersPerceiver(path, CPU, options=EngineOptions(perceiver_cache_mb=0.05))
    for colour in ("red", "blue", "green", "yellow"):
        small.perceive([PerceiveRequest((picture(colour),), "Describe.", image_key=colour, max_new_tokens=6)])
    assert small.engine.cache.nbytes <= 0.05 * 1024 * 1024 and small.engine.cache.stats.evictions > 0
    fresh_engines()
    off = TransformersPerceiver(path, CPU, options=EngineOptions(perceiver_cache_mb=0))
    reqs = [PerceiveRequest((picture("red"),), "Describe.", image_key="r", max_new_tokens=6)] * 2
    assert [o.cached_tokens for o in off.perceive(reqs[:1]) + off.perceive(reqs[1:])] == [0, 0]
