"""freeze_long_lived: what is alive is kept out of the GC's passes, and what an earlier call froze is not kept
forever (a process that runs many evals freezes once per eval)."""

from __future__ import annotations

import gc
import weakref

from tools.long_lived import freeze_long_lived, freeze_new_models


class Node:
    def __init__(self):
        self.me = self  # a cycle: only the collector frees it


def test_a_cycle_frozen_by_one_call_is_collected_by_the_next_once_it_died():
    try:
        node = Node()
        alive = weakref.ref(node)
        freeze_long_lived()
        assert gc.get_freeze_count() > 0
        del node
        gc.collect()
        assert alive() is not None, "frozen: the collector does not see it"
        freeze_long_lived()
        assert alive() is None, "the next call collected the cycle that died since the last one"
    finally:
        gc.unfreeze()


def test_a_pass_runs_again_only_after_a_model_is_loaded(tmp_path):
    """An eval in a process whose models are loaded starts without walking them all again; a load brings the
    next pass (which also hands back what the last one froze)."""
    from tools.backends.loading import cached

    try:
        freeze_new_models()  # whatever the process loaded before this test
        node = Node()
        alive = weakref.ref(node)
        freeze_new_models()
        assert alive() is not None
        gc.freeze()  # the node is now frozen, as if the last pass had frozen it
        del node
        freeze_new_models()
        assert alive() is not None, "nothing was loaded since the last pass: no pass"
        cached(("test-long-lived", str(tmp_path)), object)  # a load
        freeze_new_models()
        assert alive() is None, "a load brings a pass, which collects the cycle that died while frozen"
    finally:
        gc.unfreeze()
