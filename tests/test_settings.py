"""Run settings: one range per number for every edge (Python API, context, serve, CLI), and a server's caps."""

from __future__ import annotations

import math

import pytest

from agent.setting_caps import SettingCaps
from agent.settings import AskOptions, InputError, RunContext, SettingError, checked, validated

BAD = [
    ("temperature", math.nan), ("temperature", -0.5), ("temperature", 0), ("temperature", math.inf),
    ("temperature", 2.5), ("top_p", 0), ("top_p", -0.1), ("top_p", 1.5), ("top_p", math.nan),
    ("seed", 2**64), ("seed", -(2**63) - 1), ("max_new_tokens", 10**30), ("max_new_tokens", 0),
    ("max_new_tokens", -5), ("perceiver_max_new_tokens", 0), ("perceiver_max_new_tokens", 2**40),
    ("thinking_budget", 1), ("thinking_budget", 10**20), ("max_extractions", -1), ("max_extractions", 2**40),
    ("max_pixels", 0), ("max_pixels", 10**18), ("temperature", "hot"), ("max_extractions", 1.5),
    ("seed", True),
]  # fmt: skip


@pytest.mark.parametrize("name,value", BAD)
def test_python_api_refuses_each_out_of_range_setting_by_name(name, value):
    with pytest.raises(SettingError) as info:
        AskOptions(**{name: value})
    assert info.value.field == name and str(info.value).startswith(name)


@pytest.mark.parametrize("name,value", [(n, v) for n, v in BAD if not isinstance(v, (str, bool))])
def test_a_json_context_is_refused_naming_the_key(name, value):
    context = RunContext()
    setattr(context, name, value)  # as LangGraph Server hands it over: built without our checks
    with pytest.raises(SettingError, match=f"^context key '{name}': "):
        checked(context)


@pytest.mark.parametrize("values", [{"temperature": 2, "top_p": 1, "seed": 2**64 - 1}, {"seed": -(2**63)},
                                    {"temperature": 1e-3, "top_p": 1e-3, "seed": 0, "max_extractions": 0}])
def test_the_ends_of_each_range_are_accepted(values):
    assert checked(RunContext(**values)).ask_options().sampling() is not None


def test_caps_come_from_the_environment_and_name_their_variable(monkeypatch):
    monkeypatch.setenv("XTHINK_MAX_EXTRACTIONS_CAP", "3")
    caps = SettingCaps.from_env()
    assert caps.max_extractions == 3 and caps.max_new_tokens == SettingCaps().max_new_tokens
    assert caps.apply(AskOptions(max_extractions=2)).max_extractions == 2
    assert caps.apply(AskOptions()).max_extractions == 3, "a default over the cap is lowered to it"
    with pytest.raises(SettingError, match="XTHINK_MAX_EXTRACTIONS_CAP") as info:
        caps.apply(AskOptions(max_extractions=5))
    assert info.value.field == "max_extractions"
    monkeypatch.setenv("XTHINK_MAX_NEW_TOKENS_CAP", "2000")
    assert SettingCaps.from_env().apply(AskOptions()).sampling().max_new_tokens == 2000, "the paper's 5120 too"
    for bad in ("lots", "-1", "1e9"):
        monkeypatch.setenv("XTHINK_MAX_EXTRACTIONS_CAP", bad)
        with pytest.raises(InputError, match="XTHINK_MAX_EXTRACTIONS_CAP"):
            SettingCaps.from_env()


@pytest.mark.parametrize("key,value,env", [
    ("max_extractions", 17, "XTHINK_MAX_EXTRACTIONS_CAP"), ("max_new_tokens", 16385, "XTHINK_MAX_NEW_TOKENS_CAP"),
    ("thinking_budget", 100_000, "XTHINK_THINKING_BUDGET_CAP"),
    ("perceiver_max_new_tokens", 5000, "XTHINK_PERCEIVER_MAX_NEW_TOKENS_CAP"),
    ("max_pixels", 10**9, "XTHINK_MAX_PIXELS_CAP"),
])  # fmt: skip
def test_a_run_context_gets_the_servers_caps(monkeypatch, key, value, env):
    from agent.context import build_context

    monkeypatch.delenv(env, raising=False)
    with pytest.raises(SettingError, match=f"^context key '{key}': .*{env}"):
        build_context(RunContext(**{key: value}))


def test_the_operator_fixes_the_device(monkeypatch):
    from agent.context import build_context

    for name in ("XTHINK_DEVICE", "XTHINK_ALLOWED_MODELS"):
        monkeypatch.delenv(name, raising=False)
    assert build_context(RunContext(device="cpu")).reasoner.placement.device == "cpu", "unset: a run may choose"
    monkeypatch.setenv("XTHINK_DEVICE", "cpu")
    assert build_context(RunContext(device="cpu")).reasoner.placement.device == "cpu"
    assert build_context(RunContext()).reasoner.placement.device == "cpu"
    with pytest.raises(SettingError, match="^context key 'device': .*XTHINK_DEVICE"):
        build_context(RunContext(device="cuda:1"))
    monkeypatch.delenv("XTHINK_DEVICE")
    monkeypatch.setenv("XTHINK_ALLOWED_MODELS", "Qwen/Qwen3-1.7B")
    with pytest.raises(SettingError, match="^context key 'device'"):
        build_context(RunContext(device="cuda:1"))


def test_python_api_checks_settings_changed_after_they_were_made(tiny, image_path):
    from graphs.api import ExtractThink

    agent = ExtractThink(str(tiny.reasoner), str(tiny.perceivers["llava_onevision"]), device="cpu")
    settings = AskOptions(greedy=True, max_new_tokens=8)
    settings.top_p = 0.0
    with pytest.raises(SettingError, match="^top_p "):
        agent.ask("What colour?", [image_path], mode="direct", settings=settings)
    edge = AskOptions(temperature=2, top_p=1, seed=2**64 - 1, max_new_tokens=8, thinking=False,
                      perceiver_max_new_tokens=4)
    result = agent.ask("What colour?", [image_path], mode="caption", settings=edge)  # the reasoner samples
    assert result.steps[-1].purpose == "answer" and result.steps[-1].output_tokens > 0


@pytest.mark.parametrize("values,key", [({"max_extractions": True}, "max_extractions"), ({"temperature": False},
                                        "temperature"), ({"greedy": "yes"}, "greedy"), ({"thinking": 1}, "thinking")])
def test_json_flags_and_numbers_are_not_swapped(values, key):
    """Lax coercion would read `true` as 1 extraction and "yes" as a flag: a client's JSON is taken as sent."""
    with pytest.raises(SettingError, match=f"^context key '{key}': "):
        validated(RunContext, values, "context key")
