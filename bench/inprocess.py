"""In-process costs of the pure core: decisions, catalog load and compile, and a decision cache.

`python -m bench.inprocess load FILE` loads one catalog in a fresh process and prints JSON
(parse and compile seconds, resident memory added), so each size is measured from a cold start.
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import time
from pathlib import Path

import cachetools

from scopesvc import catalog_files
from scopesvc.policy import Engine

from . import workload


def decision_ns(engine: Engine, rounds: int) -> dict[str, float]:
    """Per-decision cost over the full mix: median, p99 and mean of per-call times (ns)."""
    cases = [(c.token, c.method, c.path) for c in workload.full_mix(engine.catalog)]
    check = engine.check
    clock = time.perf_counter_ns
    for token, method, path in cases:  # warm up
        check(token, method, path)
    samples = []
    for _ in range(rounds):
        for token, method, path in cases:
            start = clock()
            check(token, method, path)
            samples.append(clock() - start)
    samples.sort()
    return {"median": samples[len(samples) // 2], "p99": samples[int(len(samples) * 0.99)],
            "mean": statistics.fmean(samples), "n": len(samples), "cases": len(cases)}


def cached_decision_ns(engine: Engine, rounds: int) -> dict[str, float]:
    """The same mix through an LRU cache keyed on the whole question (every call after the first hits)."""
    cache: cachetools.LRUCache = cachetools.LRUCache(maxsize=10_000)
    cases = [((c.token.scopes, c.token.format, c.method, c.path), (c.token, c.method, c.path))
             for c in workload.full_mix(engine.catalog)]
    check = engine.check
    clock = time.perf_counter_ns
    samples = []
    for _ in range(rounds + 1):
        for key, args in cases:
            start = clock()
            decision = cache.get(key)
            if decision is None:
                decision = cache[key] = check(*args)
            samples.append(clock() - start)
    samples = sorted(samples[len(cases):])
    return {"median": samples[len(samples) // 2], "p99": samples[int(len(samples) * 0.99)],
            "mean": statistics.fmean(samples), "n": len(samples)}


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def load_once(path: str) -> dict[str, float]:
    before = _rss_kib()
    raw = Path(path).read_bytes()
    start = time.perf_counter()
    data = catalog_files.parse_document(raw, path)
    parsed = time.perf_counter()
    from scopesvc.policy import compile_catalog
    engine = Engine(compile_catalog(data, source=path, digest="bench"))
    done = time.perf_counter()
    del data, raw
    return {"parse_s": parsed - start, "compile_s": done - parsed, "total_s": done - start,
            "rss_mib": (_rss_kib() - before) / 1024, "endpoints": len(engine.catalog.endpoints)}


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "load":
        print(json.dumps(load_once(sys.argv[2])))
    else:
        sys.exit("usage: python -m bench.inprocess load FILE")
