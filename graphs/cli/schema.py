"""`xthink schema`: the JSON schema of what `ask --json` and `--trace-out` write, for tools that read traces."""

from __future__ import annotations

import json
import sys


def schema_command() -> None:
    """Print the JSON schema of a run's result and trace (what --json and --trace-out write)."""
    from agent.trace import Result

    sys.stdout.write(json.dumps(Result.model_json_schema(), indent=2) + "\n")
