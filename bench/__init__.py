"""Benchmarks: `python -m bench` runs them all, writes bench/results/*.json and bench/README.md."""
