"""How an lmms-eval task's prompt and generation kwargs reach the agent (graphs/lmms/prompt.py)."""

from __future__ import annotations

import pytest

from agent.settings import AskOptions
from graphs.lmms.prompt import map_generation_kwargs, parse_task_prompt

LETTER = "Answer with the option's letter from the given choices directly."


def test_mmstar_inline_options_and_instruction():
    text = "What colour is the square?\nOptions: A: red, B: dark, blue, C: green\n" + LETTER[:-1]
    prompt = parse_task_prompt(text)
    assert (prompt.question, prompt.options) == ("What colour is the square?", ["red", "dark, blue", "green"])


def test_mmstar_letter_instruction_is_dropped_from_the_agent_question():
    prompt = parse_task_prompt("What colour is the square?\nOptions: A: red, B: blue\n" + LETTER)
    assert prompt.agent_question() == "What colour is the square?"


def test_vstar_option_lines():
    prompt = parse_task_prompt("What is the colour of the cup?\nA. red\nB. blue\nC. white\nD. black\n" + LETTER)
    assert (prompt.question, prompt.options, prompt.dropped) == (
        "What is the colour of the cup?", ["red", "blue", "white", "black"], [LETTER])


@pytest.mark.parametrize("form", ["A: {}", "(A) {}", "A) {}"])
def test_other_option_line_forms(form):
    lines = [form.replace("A", letter).format(text) for letter, text in zip("ABC", ["cat", "dog", "cow"])]
    prompt = parse_task_prompt("Which animal?\nOptions:\n" + "\n".join(lines))
    assert (prompt.question, prompt.options) == ("Which animal?", ["cat", "dog", "cow"])


def test_inline_parenthesised_options():
    prompt = parse_task_prompt("Is the flag left of the sign? (A) left (B) right\n" + LETTER)
    assert (prompt.question, prompt.options) == ("Is the flag left of the sign?", ["left", "right"])


def test_vmcbench_layout():
    text = "Question: Which sign is shown?\nOptions:\nA. stop\nB. yield\nC. exit\nD. keep\n" + LETTER + "\n"
    prompt = parse_task_prompt(text)
    assert (prompt.agent_question(), prompt.options) == ("Which sign is shown?", ["stop", "yield", "exit", "keep"])


def test_hrbench_instruction_is_a_letter_instruction():
    prompt = parse_task_prompt("What is on the boat?\nA. a dog\nB. a cat\nAnswer the option letter directly.")
    assert prompt.dropped == ["Answer the option letter directly."]


def test_other_instructions_are_kept_for_the_reasoner():
    prompt = parse_task_prompt("Which is larger?\nA. 3\nB. 5\nConsider the units shown on the axis.\n" + LETTER)
    assert prompt.agent_question() == "Which is larger?\nConsider the units shown on the axis."


def test_open_question_is_passed_whole():
    text = "What is written on the sign?\nAnswer the question using a single word or phrase."
    prompt = parse_task_prompt(text)
    assert (prompt.options, prompt.agent_question()) == ([], text)


def test_letters_out_of_order_are_not_options():
    assert parse_task_prompt("Rank them.\nA. first\nC. third").options == []


def test_empty_prompt_is_refused():
    with pytest.raises(ValueError, match="empty"):
        parse_task_prompt("  ")


VSTAR_KWARGS = {"max_new_tokens": 16, "temperature": 0, "top_p": 1.0, "num_beams": 1, "do_sample": False}


def test_zero_temperature_means_greedy():
    assert map_generation_kwargs(VSTAR_KWARGS, AskOptions(), set()).settings.greedy is True


def test_short_max_new_tokens_does_not_cap_the_agent():
    mapped = map_generation_kwargs(VSTAR_KWARGS, AskOptions(max_new_tokens=900), set())
    assert (mapped.settings.max_new_tokens, mapped.ignored["max_new_tokens"]) == (900, 16)


def test_model_args_win_over_the_task():
    mapped = map_generation_kwargs(VSTAR_KWARGS, AskOptions(greedy=False), {"greedy"})
    assert mapped.settings.greedy is False


def test_sampling_task_sets_temperature():
    mapped = map_generation_kwargs({"temperature": 0.2, "top_p": 0.5, "do_sample": True}, AskOptions(), set())
    assert (mapped.settings.greedy, mapped.settings.temperature, mapped.settings.top_p) == (False, 0.2, 0.5)


def test_no_kwargs_keep_the_agent_settings():
    assert map_generation_kwargs(None, AskOptions(seed=3), set()).settings == AskOptions(seed=3)
