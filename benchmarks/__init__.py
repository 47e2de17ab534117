"""Benchmarks: measured, never asserted. `python -m benchmarks.run_all` runs them all."""
