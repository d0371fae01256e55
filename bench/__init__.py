"""Benchmarks for xinfang (run ``python bench/run.py``); see bench/README.md."""
