"""Benchmarks. Each `bench/bench_<area>.py` runs with `python -m bench.bench_<area>` and appends
its figures, with the machine they came from, to `bench/RESULTS.md`."""
