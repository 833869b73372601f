"""Benchmarks, scoring, the append-only run store, aggregation and reports."""
