"""The mapping from an OpenAI request to the agent's settings: which served model is which regime, and which
request fields set which ask settings.

OpenAI's max_tokens (or max_completion_tokens), temperature, top_p and seed map onto the ask settings, and so
do our own extra fields (ASK_FIELDS, sent beside OpenAI's). Each is type- and range-checked
(agent/settings.py) and held within the server's caps; a bad one is a 400 naming the request's key in `param`.
OpenAI's temperature 0 or top_p 0 means greedy decoding, which the ask settings spell `greedy`.
"""

from __future__ import annotations

from agent.settings import AskOptions, SettingError, setting_names, validated
from graphs.server.chat_request import ChatRequest
from graphs.server.errors import ApiError
from graphs.server.serve_limits import ServeLimits

MODELS = {"extract-think": "iterative", "extract-think-extract": "extract", "extract-think-caption": "caption",
          "extract-think-direct": "direct"}  # fmt: skip
ASK_FIELDS = setting_names(skip=("max_pixels",))  # a client's settings; the pixel limit is the operator's


def served_mode(chat: ChatRequest) -> str:
    """The regime a served model id runs; an unknown id is a 404 listing the served ones."""
    mode = MODELS.get(chat.model)
    if mode is None:
        raise ApiError(404, f"model '{chat.model}' does not exist; GET /v1/models lists "
                       f"{', '.join(MODELS)}", param="model")  # fmt: skip
    return mode


def ask_options(chat: ChatRequest, limits: ServeLimits = ServeLimits()) -> AskOptions:
    """The request's settings as checked ask settings within the server's caps (see the module docstring)."""
    values = _ask_values(chat)
    sent = {name: name for name in values}  # ask field -> the request's key, for the error's `param`
    token_key = "max_completion_tokens" if chat.max_completion_tokens is not None else "max_tokens"
    if getattr(chat, token_key) is not None and "max_new_tokens" not in values:
        values["max_new_tokens"], sent["max_new_tokens"] = getattr(chat, token_key), token_key
    try:
        return limits.caps.apply(validated(AskOptions, values))
    except SettingError as exc:
        key = sent.get(exc.field, exc.field)
        raise ApiError(400, f"{key} {exc.problem}", param=key) from None


def _ask_values(chat: ChatRequest) -> dict:
    """Our extra fields and OpenAI's sampling fields by ask setting name, a zero temperature or top_p as greedy."""
    extra = chat.model_extra or {}
    values = {k: extra[k] for k in ASK_FIELDS if k in extra}
    for name in ("temperature", "top_p", "seed"):
        if getattr(chat, name) is not None:
            values[name] = getattr(chat, name)
    for name in ("temperature", "top_p"):
        if values.get(name) == 0 and not isinstance(values[name], bool):
            values.pop(name)
            values["greedy"] = True
    return values
