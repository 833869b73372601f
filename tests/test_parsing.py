"""Edge cases of the output parsers, one behaviour each."""

from __future__ import annotations

import pytest

from agent.answer import extract_answer
from tools.backends.output_parsing import ToolCall, parse_tool_calls, split_output, split_thinking

OPTS = ["red", "blue", "green", "white"]


def test_thinking_and_answer_are_split():
    assert split_thinking("<think>\nA or B?\n</think>\n\nAnswer: B") == ("A or B?", "Answer: B")


def test_no_think_block_is_all_visible():
    assert split_thinking("Answer: B") == ("", "Answer: B")


def test_close_without_open_means_the_prompt_opened_it():
    assert split_thinking("hmm, A?\n</think>\nAnswer: A") == ("hmm, A?", "Answer: A")


def test_unclosed_think_is_all_thinking():
    assert split_thinking("<think>\nstill going") == ("still going", "")


def test_empty_think_block_from_no_think_template():
    assert split_thinking("<think>\n\n</think>\n\nAnswer: C") == ("", "Answer: C")


def test_last_close_wins_when_the_model_repeats_it():
    thinking, visible = split_thinking("<think>a</think> b </think> Answer: D")
    assert visible == "Answer: D" and thinking.startswith("a")


def test_one_tool_call():
    text, calls, errors = parse_tool_calls('Let me look.\n<tool_call>\n{"name": "extract", "arguments": {"request": "sign"}}\n</tool_call>')
    assert text == "Let me look." and errors == []
    assert calls == [ToolCall(name="extract", arguments={"request": "sign"}, id="call_0")]


def test_two_tool_calls_keep_their_order():
    raw = '<tool_call>{"name": "extract", "arguments": {"request": "a"}}</tool_call><tool_call>{"name": "extract", "arguments": {"request": "b"}}</tool_call>'
    _, calls, _ = parse_tool_calls(raw)
    assert [c.arguments["request"] for c in calls] == ["a", "b"] and [c.id for c in calls] == ["call_0", "call_1"]


def test_arguments_given_as_a_json_string():
    _, calls, _ = parse_tool_calls('<tool_call>{"name": "extract", "arguments": "{\\"request\\": \\"x\\"}"}</tool_call>')
    assert calls[0].arguments == {"request": "x"}


@pytest.mark.parametrize(
    "body, message",
    [
        ('{"name": "extract", "arguments": {"request": ', "not valid JSON"),
        ('["extract"]', "must be a JSON object"),
        ('{"arguments": {"request": "x"}}', "no 'name'"),
        ('{"name": "extract", "arguments": [1, 2]}', "'arguments' must be a JSON object"),
        ('{"name": "extract", "arguments": "not json"}', "not a JSON object"),
        ("", "not valid JSON"),
    ],
)
def test_malformed_calls_become_errors(body, message):
    _, calls, errors = parse_tool_calls(f"<tool_call>{body}</tool_call>")
    assert calls == [] and message in errors[0].error


def test_unclosed_tool_call_is_read_to_the_end():
    _, calls, errors = parse_tool_calls('<tool_call>\n{"name": "extract", "arguments": {"request": "x"}}')
    assert calls[0].arguments == {"request": "x"} and errors == []


def test_unclosed_tool_call_in_prose_keeps_the_answer_line():
    """Issue 11: an unclosed <tool_call> written in prose swallowed the `Answer:` line after it."""
    text, calls, errors = parse_tool_calls("I could write <tool_call> here but I know it.\nAnswer: B")
    assert calls == [] and len(errors) == 1 and text.endswith("Answer: B")
    assert extract_answer(text, ["x", "y"]).answer == "B"
    text, calls, errors = parse_tool_calls('<tool_call>{"name": "extract", "arguments": {"request": "x"}} '
                                           "then I answer.\nAnswer: A")
    assert calls[0].arguments == {"request": "x"} and text == "then I answer.\nAnswer: A"


def test_calls_and_errors_share_the_written_numbering():
    _, calls, errors = parse_tool_calls("<tool_call>{bad</tool_call><tool_call>"
                                        '{"name": "extract", "arguments": {"request": "x"}}</tool_call>')
    assert errors[0].index == 0 and calls[0].index == 1 and calls[0].id == "call_1"


def test_stray_closing_tag_is_reported():
    _, calls, errors = parse_tool_calls('{"name": "extract"}</tool_call>')
    assert calls == [] and "without an opening" in errors[0].error


def test_tool_call_inside_thinking_is_not_a_call():
    out = split_output('<think>maybe <tool_call>{"name": "extract", "arguments": {}}</tool_call></think>Answer: A')
    assert out.tool_calls == [] and out.text == "Answer: A"


@pytest.mark.parametrize(
    "visible, expected",
    [
        ("Answer: B", "B"),
        ("answer:b", "B"),
        ("Answer: (c)", "C"),
        ("Answer: D. white", "D"),
        ("Answer: **A**", "A"),
        ("Answer: [B]", "B"),
        ("Answer: A\nAnswer: C", "C"),
        ("Reasoning...\nAnswer: B\n", "B"),
    ],
)
def test_letter_answers(visible, expected):
    assert extract_answer(visible, OPTS).answer == expected


def test_letter_outside_the_options_is_kept_as_text():
    assert extract_answer("Answer: E", OPTS).answer == "E"


def test_word_starting_with_an_option_letter_is_not_a_letter():
    assert extract_answer("Answer: blue", OPTS).answer == "blue"


def test_no_answer_line_says_so():
    result = extract_answer("I think it is B.", OPTS)
    assert result.answer is None and result.found is False


def test_empty_output_has_no_answer():
    assert extract_answer("", OPTS).found is False


def test_open_answer_keeps_text():
    assert extract_answer("Answer: 42 apples", None).answer == "42 apples"
