"""Scorer edge cases, one behaviour each (issue: at least 30)."""

from __future__ import annotations

import pytest

from evals.scoring import extract_choice, score

OPTS = ["red", "blue", "green", "white"]


@pytest.mark.parametrize("output, pred, method", [
    ("Answer: B", "B", "answer_line"),
    ("answer:b", "B", "answer_line"),
    ("ANSWER :  c", "C", "answer_line"),
    ("Answer: (b)", "B", "answer_line"),
    ("Answer: [D]", "D", "answer_line"),
    ("Answer: **A**", "A", "answer_line"),
    ("Answer: B. blue", "B", "answer_line"),
    ("Answer: B) blue", "B", "answer_line"),
    ("Answer: option C", "C", "answer_line"),
    ("Answer: The answer is D", "D", "answer_line"),
    ("Answer: A\nmore text\nAnswer: C", "C", "answer_line"),
    ("Answer: A\nAnswer: (d)", "D", "answer_line"),
    ("Reasoning: A is wrong, B is wrong.\nAnswer: C", "C", "answer_line"),
    ("<think>A? B? Answer: A. Maybe C. D!</think>\nAnswer: B", "B", "answer_line"),
    ("<think>Answer: A</think>", None, "none"),
    ("<think>Lots of letters A B C D</think>The colour is clearly (C).", "C", "pattern"),
    ("Answer: blue", "B", "answer_option_text"),
    ("Answer: Green.", "C", "answer_option_text"),
    ("Answer: purple", None, "none"),
    ("Answer: E", None, "none"),
    ("I pick option B", "B", "pattern"),
    ("So the answer is d.", "D", "pattern"),
    ("The correct answer is (A)", "A", "pattern"),
    ("B", "B", "bare_letter"),
    ("(c)", "C", "pattern"),
    ("  D.  ", "D", "bare_letter"),
    ("white", "D", "option_text"),
    ("It could be red or blue.", None, "none"),
    ("", None, "none"),
    ("   \n  ", None, "none"),
    ("<think>\n\n</think>\n\n", None, "none"),
    ("Answer:", None, "none"),
    ("The answer is B.\nBut then again", None, "none"),
    ("blue\nAnswer: A", "A", "answer_line"),
])
def test_extraction(output, pred, method):
    assert extract_choice(output, OPTS) == (pred, method)


def test_correct_against_gold():
    assert score("Answer: (b)", OPTS, "B").correct is True


def test_wrong_against_gold():
    assert score("Answer: A", OPTS, "B").correct is False


def test_unparseable_is_wrong_never_guessed():
    result = score("no idea", OPTS, "A")
    assert result.pred is None and result.correct is False and result.method == "none"


def test_gold_case_is_ignored():
    assert score("Answer: C", OPTS, "c").correct is True


def test_word_is_not_read_as_its_initial():
    assert extract_choice("Answer: bicycle", OPTS) == (None, "none")


def test_letters_beyond_the_options_are_invalid():
    assert extract_choice("Answer: C", ["yes", "no"]) == (None, "none")


def test_without_option_texts_letters_still_work():
    assert extract_choice("Answer: D", []) == ("D", "answer_line")
