"""Benchmarks (`pdn-bench`): speed and memory measured side by side, reports under docs/."""
