"""`xthink convert` on a synthetic checkpoint in the paper's LLaVA-NeXT layout: exact, strict, loadable."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from typer.testing import CliRunner

from graphs.cli.app import app
from tests.llava_next import write_checkpoint
from tools.backends.base import PerceiveRequest
from tools.backends.hf_perceiver import TransformersPerceiver, vlm_folder
from tools.backends.loading import Placement
from tools.backends.checkpoint_convert import convert
from tools.backends.llava_next_mapping import ConversionError, grid_pinpoints


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return write_checkpoint(tmp_path_factory.mktemp("src"))


@pytest.fixture(scope="module")
def converted(checkpoint, tmp_path_factory):
    dest = tmp_path_factory.mktemp("dst") / "converted"
    result = CliRunner().invoke(app, ["convert", str(checkpoint), str(dest)])
    assert result.exit_code == 0, result.output
    return dest


def test_loads_with_auto_classes_and_generates(converted):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(converted)
    processor = AutoProcessor.from_pretrained(converted)
    assert type(model).__name__ == "LlavaOnevisionForConditionalGeneration"
    assert model.config.vision_config.num_hidden_layers == 2 and model.config.vision_feature_layer == -1
    prompt = processor.apply_chat_template([{"role": "user", "content": [
        {"type": "image"}, {"type": "text", "text": "Describe."}]}], add_generation_prompt=True)
    assert prompt == ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<image>\n"
                      "Describe.<|im_end|>\n<|im_start|>assistant\n")
    inputs = processor(images=[Image.new("RGB", (50, 30), "red")], text=prompt, return_tensors="pt")
    out = model.generate(**inputs, max_new_tokens=5, do_sample=False)
    assert out.shape[1] == inputs["input_ids"].shape[1] + 5


def test_every_tensor_lands_exactly(checkpoint, converted):
    from transformers import AutoModelForImageTextToText

    source = load_file(str(checkpoint / "model.safetensors"))
    target = AutoModelForImageTextToText.from_pretrained(converted).state_dict()
    pairs = {
        "model.mm_projector.0.weight": "model.multi_modal_projector.linear_1.weight",
        "model.mm_projector.2.bias": "model.multi_modal_projector.linear_2.bias",
        "model.image_newline": "model.image_newline",
        "model.layers.1.self_attn.q_proj.weight": "model.language_model.layers.1.self_attn.q_proj.weight",
        "model.vision_tower.vision_tower.vision_model.encoder.layers.1.mlp.fc2.weight":
            "model.vision_tower.encoder.layers.1.mlp.fc2.weight",
        "lm_head.weight": "lm_head.weight",
    }
    for src, dst in pairs.items():
        assert torch.equal(source[src], target[dst]), src
    rows = source["model.embed_tokens.weight"].shape[0]
    assert torch.equal(source["model.embed_tokens.weight"], target["model.language_model.embed_tokens.weight"][:rows])
    report = json.loads((converted / "conversion.json").read_text())
    assert all(k.startswith("model.vision_tower.vision_tower.vision_model.head.") for k in report["ignored"])
    assert report["ignored"] and report["filled"] == {}


def test_tied_checkpoint_without_lm_head(tmp_path):
    ckpt = write_checkpoint(tmp_path / "tied", tied=True)
    report = convert(str(ckpt), tmp_path / "out")
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(report.dest)
    assert torch.equal(model.lm_head.weight, model.model.language_model.embed_tokens.weight)


def test_unknown_source_tensor_is_an_error(tmp_path):
    ckpt = write_checkpoint(tmp_path / "x", extra_tensors={"model.mm_projector.5.weight": torch.zeros(2, 2)})
    with pytest.raises(ConversionError, match="no place in the target: model.mm_projector.5.weight"):
        convert(str(ckpt), tmp_path / "out")


def test_missing_tensor_is_an_error(tmp_path):
    ckpt = write_checkpoint(tmp_path / "y", drop=("model.layers.0.mlp.up_proj.weight",))
    with pytest.raises(ConversionError, match="uninitialised: model.language_model.layers.0.mlp.up_proj.weight"):
        convert(str(ckpt), tmp_path / "out")


def test_not_a_llava_next_checkpoint(tiny, tmp_path):
    result = CliRunner().invoke(app, ["convert", str(tiny.reasoner), str(tmp_path / "out")])
    assert result.exit_code == 2 and "not a LLaVA-NeXT checkpoint" in result.output


def test_unreachable_hub_source(tmp_path):
    result = CliRunner().invoke(app, ["convert", "markendo/llava-extract-qwen3-0.6B", str(tmp_path / "o")])
    assert result.exit_code == 2 and "hf download" in result.output and "Traceback" not in result.output


def test_perceiver_converts_on_first_use_and_reuses(checkpoint, tmp_path, monkeypatch, image_path):
    monkeypatch.setenv("XTHINK_CACHE", str(tmp_path / "cache"))
    perceiver = TransformersPerceiver(str(checkpoint), Placement("cpu"))
    request = PerceiveRequest((Image.new("RGB", (40, 40), "blue"),), "Describe.", max_new_tokens=4)
    first = perceiver.perceive([request])[0]
    cached = list((tmp_path / "cache" / "converted").iterdir())
    assert len(cached) == 1 and (cached[0] / "conversion.json").exists()
    stamp = (cached[0] / "conversion.json").stat().st_mtime_ns
    again = TransformersPerceiver(str(checkpoint), Placement("cpu"))
    assert vlm_folder(again.name) == str(cached[0]) and (cached[0] / "conversion.json").stat().st_mtime_ns == stamp
    assert first.output_tokens == 4


def test_grid_pinpoints_forms():
    assert grid_pinpoints({"image_grid_pinpoints": "(1x1),...,(2x2)"}, 384) == [
        [384, 384], [384, 768], [768, 384], [768, 768]]
    assert grid_pinpoints({"image_grid_pinpoints": [[384, 768]]}, 384) == [[384, 768]]
