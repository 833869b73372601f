"""Every supported VLM family as a perceiver: pixels reach the model, regions too, output is clean text."""

from __future__ import annotations

import re

import pytest
from PIL import Image

from tests.doc_pages import PAGES
from tools.backends.base import PerceiveRequest
from tools.backends.hf_perceiver import TransformersPerceiver
from tools.backends.loading import Placement
from tools.tiny.models import PERCEIVER_BUILDERS

FAMILIES = list(PERCEIVER_BUILDERS)  # every family the docs name as a perceiver


@pytest.mark.parametrize("family", FAMILIES)
def test_the_image_reaches_the_model(tiny, family):
    perceiver = TransformersPerceiver(str(tiny.perceivers[family]), Placement(device="cpu"))

    def describe(colour):
        request = PerceiveRequest((Image.new("RGB", (90, 60), colour),), "Describe the image.", max_new_tokens=10)
        return perceiver.perceive([request])[0]

    red, blue, red_again = describe("red"), describe("blue"), describe("red")
    assert red.text == red_again.text, "greedy decoding is deterministic"
    assert red.text != blue.text, "different pixels must change what a random-weight VLM says"
    assert red.output_tokens > 0 and red.prompt_tokens > 0
    assert "<image>" not in red.text and "<|im_end|>" not in red.text


@pytest.mark.parametrize("family", FAMILIES)
def test_template_switches_thinking_off(tiny, family):
    perceiver = TransformersPerceiver(str(tiny.perceivers[family]), Placement(device="cpu"))
    prompt = perceiver.render(PerceiveRequest((Image.new("RGB", (8, 8)),), "Describe."))
    assert prompt.endswith("<think>\n\n</think>\n\n") and "Describe." in prompt


def test_every_family_the_docs_name_is_built_and_tested():
    """The docs' list of perceiver families (docs/backends.md) is a claim; each one must have a tiny builder,
    so that every test parameterised over PERCEIVER_BUILDERS runs it."""
    pages = "\n".join(page.read_text() for page in PAGES)
    named = re.search(r"The perceiver families the tests build and run \([^)]*\): (.*?)\. ", pages, re.S).group(1)
    parts = re.split(r",|\band\b", " ".join(named.split()))
    families = {re.sub(r"[-.]", "_", part.split()[0].lower()) for part in parts if part.strip()}
    assert len(families) == 6 and families <= set(PERCEIVER_BUILDERS), families - set(PERCEIVER_BUILDERS)
