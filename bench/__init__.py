"""scopesvc's benchmark: `./bench/run` (or `python -m bench`) measures and writes BENCHMARKS.md."""
