"""freeze_long_lived: what is alive is kept out of the GC's passes, and what an earlier call froze is not kept
forever (a process that runs many evals freezes once per eval)."""

from __future__ import annotations

import gc
import weakref

from tools.long_lived import freeze_long_lived


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
