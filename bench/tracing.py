"""What tracing costs: Check throughput with tracing off, on at 1% sampling and on at 100%, side by side.

    .venv/bin/python -m bench.tracing [--rounds N] [--seconds S] [--baseline REF]

Every server runs at once and the rounds interleave them (as bench/rounds.py does), so the
machine's other load hits all alike; beside calls/s, each server's own CPU time per call is
measured, which a busy machine does not blur. The traced servers export over OTLP/gRPC to a real receiver on loopback
(tests/otlp_receiver.py, counting only), with `parentbased_traceidratio` at 0.01 and 1.0; h2load
sends no `traceparent`, so every call starts a trace and the ratio decides. `--baseline REF`
adds a server run from that git revision (e.g. the commit before tracing), so "off" is measured
against code that has no tracing at all. Target: off costs nothing measurable, 1% at most 3%.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from scopesvc.catalog import files as catalog_files
from scopesvc.ops.config import ServerConfig
from scopesvc.policy import Engine
from tests.otlp_receiver import Receiver

from . import h2load, servers, workload
from .__main__ import CHECK, IN_FLIGHT, grpc_loads

SAMPLED = {"tracing on, 1% sampled": "0.01", "tracing on, 100% sampled": "1.0"}


def baseline_tree(ref: str, workdir: Path) -> Path:
    """The package as it was at git revision `ref`, extracted under `workdir`."""
    tree = workdir / "baseline"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(servers.ROOT), "archive", ref, "scopesvc"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(cfg: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Interleaved rounds (the order rotating) at saturation; per target, calls/s and server CPU per call.

    CPU per call is what a shared machine cannot blur: other load slows every server's wall clock,
    but the CPU time a server spends on a call is its own.
    """
    engine = Engine(catalog_files.load_default())
    chosen = workload.representative(workload.full_mix(engine.catalog))
    bodies = [workload.grpc_frame(c.request().SerializeToString()) for c in chosen]
    receiver = Receiver(keep=False)
    targets: list[tuple[str, int, list[h2load.Load]]] = []
    try:
        with contextlib.ExitStack() as stack:
            setups: list[tuple[str, list[str], dict[str, str]]] = [("tracing off", [], {})]
            for name, ratio in SAMPLED.items():
                setups.append((name, ["--tracing"], {
                    "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                    "OTEL_TRACES_SAMPLER_ARG": ratio}))
            for name, flags, env in setups:
                port, metrics_port = servers.free_port(), servers.free_port()
                cmd = [*servers.scopesvc_cmd(port, metrics_port), *flags]
                proc = stack.enter_context(servers.running(cmd, port, workdir / f"server-{len(targets)}.log",
                                                           {**os.environ, **env}))
                targets.append((name, proc.pid, grpc_loads(port, CHECK, bodies)))
            if cfg.baseline:
                # `python -m` would put the working directory (this checkout) first on sys.path.
                tree = baseline_tree(cfg.baseline, workdir)
                port, metrics_port = servers.free_port(), servers.free_port()
                code = f"import sys; sys.path.insert(0, {str(tree)!r}); from scopesvc.cli import main; sys.exit(main())"
                cmd = [sys.executable, "-c", code, *servers.scopesvc_cmd(port, metrics_port)[3:]]
                proc = stack.enter_context(servers.running(cmd, port, workdir / "baseline.log"))
                targets.append((f"before tracing ({cfg.baseline})", proc.pid, grpc_loads(port, CHECK, bodies)))
            for _name, _pid, loads in targets:
                h2load.run("warm-up", loads, streams=IN_FLIGHT, seconds=1)
            runs: dict[str, list[tuple[h2load.Result, float]]] = {name: [] for name, _, _ in targets}
            for r in range(cfg.rounds):
                for name, pid, loads in targets[r % len(targets):] + targets[:r % len(targets)]:
                    before = cpu_seconds(pid)
                    result = h2load.run(name, loads, streams=IN_FLIGHT, seconds=cfg.seconds)
                    runs[name].append((result, cpu_seconds(pid) - before))
    finally:
        receiver.stop()
    results = {}
    for name, measured in runs.items():
        merged = h2load.merge(name, [result for result, _ in measured])
        cpu_us = [cpu / result.succeeded * 1e6 for result, cpu in measured if result.succeeded]
        results[name] = {"rps_median": round(statistics.median(merged.round_rps)),
                         "cpu_us_per_call_median": round(statistics.median(cpu_us), 1),
                         "cpu_us_per_call_rounds": [round(us, 1) for us in cpu_us], "correct": merged.correct,
                         "p50_ms": round(merged.percentile(50), 3), "p99_ms": round(merged.percentile(99), 3)}
    off = results["tracing off"]
    for figures in results.values():
        figures["rps_vs_off"] = round(figures["rps_median"] / off["rps_median"], 3)
        figures["cpu_vs_off"] = round(figures["cpu_us_per_call_median"] / off["cpu_us_per_call_median"], 3)
    return {"rounds": cfg.rounds, "seconds": cfg.seconds, "in_flight": IN_FLIGHT, "spans_received": receiver.count,
            "targets": results}


class _Context:
    """What the traced handler asks of a call's context: its metadata (none: every call starts a trace)."""

    @staticmethod
    def invocation_metadata() -> tuple[()]:
        return ()


def handler_us(endpoint: str, calls: int, turns: int = 20) -> dict[str, dict[str, float]]:
    """Median and mean microseconds of the whole Check handler (parse to serialized answer), in this process.

    The same handler as the server's (handlers._unary, ScopeService, Decider without a cache), with
    tracing off, and on at 1% and at 100% exporting to the receiver at `endpoint`. The variants take
    turns, so the machine's other load reaches them alike; a median of per-call times ignores the
    calls another process interrupted.
    """
    from scopesvc.ops.otel import Tracing
    from scopesvc.server import handlers
    from scopesvc.server.app import Server
    from scopesvc.server.service import SERVICE, ScopeService
    from scopesvc.v1 import scopesvc_pb2 as pb

    engine = Engine(catalog_files.load_default())
    bodies = [c.request().SerializeToString() for c in workload.representative(workload.full_mix(engine.catalog))]
    variants: dict[str, Any] = {}
    tracers = []
    for name, ratio in {"tracing off": None, **SAMPLED}.items():
        tracing = None
        if ratio is not None:
            os.environ.update(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_TRACES_SAMPLER="parentbased_traceidratio",
                              OTEL_TRACES_SAMPLER_ARG=ratio)
            tracing = Tracing()
            tracers.append(tracing)
        server = Server(ServerConfig(cache_size=0), engine)
        server.decider.tracing = tracing
        variants[name] = handlers._unary(
            handlers._traced(ScopeService(server.decider).Check, SERVICE.full_name, "Check", tracing, None)
            if tracing else ScopeService(server.decider).Check,
            "Check", server.metrics.rpc(SERVICE.full_name, "Check"), None, pb.CheckRequest, pb.CheckResponse)
    context = _Context()
    samples: dict[str, list[int]] = {name: [] for name in variants}
    clock = time.perf_counter_ns
    for _turn in range(turns):
        for name, handle in variants.items():
            out = samples[name]
            for k in range(calls // turns):
                coroutine = handle(bodies[k % len(bodies)], context)
                start = clock()
                try:
                    coroutine.send(None)
                except StopIteration:
                    pass
                out.append(clock() - start)
    for tracing in tracers:
        tracing.shutdown()
    return {name: {"median_us": round(statistics.median(times) / 1000, 2),
                   "mean_us": round(statistics.fmean(times) / 1000, 2)} for name, times in samples.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--calls", type=int, default=200_000, help="in-process handler calls per variant")
    parser.add_argument("--baseline", default="", help="git revision to measure beside (e.g. the commit before tracing)")
    cfg = parser.parse_args(argv)
    receiver = Receiver(keep=False)
    try:
        in_process = handler_us(receiver.endpoint, cfg.calls)
    finally:
        receiver.stop()
    for name, figures in in_process.items():
        print(f"{name:34} Check handler in process: median {figures['median_us']} us, mean {figures['mean_us']} us",
              file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="bench-tracing-") as tmp:
        result = measure(cfg, Path(tmp)) | {"handler_in_process": in_process}
    print(json.dumps(result, indent=2))
    for name, figures in result["targets"].items():
        print(f"{name:34} {figures['rps_median']:>7} calls/s ({figures['rps_vs_off']:.3f} x off)  "
              f"{figures['cpu_us_per_call_median']:>6} us CPU/call ({figures['cpu_vs_off']:.3f} x off)  "
              f"p99 {figures['p99_ms']} ms  {'ok' if figures['correct'] else 'WRONG'}", file=sys.stderr)
    return 0 if all(figures["correct"] for figures in result["targets"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
