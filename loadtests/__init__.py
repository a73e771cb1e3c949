"""Load tests for Surge: `python -m loadtests.bench` (see `loadtests.bench` for the figures)."""
