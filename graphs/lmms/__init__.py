"""The agent as an lmms-eval model (`--model extract_think`): the model, its prompt mapping, local tasks."""
