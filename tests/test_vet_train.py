"""`xthink vet-train` on tiny models: the inference prompt is what training sees, the loss is on the target only,
a few examples are overfitted (and then decoded by the product's perceiver), checkpoints resume after a kill,
LoRA merges, and the result answers as `--perceiver`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from tests.kill import ENV, kill_when
from tools.tiny.models import PERCEIVER_BUILDERS
from tools.vet.dataset import Pair, write_dataset

INSTRUCTION = "Describe the fine-grained content of the image, including scenes, objects, relationships, " \
              "instance location, and any text present. Especially, pay attention to the colour of the square."
TARGETS = {"red": "the square is red", "blue": "the square is blue"}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Two training pairs whose targets differ only in the colour: the image decides the last word."""
    root = tmp_path_factory.mktemp("vetdata")
    (root / "images").mkdir()
    pairs = []
    for colour, target in TARGETS.items():
        img = Image.new("RGB", (48, 40), "white")
        ImageDraw.Draw(img).rectangle((6, 6, 30, 30), fill=colour)
        img.save(root / "images" / f"{colour}.png")
        pairs.append(Pair(colour, f"images/{colour}.png", INSTRUCTION, target))
    write_dataset(root, pairs)
    return root


def rows(data: Path) -> list[dict]:
    from tools.vet.dataset import load_pairs

    return list(load_pairs(data))


def greedy(model_dir: Path, image: Image.Image, tokens: int = 8) -> str:
    """The product's in-process perceiver, as `xthink ask --perceiver` loads it."""
    from tools.backends.base import PerceiveRequest
    from tools.backends.hf_perceiver import TransformersPerceiver

    out = TransformersPerceiver(str(model_dir)).perceive([PerceiveRequest((image,), INSTRUCTION, max_new_tokens=tokens)])
    return out[0].text


@pytest.mark.parametrize("family", list(PERCEIVER_BUILDERS))
def test_training_prompt_is_the_inference_prompt(tiny, data, family):
    """The collator's prompt text equals the perceiver's own rendering, its prompt ids equal the processor's
    ids for that text with the image, and their count is what the perceiver reports it read at inference."""
    from transformers import AutoProcessor

    from tools.backends.hf_perceiver import TransformersPerceiver
    from tools.vet.collate import IGNORE, VetCollator, request

    processor = AutoProcessor.from_pretrained(tiny.perceivers[family])
    collator = VetCollator(processor)
    batch_rows = rows(data)
    perceiver = TransformersPerceiver(str(tiny.perceivers[family]))
    batch = collator(batch_rows)
    for i, row in enumerate(batch_rows):
        req = request(row)
        rendered = perceiver.render(req)
        assert collator.prompts([row]) == [rendered]
        assert rendered.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
        alone = processor(images=[[row["image"]]], text=[rendered], return_tensors="pt")["input_ids"][0].tolist()
        real = batch["input_ids"][i][batch["attention_mask"][i].bool()].tolist()
        prompt_len = len(real) - sum(v != IGNORE for v in batch["labels"][i].tolist())
        assert real[:prompt_len] == alone
        assert perceiver.perceive([req.__class__(req.images, req.instruction, max_new_tokens=1)])[0].prompt_tokens \
            == prompt_len


def test_loss_is_on_the_target_tokens_only(tiny, data):
    from transformers import AutoProcessor

    from tools.vet.collate import IGNORE, VetCollator

    processor = AutoProcessor.from_pretrained(tiny.perceivers["llava_onevision"])
    batch_rows = rows(data)
    batch = VetCollator(processor)(batch_rows)
    keep, width = batch["logits_to_keep"], batch["input_ids"].shape[1]
    assert batch["labels"].shape == (len(batch_rows), keep)
    for i, row in enumerate(batch_rows):
        labels, ids = batch["labels"][i].tolist(), batch["input_ids"][i, width - keep :].tolist()
        kept = [j for j, v in enumerate(labels) if v != IGNORE]
        assert kept == list(range(kept[0], keep)), "one span, ending at the right edge"
        assert kept[0] >= 1, "the prompt's last position (which predicts the first target token) is kept"
        assert [ids[j] for j in kept] == [labels[j] for j in kept]
        assert processor.tokenizer.decode([labels[j] for j in kept]) == row["target"] + "<|im_end|>\n"
        mask = batch["attention_mask"][i].tolist()
        first = mask.index(1)
        assert not any(mask[:first]) and all(mask[first:]), "left padding only, masked"


def test_loss_over_kept_logits_equals_the_full_loss(tiny, data):
    """Computing logits only where labels are is an optimisation: the loss must be the full sequence's."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from tools.vet.collate import VetCollator

    base = tiny.perceivers["qwen2_5_vl"]
    model = AutoModelForImageTextToText.from_pretrained(base).eval()
    batch = VetCollator(AutoProcessor.from_pretrained(base))(rows(data))
    keep, width = batch.pop("logits_to_keep"), batch["input_ids"].shape[1]
    full_labels = torch.full((batch["labels"].shape[0], width), -100)
    full_labels[:, width - keep :] = batch["labels"]
    with torch.no_grad():
        kept = model(**batch, logits_to_keep=keep).loss
        full = model(**{**batch, "labels": full_labels}).loss
    assert torch.allclose(kept, full, atol=1e-5)


def train(data, base, out, **overrides):
    from tools.vet.train import TrainConfig, run_training

    settings = {"max_steps": 60, "lr": 3e-3, "vision_lr": 3e-3, "batch_size": 2, "logging_steps": 5,
                "save_steps": 1000, "device": "cpu", **overrides}  # fmt: skip
    return run_training(TrainConfig(data=data, base=str(base), out=out, **settings))


@pytest.fixture(scope="module")
def trained(tiny, data, tmp_path_factory):
    out = tmp_path_factory.mktemp("trained") / "perceiver"
    return train(data, tiny.perceivers["llava_onevision"], out), out


def test_full_training_overfits_and_the_perceiver_says_the_target(tiny, data, trained):
    """Threshold: the final logged loss under 0.3x the first. An untrained model sits at about ln(vocab) = 6.4
    nats per target token (it gives each target token ~1/600); 0.3x means the target tokens get on average
    ~15% probability, which only gradient steps on these targets produce. The decode check is stricter: the
    greedy output of the saved folder, loaded by the product's perceiver, starts with the target (and names
    the right colour for each image), which the base model did not."""
    summary, out = trained
    assert summary.steps == 60 and summary.first_loss > 5.0
    assert summary.final_loss < 0.3 * summary.first_loss, summary.losses
    for row in rows(data):
        assert not greedy(tiny.perceivers["llava_onevision"], row["image"]).startswith("the square")
        assert greedy(out, row["image"]).startswith(row["target"])
    assert (out / "config.json").exists() and (out / "vet_train.json").exists()


def test_vision_tower_has_its_own_learning_rate(tiny):
    from tools.vet.train import load_base, param_groups

    _, model = load_base(str(tiny.perceivers["llava_onevision"]))
    groups = param_groups(model, set(), lr=1e-5, vision_lr=2e-6, weight_decay=0.0)
    vision = {id(p) for n, p in model.named_parameters() if n.startswith("model.vision_tower.")}
    assert vision and sum(p.numel() for p in model.parameters()) == sum(p.numel() for g in groups for p in g["params"])
    for group in groups:
        ids = {id(p) for p in group["params"]}
        assert group["lr"] == (2e-6 if ids <= vision else 1e-5) and (ids <= vision or not ids & vision)


def test_second_family_trains(tiny, data, tmp_path):
    summary = train(data, tiny.perceivers["qwen2_5_vl"], tmp_path / "qwen", max_steps=50)
    assert summary.final_loss < 0.3 * summary.first_loss, summary.losses
    for row in rows(data):
        assert greedy(tmp_path / "qwen", row["image"]).startswith("the square is")  # the target's first tokens


def test_lora_trains_adapters_and_saves_a_merged_model(tiny, data, tmp_path):
    """LoRA leaves the tiny model's embeddings and output layer frozen; with random weights and hidden size 64
    they cap the logits (RMSNorm output times a 0.02-scale lm_head), so the loss cannot fall far. What must
    hold: it falls, the saved folder is a plain model (no adapter weights) that gives the same logits as base
    + adapter, and the adapter is kept."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from tools.vet.collate import VetCollator

    base = tiny.perceivers["llava_onevision"]
    out = tmp_path / "lora"
    summary = train(data, base, out, lora=True, max_steps=40)
    assert summary.final_loss < 0.9 * summary.first_loss, summary.losses
    merged = AutoModelForImageTextToText.from_pretrained(out).eval()
    assert not any("lora" in n for n, _ in merged.named_parameters())
    adapted = PeftModel.from_pretrained(AutoModelForImageTextToText.from_pretrained(base), out / "adapter").eval()
    batch = VetCollator(AutoProcessor.from_pretrained(out))(rows(data))
    batch.pop("labels")
    with torch.no_grad():
        a, b = merged(**batch).logits, adapted(**batch).logits
        plain = AutoModelForImageTextToText.from_pretrained(base).eval()(**batch).logits
    assert torch.allclose(a, b, atol=1e-4) and not torch.allclose(a, plain, atol=1e-3)


def test_killed_training_resumes_from_its_checkpoint(tiny, data, tmp_path):
    out = tmp_path / "resumed"
    cmd = [sys.executable, "-m", "graphs.cli.app", "vet-train", "--data", str(data), "--base",
           str(tiny.perceivers["llava"]), "--out", str(out), "--max-steps", "400", "--save-steps", "5",
           "--lr", "1e-3", "--device", "cpu"]
    kill_when(cmd, lambda: (out / "checkpoints" / "checkpoint-10" / "trainer_state.json").exists(), settle=0.5)
    saved = sorted(int(p.name.split("-")[1]) for p in (out / "checkpoints").glob("checkpoint-*")
                   if (p / "trainer_state.json").exists())  # fmt: skip
    assert saved and saved[-1] < 400, "killed part way through"
    short = [*cmd[:cmd.index("400")], str(saved[-1] + 5), *cmd[cmd.index("400") + 1:]]
    done = subprocess.run(short, env=ENV, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"resumed from {out / 'checkpoints' / f'checkpoint-{saved[-1]}'}" in done.stdout.replace("\n", "")
    history = json.loads((out / "vet_train.json").read_text())
    assert history["summary"]["steps"] == saved[-1] + 5
    final = history["log_history"][-1]
    ran = final["train_runtime"] * final["train_steps_per_second"]
    assert round(ran) == 5, "the resumed process ran only the 5 steps after the checkpoint"


def test_trained_perceiver_answers_in_ask(tiny, trained, data):
    _, out = trained
    image = data / "images" / "red.png"
    proc = subprocess.run([sys.executable, "-m", "graphs.cli.app", "ask", str(image), "What colour is the square?",
                           "--mode", "caption", "--reasoner", str(tiny.reasoner), "--perceiver", str(out), "--greedy",
                           "--max-new-tokens", "16", "--device", "cpu", "--json"],
                          env=ENV, capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    steps = [s for s in result["steps"] if s.get("kind", s.get("type")) in (None, "extract") or "output" in s]
    assert any("the square is" in s.get("output", "") for s in steps), result["steps"]


def test_bad_training_input_is_one_line(tiny, tmp_path):
    from typer.testing import CliRunner

    from graphs.cli.app import app

    runner = CliRunner()
    result = runner.invoke(app, ["vet-train", "--data", str(tmp_path), "--base", str(tiny.perceivers["llava"]),
                                 "--out", str(tmp_path / "o")])  # fmt: skip
    assert result.exit_code == 2 and "no data/*.parquet" in result.output and "Traceback" not in result.output


def test_a_checkpoint_cut_short_by_a_kill_is_skipped(tmp_path):
    from tools.vet.train import latest_checkpoint

    folder = tmp_path / "checkpoints"
    for step, state in [(5, "{}"), (10, "{}"), (15, None), (20, '{"glob')]:
        (folder / f"checkpoint-{step}").mkdir(parents=True)
        if state is not None:
            (folder / f"checkpoint-{step}" / "trainer_state.json").write_text(state)
    assert latest_checkpoint(tmp_path) == str(folder / "checkpoint-10")
    assert latest_checkpoint(tmp_path / "none") is None
