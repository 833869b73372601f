"""Synthetic data in the real formats, for tests, benchmarks and offline walk-throughs (not product code)."""
