"""The live context of a run: from the Python API as is, or built from a server's JSON context.

Python callers pass an AgentContext holding loaded models and an image store. LangGraph Server can only
send JSON, so its runs carry a RunContext (or nothing); here it becomes an AgentContext whose models come
from the process-wide registry (loaded once, shared by every run, batched together) and whose image store
is filled from the paths in state. The built context is kept on the RunContext object, which LangGraph
creates once per run, so a run loads its images once.

A run's context comes from a client, so it gets what `xthink serve` gives a request: the same range checks,
the same caps (SettingCaps, set by the operator's XTHINK_*_CAP variables), the models the operator allows
(XTHINK_ALLOWED_MODELS) and the device the operator chose (XTHINK_DEVICE): a client cannot make the server
load a second copy of the models elsewhere.
"""

from __future__ import annotations

import os
from typing import Any

from agent import telemetry_reasoner
from agent.setting_caps import SettingCaps
from agent.settings import (
    DEFAULT_PERCEIVER,
    DEFAULT_REASONER,
    InputError,
    RunContext,
    SettingError,
    checked,
)
from agent.state import AgentContext
from tools.backends.registry import env_placement, shared_perceiver, shared_reasoner

_BUILT = "_xthink_live"


def live_context(runtime: Any, state: dict) -> AgentContext:
    """The run's AgentContext, with every image of `state` in its store."""
    given = getattr(runtime, "context", None)
    if isinstance(given, AgentContext):
        ctx = given
    elif isinstance(given, RunContext):
        ctx = getattr(given, _BUILT, None) or build_context(given)
        object.__setattr__(given, _BUILT, ctx)
    else:
        ctx = build_context(RunContext(**(given or {})) if isinstance(given, dict) else RunContext())
    for image in state.get("images", []):
        if image.id not in ctx.store:
            _load(ctx, image)
    return telemetry_reasoner.traced(ctx)


def _load(ctx: AgentContext, image) -> None:
    """Load a state image; one pruned from the store while the run waited (a resume long after an interrupt) is
    named by its id, never by its server path."""
    from tools.images.pixels import ImageError

    try:
        ctx.store.add(image.path, image.id)
    except ImageError:
        raise ImageError(f"{image.id} of this conversation is no longer stored on the server (images unused for a "
                         "while are pruned); send it again with your message") from None


def build_context(run: RunContext) -> AgentContext:
    """Models by name (the run's, else XTHINK_REASONER / XTHINK_PERCEIVER, else the small pair), shared."""
    run = SettingCaps.from_env().apply(checked(run), "context key")
    placement = env_placement(allowed_device(run.device))
    reasoner = allowed(run.reasoner) or os.environ.get("XTHINK_REASONER") or DEFAULT_REASONER
    perceiver = allowed(run.perceiver) or os.environ.get("XTHINK_PERCEIVER") or DEFAULT_PERCEIVER
    return AgentContext.build(
        shared_reasoner(reasoner, placement),  # created, not loaded: direct never loads it
        shared_perceiver(perceiver, placement), run.ask_options(), mode=run.mode or "iterative",
        interrupt_before_extract=run.interrupt_before_extract, stream_text=run.stream_text,
    )


def allowed(model: str | None) -> str | None:
    """A model a run's context names, if the server allows it. With XTHINK_ALLOWED_MODELS set (comma-separated)
    a deployed server loads only those and its XTHINK_REASONER / XTHINK_PERCEIVER: a client cannot make it
    load any hub model or folder, or call any URL as a model server."""
    listed = os.environ.get("XTHINK_ALLOWED_MODELS")
    if model is None or not listed:
        return model
    permitted = {m.strip() for m in listed.split(",")} | {os.environ.get("XTHINK_REASONER"),
                                                          os.environ.get("XTHINK_PERCEIVER")}  # fmt: skip
    if model not in permitted:
        raise InputError(f"model '{model[:120]}' is not allowed on this server (XTHINK_ALLOWED_MODELS)")
    return model


def allowed_device(device: str | None) -> str | None:
    """The device a run's context names, if the operator lets runs choose. With XTHINK_DEVICE set, or on a
    deployed server (XTHINK_ALLOWED_MODELS set), the operator's device is the only one: another would load
    a second copy of every model there."""
    fixed = os.environ.get("XTHINK_DEVICE")
    deployed = bool(os.environ.get("XTHINK_ALLOWED_MODELS"))
    if device is None or device == fixed or not (fixed or deployed):
        return device
    where = f"on {fixed} (XTHINK_DEVICE)" if fixed else "where its operator chose (XTHINK_ALLOWED_MODELS is set)"
    raise SettingError("device", f"this server runs its models {where}; leave it unset, not {device[:40]!r}",
                       "context key")
