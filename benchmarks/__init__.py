"""Scripts that print measured figures: `python -m benchmarks.NAME --help` from the repository root."""
