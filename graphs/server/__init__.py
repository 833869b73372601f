"""Servers in front of the agent: the OpenAI-compatible endpoint and LangGraph Server's extra routes."""
