"""Where extract-think keeps what it can rebuild: the one reading of $XTHINK_CACHE.

The image content store (tools/images/store.py) and converted checkpoints (tools/backends/conversion_cache.py)
live under it; `xthink cache` shows both.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """$XTHINK_CACHE, else ~/.cache/extract-think."""
    return Path(os.environ.get("XTHINK_CACHE") or Path.home() / ".cache" / "extract-think")
