"""What tracing costs: Check throughput with tracing off, on at 1% sampling and on at 100%, side by side.

    .venv/bin/python -m bench.tracing [--rounds N] [--seconds S] [--baseline REF]

Every server runs at once and the rounds interleave them (bench/rounds.py), so the machine's other
load hits all alike. The traced servers export over OTLP/gRPC to a real receiver on loopback
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
from pathlib import Path
from typing import Any

from scopesvc.catalog import files as catalog_files
from scopesvc.policy import Engine
from tests.otlp_receiver import Receiver

from . import rounds, servers, workload
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


def measure(cfg: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    engine = Engine(catalog_files.load_default())
    chosen = workload.representative(workload.full_mix(engine.catalog))
    bodies = [workload.grpc_frame(c.request().SerializeToString()) for c in chosen]
    receiver = Receiver(keep=False)
    targets: list[rounds.Target] = []
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
                log = workdir / f"server-{len(targets)}.log"
                stack.enter_context(servers.running(cmd, port, log, {**os.environ, **env}))
                targets.append(rounds.Target(name, grpc_loads(port, CHECK, bodies), fixed_rates=False))
            if cfg.baseline:
                # `python -m` would put the working directory (this checkout) first on sys.path.
                tree = baseline_tree(cfg.baseline, workdir)
                port, metrics_port = servers.free_port(), servers.free_port()
                cmd = [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(tree)!r}); "
                       "from scopesvc.cli import main; sys.exit(main())", *servers.scopesvc_cmd(port, metrics_port)[3:]]
                stack.enter_context(servers.running(cmd, port, workdir / "baseline.log"))
                targets.append(rounds.Target(f"before tracing ({cfg.baseline})", grpc_loads(port, CHECK, bodies),
                                             fixed_rates=False))
            runs = rounds.measure(targets, rounds=cfg.rounds, seconds=cfg.seconds, rate_seconds=0, rates=[],
                                  in_flight=IN_FLIGHT)
    finally:
        receiver.stop()
    off = statistics.median(runs["tracing off"]["saturation"].round_rps)
    results = {}
    for name, by_key in runs.items():
        result = by_key["saturation"]
        median = statistics.median(result.round_rps)
        results[name] = {"rps_median": round(median), "rps_rounds": [round(r) for r in result.round_rps],
                         "vs_off": round(median / off, 4), "correct": result.correct,
                         "p50_ms": round(result.percentile(50), 3), "p99_ms": round(result.percentile(99), 3)}
    return {"rounds": cfg.rounds, "seconds": cfg.seconds, "in_flight": IN_FLIGHT, "spans_received": receiver.count,
            "targets": results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--baseline", default="", help="git revision to measure beside (e.g. the commit before tracing)")
    cfg = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-tracing-") as tmp:
        result = measure(cfg, Path(tmp))
    print(json.dumps(result, indent=2))
    for name, figures in result["targets"].items():
        print(f"{name:40} {figures['rps_median']:>8} calls/s  {figures['vs_off']:.3f} x off  "
              f"p50 {figures['p50_ms']} ms  p99 {figures['p99_ms']} ms  {'ok' if figures['correct'] else 'WRONG'}",
              file=sys.stderr)
    return 0 if all(figures["correct"] for figures in result["targets"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
