"""What an eval run records about itself (run.json): the identity a resume must match, and provenance.

`identity` decides whether a folder's run can be resumed as is; the rest (backends, model revisions,
package versions) tells a reader what produced the numbers.
"""

from __future__ import annotations

import hashlib
import platform
from importlib import metadata
from pathlib import Path
from typing import Protocol

from agent.prompts import PROMPTS_VERSION
from agent.settings import AskOptions
from agent.trace import Result


class Agent(Protocol):
    """What an eval needs of the agent (graphs/api.py's ExtractThink): its two models and one answer per call."""

    reasoner: object
    perceiver: object

    def ask(self, question: str, images: list, options: list[str] | None = None, *, mode: str,
            settings: AskOptions | None = None) -> Result: ...


def manifest(plan, loaded: dict, agent: Agent, settings_hashes: dict[str, str]) -> dict:
    """What was run. `identity` decides whether a folder's run can be resumed as is."""
    identity = {
        "reasoner": plan.reasoner if plan.modes != ["direct"] else None,
        "perceiver": plan.perceiver,
        "modes": sorted(plan.modes),
        "settings": plan.settings.as_dict(),
        "prompts_version": PROMPTS_VERSION,
        "benchmarks": {name: {"source": rows.source, "content_hash": rows.content_hash} for name, rows in loaded.items()},
        "split": plan.split,
        "limit": plan.limit,
        "seed": plan.seed,
        "all_sources": plan.all_sources,
        "shard": list(plan.shard) if plan.shard else None,
    }
    return {
        "identity": identity,
        "backend": {"reasoner": _backend(agent.reasoner), "perceiver": _backend(agent.perceiver)},
        "models": {
            "reasoner": _revision(agent.reasoner) if identity["reasoner"] else None,  # direct-only runs use none
            "perceiver": _revision(agent.perceiver),
        },
        "packages": {name: _version(name) for name in ("extract-think", "torch", "transformers", "langgraph")},
        "python": platform.python_version(),
        "concurrency": plan.concurrency,
        "settings_hash": settings_hashes,
    }


def _backend(model) -> str:
    """transformers, vllm or http: which backend served a role (a custom object names its class)."""
    spec = getattr(model, "spec", None)
    kinds = {"hub": "transformers", "local": "transformers", "vllm": "vllm", "http": "http"}
    return kinds.get(getattr(spec, "kind", ""), type(model).__name__)


def _revision(backend) -> dict:
    spec = getattr(backend, "spec", None)
    info = {"name": getattr(backend, "name", str(backend))}
    if spec is None:
        return info
    if spec.kind == "http":
        info["urls"] = list(spec.urls)
        info["served_model"] = backend.load()
    elif spec.kind == "local":
        config = Path(spec.location) / "config.json"
        info["config_sha256"] = hashlib.sha256(config.read_bytes()).hexdigest() if config.exists() else None
    else:
        try:
            info["revision"] = getattr(backend.load()[1].config, "_commit_hash", None)
        except Exception:  # noqa: BLE001 - the run itself will report the load failure
            info["revision"] = None
    return info


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
