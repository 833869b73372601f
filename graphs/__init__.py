"""Compiled LangGraph graphs, the Python API (`ExtractThink`) and the `xthink` CLI."""
