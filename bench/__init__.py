"""Benchmarks of speed, memory and scale (`make bench`, `python -m bench`); see docs/BENCHMARKS.md."""
