"""Every prompt the reasoner gets, in one place, so a snapshot test can pin them (the perceiver's
instruction lives with the perception call, tools/perception.py).

The paper's strings (instruction format, reasoning prompt, post-prompts) are reproduced verbatim from
`shared/docs/method.md`; the released perception checkpoints were trained on exactly that instruction
wording, so requests must be phrased to fit it. The iterative prompt is this project's own.
Bump PROMPTS_VERSION whenever a string here or in tools/perception.py changes: eval records store it.
"""

from __future__ import annotations

from agent.answer import option_letters

PROMPTS_VERSION = "2"

REASONING_PREAMBLE = (
    "You are an excellent text-based reasoning expert. You are required to answer the question based on "
    "the detailed description of the image."
)

POST_THINK_MC = (
    'Please reason step by step, and give the final answer on the last line by itself in the format of "Answer:". '
    'Do not add anything other than the letter answer after "Answer:".'
)
POST_DIRECT_MC = (
    'Answer directly with the option\'s letter in the format of "Answer:". '
    'Do not add anything other than the letter answer after "Answer:".'
)
# Open questions (no options): the same format with the letter sentence dropped.
POST_THINK_OPEN = (
    'Please reason step by step, and give the final answer on the last line by itself in the format of "Answer:".'
)
POST_DIRECT_OPEN = 'Answer directly in the format of "Answer:" followed by a short answer.'


def format_question(question: str, options: list[str] | None) -> str:
    """The question with its options as `A. text` lines (the VMCBench/lmms-eval layout)."""
    if not options:
        return question.strip()
    lines = [f"{letter}. {text}" for letter, text in zip(option_letters(len(options)), options)]
    return question.strip() + "\n" + "\n".join(lines)


def post_prompt(options: list[str] | None, thinking: bool) -> str:
    if options:
        return POST_THINK_MC if thinking else POST_DIRECT_MC
    return POST_THINK_OPEN if thinking else POST_DIRECT_OPEN


def reasoning_prompt(description: str, question: str, options: list[str] | None, thinking: bool) -> str:
    """The paper's single user turn for the reasoner of Extract+Think and Caption+Think."""
    return (
        f"{REASONING_PREAMBLE}\n\n"
        f"Description: {description.strip()}\n"
        f"Question: {format_question(question, options)}\n"
        f"{post_prompt(options, thinking)}"
    )


def direct_prompt(question: str, options: list[str] | None) -> str:
    """The end-to-end VLM baseline sees the question and answers without thinking."""
    return f"{format_question(question, options)}\n{post_prompt(options, thinking=False)}"


# Prism's query-specific mode asks the LLM, with a few examples, which visual contents matter for a
# question. The wording and examples below are this project's own, in that style; the output is a noun
# phrase that slots into "Especially, pay attention to <request>."
OBSERVE_INSTRUCTION = (
    "Given a question about an image that you cannot see, list the contents of the image that must be observed "
    "to answer it. Reply with one short phrase that completes the sentence "
    '"Especially, pay attention to ...", and nothing else.'
)
OBSERVE_EXAMPLES = [
    (
        "What is written on the sign above the shop door?\nA. Bakery\nB. Pharmacy\nC. Books\nD. Cafe",
        "the sign above the shop door and the text written on it",
    ),
    (
        "How many people are sitting on the bench?",
        "the bench and the number of people sitting on it",
    ),
    (
        "Which property do these two objects have in common?\nA. hard\nB. soft",
        "the two objects, their materials and their physical properties",
    ),
]


def observe_prompt(question: str, options: list[str] | None) -> str:
    """The few-shot prompt with which the reasoner writes the 'contents to observe' request."""
    shots = "\n\n".join(f"Question: {q}\nContents to observe: {a}" for q, a in OBSERVE_EXAMPLES)
    return f"{OBSERVE_INSTRUCTION}\n\n{shots}\n\nQuestion: {format_question(question, options)}\nContents to observe:"


def clean_observe_reply(text: str) -> str:
    """Keep the first non-empty line of the reply, without a repeated label or a final period."""
    for line in text.splitlines():
        line = line.strip()
        if line.lower().startswith("contents to observe:"):
            line = line.split(":", 1)[1].strip()
        if line:
            return line.rstrip(".").strip()
    return ""


ITERATIVE_SYSTEM = (
    "You are an excellent text-based reasoning expert. You cannot see the images of the question; a perception "
    "model can. Call the `extract` tool to ask it for the visual details you need: say in words what to look at "
    "(for example \"the text on the red sign\" or \"the colour of the car on the left\"), optionally with a region "
    "[x0, y0, x1, y1] in 0-1 image coordinates to zoom into, and which image. Each call returns a description; a "
    "call with a region also returns a crop id (crop_1, crop_2, ...) that you can name as the image of a later "
    "call to zoom further into it. Make targeted requests for what is still missing, then answer. You have at "
    "most {budget} extraction calls."
)
# The last turn, once the calls are spent, has no tools: its system prompt must not ask for one.
ITERATIVE_FINAL_SYSTEM = (
    "You are an excellent text-based reasoning expert. You cannot see the images of the question; a perception "
    "model described them for you in the tool results above. No more descriptions can be requested: answer from "
    "what you have."
)


def iterative_user_prompt(
    question: str,
    options: list[str] | None,
    images: list[tuple[str, int, int]],
    thinking: bool = True,
    first_look: dict[str, str] | None = None,
) -> str:
    """The first user turn of the iterative regime: the images by id and size (with a first look at each when
    one was taken), the question, the post-prompt."""
    listing = ", ".join(f"{image_id} ({w}x{h})" for image_id, w, h in images)
    look = ""
    if first_look:
        look = "\n".join(f"First look at {image_id}: {text.strip()}" for image_id, text in first_look.items()) + "\n"
    return f"Images: {listing}\n{look}Question: {format_question(question, options)}\n{post_prompt(options, thinking)}"


def followup_user_prompt(
    question: str, options: list[str] | None, new_images: list[tuple[str, int, int]], thinking: bool, budget: int
) -> str:
    """A later question in the same conversation: new images (if any), the question, a fresh budget."""
    listing = ", ".join(f"{image_id} ({w}x{h})" for image_id, w, h in new_images)
    added = f"New images: {listing}\n" if new_images else ""
    return (f"{added}Follow-up question: {format_question(question, options)}\n"
            f"You have {budget} new extraction calls for it.\n{post_prompt(options, thinking)}")  # fmt: skip


BUDGET_SPENT = (
    "You have no extraction calls left. Answer now from the descriptions you have, "
    'with the final answer on the last line in the format of "Answer:".'
)
NOT_RUN = "Not run: no extraction calls were left for this call."


def refused(reason: str) -> str:
    """The reply to a call the application refused (interrupt_before_extract)."""
    because = f" Reason: {reason.strip()}" if reason.strip() else ""
    return f"Not run: the user declined this extraction.{because} Answer from what you have, or ask differently."


def edited_note(request: str) -> str:
    """Said before the description of a call the application edited before it ran."""
    return f"(The user changed this request to: {request})"


def tool_error(error: str) -> str:
    """The reply to a call that could not run: what was wrong and how a valid call looks."""
    return (
        f"Error: {error}. Call extract again with a JSON object such as "
        '{"name": "extract", "arguments": {"request": "the text on the sign"}}, or answer.'
    )


def zoom_note(crop_id: str, image_id: str, region: list[float], repairs: list[str]) -> str:
    """The line before a zoomed description: which crop this was, and any repair made to the region."""
    box = "[" + ", ".join(f"{v:.3f}" for v in region) + "]"
    note = f"({crop_id} = {image_id} region {box}; name image \"{crop_id}\" to zoom further into it."
    if repairs:
        note += " Region repaired: " + "; ".join(repairs) + "."
    return note + ")"


def extract_tool_schema(image_ids: list[str]) -> dict:
    """The JSON schema of the `extract` tool, in the OpenAI/Hermes function format chat templates render.

    It stays the same for the whole conversation (crop ids are not enumerated), so the rendered system
    prompt, and the keys/values cached for it, do not change from turn to turn.
    """
    first = image_ids[0] if image_ids else "image_1"
    return {
        "type": "function",
        "function": {
            "name": "extract",
            "description": "Ask the perception model to describe specific visual details of an image.",
            "parameters": {
                "type": "object",
                "properties": {
                    "request": {
                        "type": "string",
                        "description": "What to look at, as a phrase completing 'Especially, pay attention to ...'.",
                    },
                    "region": {
                        "type": "array",
                        "items": {"type": "number"},
                        "minItems": 4,
                        "maxItems": 4,
                        "description": "Optional [x0, y0, x1, y1] box in 0-1 coordinates of the image to zoom into.",
                    },
                    "image": {
                        "type": "string",
                        "description": f"Which image: {', '.join(image_ids) or first} (default {first}), or a "
                        "crop_N returned by an earlier call.",
                    },
                },
                "required": ["request"],
            },
        },
    }
