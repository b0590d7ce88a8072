"""Benchmarks: scripts ``bench_*.py``, run from the repository root as ``python -m bench.bench_x``,
and the helpers they share in ``bench/lib/`` (see bench/README.md)."""
