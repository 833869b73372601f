"""Agent state, prompts, nodes and output parsing: everything model-agnostic about the regimes."""
