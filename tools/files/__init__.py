"""Files we write: output folders we own (folders.py) and crash-safe JSONL records (records.py)."""
