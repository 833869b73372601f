"""Reasoner and perceiver served by an OpenAI-compatible server (vLLM, `transformers serve`, ...).

`load()` checks the server: it lists `/models`, picks the `#MODEL` given (or the only one served), and
fails with a ModelLoadError naming the endpoint otherwise. A `#MODEL` the list leaves out is asked for one
token before it is refused, since a list is not always all a server serves: `transformers serve` lists the
hub cache, and its 5.20 (the release vLLM 0.33 pins) leaves out the model it was started with. One pooled
client per endpoint is shared by every backend object of the process that names the same URLs.

The paper's thinking budget is enforced in two calls (the rules: tools/backends/thinking.py): the first
thinks with `max_tokens` = the budget; if it stopped there, the assistant message so far (its think block
closed) is sent back and the server continues it with the tokens left (tools/backends/openai_requests.py:
continuation_body). vLLM continues the message itself (`continue_final_message`); servers that always add a
generation prompt (`transformers serve`) answer in a new assistant turn with thinking off. The soft boost of
"\n" and "</think>" in the last 5% of the budget needs logits access and is in-process only.
"""

from __future__ import annotations

import threading
import time
from typing import Sequence

from tools.backends.base import PerceiveOutput, PerceiveRequest, ReasonOutput, ReasonRequest
from tools.backends.http_client import Endpoints, EndpointError, HttpSettings
from tools.backends.loading import ModelLoadError
from tools.backends.data_urls import DataUrlCache
from tools.backends.openai_requests import continuation_body, perceive_body, probe_body, reason_body
from tools.backends.openai_responses import (
    ResponseError,
    merge_phases,
    parse_perceive_response,
    parse_reason_response,
    served_by_vllm,
    served_models,
    text_relay,
)
from tools.backends.spec import parse_model
from tools.backends.thinking import tokens_after_thinking

_POOLS: dict[tuple, Endpoints] = {}
_POOLS_LOCK = threading.Lock()


def endpoints_for(urls: tuple[str, ...], settings: HttpSettings) -> Endpoints:
    with _POOLS_LOCK:
        key = (urls, settings)
        if key not in _POOLS:
            _POOLS[key] = Endpoints(urls, settings)
        return _POOLS[key]


class _HttpModel:
    role = "model"

    def __init__(self, model: str, settings: HttpSettings = HttpSettings()):
        self.spec = parse_model(model, self.role)
        if self.spec.kind != "http":
            raise ValueError(f"{model!r} is not a server URL")
        self.name = model
        self.endpoints = endpoints_for(self.spec.urls, settings)
        self._model: str | None = None
        self._listing: dict = {}  # the server's /models answer (who serves the model decides the continuation)

    def load(self) -> str:
        """Resolve the served model name once; raise ModelLoadError if the server cannot serve it."""
        if self._model is None:
            self._model = self._resolve()
        return self._model

    def _resolve(self) -> str:
        try:
            listing = self.endpoints.get("/models")
            served = served_models(listing)
        except (EndpointError, ResponseError) as exc:
            raise ModelLoadError(f"{self.role} server {exc}") from None
        self._listing = listing
        wanted = self.spec.served_model
        if wanted is not None:
            refusal = None if wanted in served else self._refusal(wanted)
            if refusal is not None:
                raise ModelLoadError(
                    f"{self.role} server {self.spec.urls[0]} does not serve model '{wanted}' "
                    f"(it serves: {', '.join(served) or 'nothing'}; asked for it: {refusal})"
                )
            return wanted
        if len(served) != 1:
            raise ModelLoadError(
                f"{self.role} server {self.spec.urls[0]} serves {len(served)} models ({', '.join(served)}); "
                f"pick one with URL#MODEL"
            )
        return served[0]

    def _refusal(self, model: str) -> str | None:
        """The server's answer to a one-token request for a model it does not list, or None if it served it."""
        try:
            self.endpoints.post("/chat/completions", probe_body(model))
        except EndpointError as exc:
            return exc.reason
        return None

    def _post(self, body: dict, on_chunk=None) -> tuple[dict, float]:
        started = time.perf_counter()
        payload = self.endpoints.post("/chat/completions", body, on_chunk)
        return payload, time.perf_counter() - started


class HttpReasoner(_HttpModel):
    role = "reasoner"

    def reason(self, requests: Sequence[ReasonRequest]) -> list[ReasonOutput]:
        return [self._reason_one(request) for request in requests]

    def _reason_one(self, request: ReasonRequest) -> ReasonOutput:
        model = self.load()
        first = self._call(reason_body(model, request), request.on_text)
        left = tokens_after_thinking(request.settings, first.finish_reason, first.output_tokens)
        if not left:
            return first
        if request.on_text is not None:
            request.on_text("</think>")  # the budget closed the thinking: what follows is the answer
        continues = served_by_vllm(self._listing, model)
        body = continuation_body(model, request, first, left, continue_message=continues)
        return merge_phases(first, self._call(body, request.on_text))

    def _call(self, body: dict, on_text=None) -> ReasonOutput:
        """One completion; with `on_text` it is streamed and its text handed over as it arrives."""
        if on_text is not None:
            body = {**body, "stream": True, "stream_options": {"include_usage": True}}
        payload, seconds = self._post(body, text_relay(on_text) if on_text is not None else None)
        try:
            return parse_reason_response(payload, seconds)
        except ResponseError as exc:
            raise EndpointError(self.spec.urls[0], str(exc)) from None


class HttpPerceiver(_HttpModel):
    role = "perceiver"

    def __init__(self, model: str, settings: HttpSettings = HttpSettings()):
        super().__init__(model, settings)
        self._urls = DataUrlCache()

    def perceive(self, requests: Sequence[PerceiveRequest]) -> list[PerceiveOutput]:
        model = self.load()
        outputs = []
        for request in requests:
            urls = [self._urls.get(img) for img in request.images]
            payload, seconds = self._post(perceive_body(model, request, urls))
            try:
                outputs.append(parse_perceive_response(payload, seconds))
            except ResponseError as exc:
                raise EndpointError(self.spec.urls[0], str(exc)) from None
        return outputs
