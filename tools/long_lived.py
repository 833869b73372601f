"""Long-lived objects out of the garbage collector's way, once the models are loaded.

A loaded model brings hundreds of thousands of Python objects (modules, parameters, configs, a tokenizer's
vocabulary: 570,000 with the two tiny models), and every full collection walks them all again. Measured during
an eval at concurrency 16 on the tiny models: a full collection took about 350 ms, 3 ms per sample of that run,
and came at a random point, so one run of 120 samples was 15% slower than the next; after freezing, about
60 ms. Long-running processes do this once their start-up is done (vLLM freezes after its engine start-up).

Frozen objects are never collected, so a cycle among them that dies later would stay in memory; each pass
therefore first hands back what the last one froze. A pass walks every object (about 240 ms with the two tiny
models), so it is done when there is something new to freeze: `freeze_new_models`, called where work starts
(an eval, a server's start-up), runs one only when a model was loaded since the last. An eval in a process
whose models are loaded (the next eval of a LangGraph Server, a benchmark's next run) then starts at once; what
a pass froze along with the models (the run that made it: its own objects) is handed back by the pass after
the next load.
"""

from __future__ import annotations

import gc
import threading

_passed_at: int | None = None  # tools.backends.loading.builds() at the last pass
_pass_lock = threading.Lock()


def freeze_long_lived() -> None:
    """Collect what is garbage now (including what an earlier call froze), then exempt everything still alive
    from later collections."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def freeze_new_models() -> None:
    """`freeze_long_lived`, when a model was loaded since the last pass (or there was none yet)."""
    global _passed_at
    from tools.backends.loading import builds

    with _pass_lock:
        loaded = builds()
        if loaded != _passed_at:
            freeze_long_lived()
            _passed_at = loaded
