"""Scrubbing what clients see: the operator's strings (model folders and URLs, server folders) and any
credentials written into a URL are replaced in every error message, reply and Result the server sends.
"""

from __future__ import annotations

import re

from tools.images.inputs import ImagePolicy


class Redactor:
    """Replaces the operator's strings in a text, or in every string of a JSON-like value."""

    _CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@'\"]+@")

    def __init__(self, replacements: list[tuple[str, str]]):
        self.replacements = sorted((r for r in replacements if r[0]), key=lambda r: -len(r[0]))  # longest first

    @classmethod
    def for_server(cls, agent, policy: ImagePolicy) -> Redactor:
        """The models' names and URLs become their role; the image root and store become `<server folder>`."""
        pairs: list[tuple[str, str]] = []
        for role in ("reasoner", "perceiver"):
            backend = getattr(agent, role, None)
            spec = getattr(backend, "spec", None)
            names = [getattr(backend, "name", None), getattr(spec, "name", None), *getattr(spec, "urls", ())]
            pairs += [(name, role) for name in names if isinstance(name, str) and len(name) > 2]
        for folder in (policy.image_root, policy.store_dir or _store_root()):
            if folder is not None:
                pairs += [(f"{folder}/", ""), (str(folder), "<server folder>")]
        return cls(pairs)

    def __call__(self, text: str) -> str:
        for secret, public in self.replacements:
            text = text.replace(secret, public)
        return self._CREDENTIALS.sub(r"\1***@", text)

    def data(self, value):
        """The same over every string of a JSON-like value."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, list):
            return [self.data(v) for v in value]
        if isinstance(value, dict):
            return {k: self.data(v) for k, v in value.items()}
        return value


def _store_root():
    from tools.images.store import default_store_dir

    return default_store_dir()
