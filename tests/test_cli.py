"""The `xthink` CLI: a real subprocess end to end, and every user mistake as a clean non-zero exit."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from PIL import Image
from typer.testing import CliRunner

from graphs.cli.app import app

runner = CliRunner()
FAST = ["--greedy", "--max-new-tokens", "12", "--thinking-budget", "8", "--device", "cpu"]


def invoke(*args: str):
    return runner.invoke(app, list(args))


def models(tiny, family="llava_onevision"):
    return ["--reasoner", str(tiny.reasoner), "--perceiver", str(tiny.perceivers[family])]


@pytest.mark.parametrize("mode", ["iterative", "extract", "caption", "direct"])
def test_ask_json_every_mode(tiny, image_path, tmp_path, mode):
    trace = tmp_path / "trace.json"
    result = invoke("ask", str(image_path), "What colour is the square?", "-o", "red", "-o", "blue",
                    "--mode", mode, "--json", "--trace-out", str(trace), *models(tiny, "llava"), *FAST)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["mode"] == mode and "answer" in payload and payload["steps"]
    assert {s["kind"] for s in payload["steps"]} <= {"reason", "extract"}
    assert json.loads(trace.read_text()) == payload


def test_ask_shows_steps_and_answer(tiny, image_path):
    result = invoke("ask", str(image_path), "What colour?", "--mode", "caption", *models(tiny), *FAST)
    assert result.exit_code == 0, result.output
    assert "[1] extract" in result.stdout and "[2] reason" in result.stdout and "Answer:" in result.stdout


def test_real_subprocess_with_json(tiny, image_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "graphs.cli.app", "ask", str(image_path), "Colour?", "-o", "red", "-o", "blue",
           "--json", "--mode", "extract", *models(tiny), *FAST]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    assert [s["kind"] for s in payload["steps"]] == ["reason", "extract", "reason"]


@pytest.fixture()
def bad_files(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    good = tmp_path / "good.png"
    Image.new("RGB", (64, 64), "red").save(good)
    cut = tmp_path / "cut.png"
    cut.write_bytes(good.read_bytes()[:60])
    big = tmp_path / "big.png"
    Image.new("L", (1200, 1200)).save(big)
    return {"text": text, "empty": empty, "good": good, "cut": cut, "big": big, "missing": tmp_path / "nope.jpg"}


@pytest.mark.parametrize("case, extra, message", [
    ("missing", [], "does not exist"),
    ("text", [], "not an image"),
    ("empty", [], "empty"),
    ("cut", [], "truncated or corrupt"),
    ("big", ["--max-pixels", "1000000"], "over the limit"),
])
def test_bad_images(tiny, bad_files, case, extra, message):
    result = invoke("ask", str(bad_files[case]), "Colour?", *models(tiny), *FAST, *extra)
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("args, message", [
    (["   "], "question is empty"),
    (["Colour?", "-o", "red"], "only one option"),
    (["Colour?", "-o", "red", "-o", " "], "option 2 is empty"),
    (["Colour?", "-o", "red", "-o", "Red"], "same text"),
    (["Colour?", "--mode", "magic"], "unknown mode"),
])
def test_bad_questions_and_options(tiny, bad_files, args, message):
    result = invoke("ask", str(bad_files["good"]), *args, *models(tiny), *FAST)
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_only_a_question(tiny):
    result = invoke("ask", "Colour?", *models(tiny))
    assert result.exit_code == 2 and "at least one image" in result.output


def test_lettered_options_are_accepted(tiny, bad_files):
    result = invoke("ask", str(bad_files["good"]), "Colour?", "-o", "A. red", "-o", "B. blue", "--json",
                    "--mode", "direct", *models(tiny), *FAST)
    assert result.exit_code == 0 and json.loads(result.stdout)["options"] == ["red", "blue"]


def test_unloadable_model_id(tiny, bad_files):
    result = invoke("ask", str(bad_files["good"]), "Colour?", "--reasoner", "nobody/missing-model",
                    "--perceiver", str(tiny.perceivers["llava"]), *FAST)
    assert result.exit_code == 3
    assert "HF_HUB_OFFLINE" in result.output and "local-dir" in result.output and "Traceback" not in result.output


def test_perceiver_not_a_vision_model(tiny, bad_files):
    result = invoke("ask", str(bad_files["good"]), "Colour?", "--reasoner", str(tiny.reasoner),
                    "--perceiver", str(tiny.reasoner), *FAST)
    assert result.exit_code == 3 and "not a vision-language model" in result.output


def test_bad_model_string(bad_files):
    result = invoke("ask", str(bad_files["good"]), "Colour?", "--reasoner", "ftp:/x/v1")
    assert result.exit_code == 2 and "neither an existing folder nor a hub id" in result.output


def test_unknown_pair(bad_files):
    result = invoke("ask", str(bad_files["good"]), "Colour?", "--pair", "huge")
    assert result.exit_code == 2 and "unknown pair 'huge'" in result.output


def test_pairs_resolve_to_the_paper_models():
    from graphs.api import resolve_models

    assert resolve_models(None, None, None) == ("Qwen/Qwen3-1.7B", "markendo/llava-extract-qwen3-0.6B")
    assert resolve_models("large", None, None) == ("Qwen/Qwen3-4B", "markendo/llava-extract-qwen3-1.7B")
    assert resolve_models("large", "./r", None) == ("./r", "markendo/llava-extract-qwen3-1.7B")


def test_default_perceiver_offline_explains_the_conversion(tiny, bad_files):
    result = invoke("ask", str(bad_files["good"]), "Colour?", "--reasoner", str(tiny.reasoner), *FAST)
    assert result.exit_code == 3
    assert "markendo/llava-extract-qwen3-0.6B" in result.output and "hf download" in result.output


# A value other than the default for every generation setting, as flags (graphs/cli/settings.py).
EVERY_SETTING = {"max_extractions": ("--max-extractions", "2", 2), "thinking": ("--no-think", None, False),
                 "greedy": ("--greedy", None, True), "seed": ("--seed", "5", 5),
                 "thinking_budget": ("--thinking-budget", "64", 64), "max_new_tokens": ("--max-new-tokens", "99", 99),
                 "no_wait": ("--no-wait", None, True),
                 "perceiver_max_new_tokens": ("--perceiver-max-new-tokens", "7", 7),
                 "max_pixels": ("--max-pixels", "1234567", 1234567), "first_look": ("--first-look", "caption", "caption"),
                 "temperature": ("--temperature", "0.3", 0.3), "top_p": ("--top-p", "0.5", 0.5)}  # fmt: skip


def every_setting_flag() -> list[str]:
    from dataclasses import fields

    from agent.settings import AskOptions

    assert set(EVERY_SETTING) == {f.name for f in fields(AskOptions)}, "a new setting needs a flag here"
    return [part for flag, value, _ in EVERY_SETTING.values() for part in ([flag] if value is None else [flag, value])]


def capture(monkeypatch, module, name, pick):
    """Replace `module.name` by a stand-in that keeps the settings it is handed and ends the command."""
    import typer

    seen = []

    def stand_in(*args, **kwargs):
        seen.append(pick(*args, **kwargs))
        raise typer.Exit(0)

    monkeypatch.setattr(module, name, stand_in)
    return seen


def test_ask_eval_and_chat_take_every_setting_and_hand_it_to_the_run(tiny, image_path, tmp_path, monkeypatch):
    from evals.synthetic.benchmarks import mmstar_rows, write_parquet
    from graphs.cli import ask as cli_ask, chat as cli_chat, eval as cli_eval

    flags = every_setting_flag()
    asked = capture(monkeypatch, cli_ask, "_run_ask", lambda *args: args[7])
    result = invoke("ask", str(image_path), "q", *models(tiny), "--device", "cpu", *flags)
    assert result.exit_code == 0 and asked, result.output
    chatted = capture(monkeypatch, cli_chat, "Session", lambda agent, thread, mode, settings, images: settings)
    result = invoke("chat", *models(tiny), "--device", "cpu", *flags)
    assert result.exit_code == 0 and chatted, result.output
    bench = write_parquet(mmstar_rows(4), tmp_path / "mmstar.parquet")
    evaluated = capture(monkeypatch, cli_eval, "_run_eval", lambda plan, *rest, **kw: (plan.settings, plan.modes))
    result = invoke("eval", "--bench", f"mmstar={bench}", "--mode", "iterative", "--out", str(tmp_path / "run"),
                    *models(tiny), "--device", "cpu", *flags)
    assert result.exit_code == 0 and evaluated, result.output
    (eval_settings, regimes), = evaluated
    assert regimes == ["iterative+look"], "eval runs --first-look caption as its own regime"
    for settings in (asked[0], chatted[0], eval_settings):
        for name, (_, _, value) in EVERY_SETTING.items():
            expected = "none" if settings is eval_settings and name == "first_look" else value
            assert getattr(settings, name) == expected, name


def test_setting_defaults_are_the_same_everywhere():
    from dataclasses import fields

    import typer.main

    from agent.settings import AskOptions

    group = typer.main.get_command(app)
    for command in ("ask", "eval", "chat"):
        params = {p.opts[0]: p for p in group.commands[command].params if p.opts}
        for f in fields(AskOptions):
            flag = "--no-think" if f.name == "thinking" else "--" + f.name.replace("_", "-")
            assert flag in params, (command, flag)
            if f.name not in ("thinking", "seed"):  # eval's --seed also seeds its subsample (default 0)
                assert params[flag].default == f.default, (command, flag)


def test_ask_honours_perceiver_max_new_tokens(tiny, image_path, tmp_path):
    trace = tmp_path / "trace.json"
    result = invoke("ask", str(image_path), "What colour is the square?", "--mode", "extract", *models(tiny), *FAST,
                    "--perceiver-max-new-tokens", "3", "--trace-out", str(trace))
    assert result.exit_code == 0, result.output
    extracts = [s for s in json.loads(trace.read_text())["steps"] if s["kind"] == "extract"]
    assert extracts and all(0 < s["output_tokens"] <= 3 for s in extracts)


@pytest.mark.parametrize("flag,value", [("--top-p", "1.5"), ("--top-p", "0"), ("--temperature", "nan"),
                                        ("--temperature", "-1"), ("--seed", str(2**64)), ("--max-extractions", "-1"),
                                        ("--max-new-tokens", str(10**30)), ("--thinking-budget", "1")])
def test_out_of_range_settings_are_one_line_naming_the_flag(tiny, image_path, flag, value):
    for command in (["ask", str(image_path), "q"], ["chat"]):
        result = invoke(*command, *models(tiny), "--device", "cpu", flag, value)
        assert result.exit_code == 2, (command, result.output)
        assert f"error: {flag} must be" in result.output and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output


def test_serve_reads_the_caps_and_refuses_a_bad_one(monkeypatch):
    monkeypatch.setenv("XTHINK_MAX_NEW_TOKENS_CAP", "lots")
    result = invoke("serve", "--port", "1")
    assert result.exit_code == 2 and "error: XTHINK_MAX_NEW_TOKENS_CAP must be a whole number" in result.output
