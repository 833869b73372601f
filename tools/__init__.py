"""The perception tool, image handling and model backends."""
