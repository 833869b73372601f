"""lmms-eval's plugin entry point (group `lmms_eval.models`): registers `extract_think` by class path.

lmms-eval 0.7 loads this when `lmms_eval.models` is imported, so it must stay cheap: it names the class
(graphs/lmms/model.py) and lmms-eval imports that only when the model is asked for.
"""

from __future__ import annotations

MODEL_ID = "extract_think"
CLASS_PATH = "graphs.lmms.model.ExtractThinkLMM"


def manifests():
    """The manifest lmms-eval's registry reads (a callable, so nothing is imported until it asks)."""
    from lmms_eval.models.registry_v2 import ModelManifest

    return ModelManifest(model_id=MODEL_ID, simple_class_path=CLASS_PATH, aliases=("extract-think",))
