"""Request building and response parsing for OpenAI-compatible servers and vLLM, as plain functions."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from tools.backends.output_parsing import ToolCall
from tools.backends.base import Message, PerceiveRequest, ReasonOutput, ReasonRequest, SamplingSettings
from tools.backends.data_urls import data_url
from tools.backends.openai_requests import perceive_body, reason_body
from tools.backends.openai_responses import ResponseError, parse_perceive_response, parse_reason_response, served_models
from tools.backends.spec import ModelSpecError, parse_model
from tools.backends.thinking import CLOSE_THINK, close_thinking, thinking_phase_tokens
from tools.backends.vllm_requests import continuation, sampling_kwargs

TOOL = {"type": "function", "function": {"name": "extract", "parameters": {"type": "object"}}}


def payload(message: dict, finish="stop", usage=None) -> dict:
    return {"choices": [{"index": 0, "finish_reason": finish, "message": message}],
            "usage": usage or {"prompt_tokens": 10, "completion_tokens": 20}}


def test_reason_body_maps_settings_tools_and_history():
    history = (
        Message("system", "sys"),
        Message("user", "q"),
        Message("assistant", "", (ToolCall("extract", {"request": "sign"}, "call_0"),), reasoning="hm"),
        Message("tool", "a sign", tool_call_id="call_0"),
    )
    body = reason_body("m", ReasonRequest(history, SamplingSettings.paper(seed=3), (TOOL,)))
    assert body["chat_template_kwargs"] == {"enable_thinking": True}
    # The first phase thinks for at most the budget; the rest of the 5120 tokens go to a continuation.
    assert (body["temperature"], body["top_p"], body["max_tokens"], body["seed"]) == (0.6, 0.95, 4096, 3)
    assert body["tools"] == [TOOL] and body["tool_choice"] == "auto"
    call = body["messages"][2]["tool_calls"][0]
    assert call["function"]["name"] == "extract" and json.loads(call["function"]["arguments"]) == {"request": "sign"}
    assert body["messages"][3] == {"role": "tool", "content": "a sign", "tool_call_id": "call_0"}


def test_greedy_and_no_thinking():
    body = reason_body("m", ReasonRequest((Message("user", "q"),), SamplingSettings.paper(False, greedy=True)))
    assert body["temperature"] == 0.0 and "top_p" not in body and "tools" not in body
    assert body["chat_template_kwargs"] == {"enable_thinking": False} and body["max_tokens"] == 1024


@pytest.mark.parametrize("field", ["reasoning", "reasoning_content"])
def test_reasoning_field(field):
    out = parse_reason_response(payload({"content": "Answer: B", field: "because"}), 1.0)
    assert (out.thinking, out.text, out.raw) == ("because", "Answer: B", "<think>\nbecause\n</think>\n\nAnswer: B")


def test_reasoning_inside_content():
    out = parse_reason_response(payload({"content": "<think>\nhmm\n</think>\n\nAnswer: C"}), 1.0)
    assert (out.thinking, out.text) == ("hmm", "Answer: C")


def test_server_tool_calls():
    message = {"content": None, "reasoning": "look", "tool_calls": [
        {"id": "abc", "type": "function", "function": {"name": "extract", "arguments": '{"request": "x"}'}},
        {"id": "bad", "type": "function", "function": {"name": "extract", "arguments": "{oops"}},
    ]}
    out = parse_reason_response(payload(message, finish="tool_calls"), 1.0)
    assert out.tool_calls == [ToolCall("extract", {"request": "x"}, "abc")]
    assert "not valid JSON" in out.tool_errors[0].error and out.finish_reason == "stop"


def test_tool_calls_in_text_when_the_parser_is_off():
    text = '<tool_call>\n{"name": "extract", "arguments": {"request": "y"}}\n</tool_call>'
    out = parse_reason_response(payload({"content": text}), 1.0)
    assert out.tool_calls[0].arguments == {"request": "y"} and out.text == ""


def test_special_markers_are_dropped_and_length_reported():
    out = parse_reason_response(payload({"content": "<|im_start|>Answer: A<|im_end|>"}, finish="length"), 1.0)
    assert out.text == "Answer: A" and out.finish_reason == "length"


def test_reported_reasoning_tokens_win_over_the_estimate():
    usage = {"prompt_tokens": 5, "completion_tokens": 30, "completion_tokens_details": {"reasoning_tokens": 25}}
    out = parse_reason_response(payload({"content": "Answer: A", "reasoning": "r"}, usage=usage), 1.0)
    assert (out.prompt_tokens, out.output_tokens, out.thinking_tokens) == (5, 30, 25)


@pytest.mark.parametrize("bad", [{}, {"choices": []}, {"choices": [{"index": 0}]}])
def test_bad_shapes(bad):
    with pytest.raises(ResponseError):
        parse_reason_response(bad, 0.0)


def test_perceive_body_and_response():
    img = Image.new("RGB", (4, 4), "blue")
    body = perceive_body("vlm", PerceiveRequest((img,), "Describe.", max_new_tokens=50), [data_url(img)])
    assert body["max_tokens"] == 50 and body["messages"][0]["content"][0]["type"] == "image_url"
    out = parse_perceive_response(payload({"content": "A blue square."}), 0.5)
    assert (out.text, out.prompt_tokens, out.output_tokens) == ("A blue square.", 10, 20)


def test_served_models():
    assert served_models({"data": [{"id": "a"}, {"id": "b"}]}) == ["a", "b"]
    with pytest.raises(ResponseError):
        served_models({"models": []})


@pytest.mark.parametrize("text, kind, urls, model", [
    ("http://h:8000/v1", "http", ("http://h:8000/v1",), None),
    ("https://h/v1/#Qwen/Qwen3-1.7B", "http", ("https://h/v1",), "Qwen/Qwen3-1.7B"),
    ("http://a:1/v1,http://b:2/v1#m", "http", ("http://a:1/v1", "http://b:2/v1"), "m"),
])
def test_url_forms(text, kind, urls, model):
    spec = parse_model(text)
    assert (spec.kind, spec.urls, spec.served_model) == (kind, urls, model)


def test_bad_url_and_vllm_form():
    with pytest.raises(ModelSpecError, match="not an http"):
        parse_model("http://a:1/v1,ftp://b")
    assert parse_model("vllm:Qwen/Qwen3-1.7B").kind == "vllm"


# --- vLLM helpers -----------------------------------------------------------------------------


def test_vllm_sampling_mapping():
    settings = SamplingSettings.paper(seed=1)
    assert sampling_kwargs(settings, 100) == {"max_tokens": 100, "temperature": 0.6, "top_p": 0.95, "seed": 1}
    greedy = sampling_kwargs(settings.replace(greedy=True), 5, banned_ids=[7, 9])
    assert greedy == {"max_tokens": 5, "temperature": 0.0, "seed": 1, "logit_bias": {7: -100.0, 9: -100.0}}


def test_vllm_budget_phases():
    settings = SamplingSettings.paper()
    assert thinking_phase_tokens(settings) == 4096
    assert thinking_phase_tokens(settings.replace(thinking=False)) == 5120
    assert continuation("P", "<think>done</think>\n\nAnswer: A", 50, "stop", settings) is None
    forced = continuation("P", "<think>long", 4096, "length", settings)
    assert forced.prompt == "P<think>long" + CLOSE_THINK and forced.max_tokens == 1024
    closed = continuation("P", "<think>x</think>\n\nAns", 4096, "length", settings)
    assert closed.prompt == "P<think>x</think>\n\nAns" and closed.max_tokens == 1024
    assert continuation("P", "x", 5120, "length", settings) is None


def test_vllm_output_assembly():
    raw = close_thinking("<think>long") + "Answer: B"
    out = ReasonOutput.from_raw(raw, 10, 4096, 4100, 1.0, "stop")
    assert out.thinking == "long" and out.text == "Answer: B" and out.thinking_tokens == 4096


def test_vllm_engines_get_their_gpu_memory_share():
    """A reasoner and a perceiver in process share one GPU: each engine is built with its own share."""
    from tools.backends.registry import make_perceiver, make_reasoner
    from tools.backends.options import EngineOptions

    options = EngineOptions(reasoner_gpu_memory=0.5, perceiver_gpu_memory=0.3)
    reasoner = make_reasoner("vllm:Qwen/Qwen3-1.7B", options=options)
    perceiver = make_perceiver("vllm:llava-hf/llava-onevision-qwen2-0.5b-ov-hf", options=options)
    assert reasoner.engine_kwargs["gpu_memory_utilization"] == 0.5
    assert perceiver.engine_kwargs["gpu_memory_utilization"] == 0.3
    assert reasoner.engine_kwargs["enable_prefix_caching"] is True
    with pytest.raises(ValueError, match="add up to at most 1"):
        EngineOptions(reasoner_gpu_memory=0.7, perceiver_gpu_memory=0.5)
