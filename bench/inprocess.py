"""In-process costs of the pure core: decisions, catalog load and compile, and a decision cache.

`python -m bench.inprocess load FILE` loads one catalog in a fresh process and prints JSON
(parse and compile seconds, resident memory added), so each size is measured from a cold start.
"""

from __future__ import annotations

import asyncio
import json
import resource
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import cachetools
import grpc

from scopesvc import convert
from scopesvc.catalog import files as catalog_files
from scopesvc.ops.config import ServerConfig
from scopesvc.policy import Engine
from scopesvc.server import handlers
from scopesvc.server.app import Server
from scopesvc.server.service import SERVICE, ScopeService
from scopesvc.v1 import scopesvc_pb2 as pb

from . import workload

K = TypeVar("K")


def decision_ns(engines: Mapping[K, Engine], calls: int, turns: int = 10) -> dict[K, dict[str, float]]:
    """Per-decision cost of each engine over its full mix: median, p99 and mean of per-call times (ns).

    The engines take `turns` turns each, timing about `calls / turns` calls a turn, so a change
    in the shared machine's load reaches every catalog alike and their ratios hold.
    """
    mixes = {name: [(c.token, c.method, c.path) for c in workload.full_mix(engine.catalog)]
             for name, engine in engines.items()}
    samples: dict[K, list[int]] = {name: [] for name in engines}
    clock = time.perf_counter_ns
    for _turn in range(turns):
        for name, engine in engines.items():
            check, cases, out = engine.check, mixes[name], samples[name]
            for token, method, path in cases:  # warm up
                check(token, method, path)
            for _ in range(max(1, calls // turns // len(cases))):
                for token, method, path in cases:
                    start = clock()
                    check(token, method, path)
                    out.append(clock() - start)
    return {name: {**summarize(times), "cases": len(mixes[name])} for name, times in samples.items()}


def summarize(samples: list[int]) -> dict[str, float]:
    """Median, p99 and mean of per-call times, and how many there were."""
    samples = sorted(samples)
    return {"median": samples[len(samples) // 2], "p99": samples[int(len(samples) * 0.99)],
            "mean": statistics.fmean(samples), "n": len(samples)}


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
    return summarize(samples[len(cases):])


COLD_SWEEP_BYTES = 4 << 20


def check_handler(engine: Engine, tracing: Any = None) -> tuple[Server, Callable[[bytes, Any], Any]]:
    """The server's Check handler (request bytes to serialized answer) on a Decider without a cache.

    With `tracing` (a `scopesvc.ops.otel.Tracing`), traced as the server traces it.
    """
    # grpc.aio.server() wants a current event loop, and an earlier section's asyncio.run() leaves none.
    asyncio.set_event_loop(asyncio.new_event_loop())
    server = Server(ServerConfig(cache_size=0), engine)
    server.decider.tracing = tracing
    check = ScopeService(server.decider).Check
    if tracing is not None:
        check = handlers._traced(check, SERVICE.full_name, "Check", tracing, None)
    return server, handlers._unary(check, "Check", server.metrics.rpc(SERVICE.full_name, "Check"), None,
                                   pb.CheckRequest, pb.CheckResponse)


def drive(coroutine: Any) -> None:
    """Run a coroutine that never waits (a handler on an in-memory request) to its end."""
    try:
        coroutine.send(None)
    except StopIteration:
        pass


def handler_hot_cold_us(rounds: int) -> dict[str, dict[str, float]]:
    """Median microseconds of the Check handler and its parts, hot and with the CPU caches cold.

    Each part runs on the 8 requests h2load sends: "hot" back to back, "cold" each after
    writing one byte per cache line of 4 MiB, as a server's other work (gRPC, the kernel, the
    load generator) does between two requests. The no-op is the no-op server's handler (parse,
    return), so the difference is what scopesvc adds per request.
    """
    engine = Engine(catalog_files.load_default())
    server, handle = check_handler(engine)
    bodies = [c.request().SerializeToString() for c in workload.representative(workload.full_mix(engine.catalog))]
    requests = [pb.CheckRequest.FromString(b) for b in bodies]
    args = [convert.check_args(r) for r in requests]

    async def noop(request: pb.CheckRequest, context: grpc.aio.ServicerContext) -> bytes:
        return b""

    parts: dict[str, Callable[[int], object]] = {
        "no-op handler (parse, return)": lambda i: drive(noop(pb.CheckRequest.FromString(bodies[i]), None)),
        "Check handler (parse to serialized answer)": lambda i: drive(handle(bodies[i], None)),
        "request validation (to Token, method, path)": lambda i: convert.check_args(requests[i]),
        "decider (decision, its metrics)": lambda i: server.decider.decide(*args[i], rpc="Check"),
        "engine.check (the decision)": lambda i: engine.check(*args[i]),
    }
    sweep = bytearray(COLD_SWEEP_BYTES)
    clock = time.perf_counter_ns
    out: dict[str, dict[str, float]] = {}
    for name, run in parts.items():
        hot, cold = [], []
        for k in range(rounds * len(bodies)):
            i = k % len(bodies)
            start = clock()
            run(i)
            hot.append(clock() - start)
            sweep[0:len(sweep):64] = bytes(len(sweep) // 64)
            start = clock()
            run(i)
            cold.append(clock() - start)
        out[name] = {"hot": statistics.median(hot) / 1000, "cold": statistics.median(cold) / 1000}
    return out


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
