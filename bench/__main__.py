"""Run the whole benchmark and write BENCHMARKS.md: `./bench/run [--quick] [--out FILE]`.

Side by side on one machine with one load generator (h2load) at the same concurrency: scopesvc
Check, a no-op grpcio server (the ceiling), Cerbos (the peer) and, when available, Envoy with and
without ext_authz. Also in-process decision cost, catalog load/compile/memory at 1k/10k/100k
endpoints, CheckBatch, fixed-rate latency and what a decision cache buys.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from scopesvc.catalog import files as catalog_files
from scopesvc.policy import Engine
from scopesvc.v1 import scopesvc_pb2 as pb

from . import cerbos, h2load, inprocess, metrics, report, rounds, servers, synthetic, tools, workload

CHECK = "/scopesvc.v1.ScopeService/Check"
CHECK_BATCH = "/scopesvc.v1.ScopeService/CheckBatch"
IN_FLIGHT = 64
WORK_US = 15  # the no-op server's stand-in for a handler's own time per call


def expected(engine: Engine, case: workload.Case) -> tuple[bool, int, tuple[str, ...], str]:
    decision = engine.check(case.token, case.method, case.path)
    return decision.allowed, int(decision.reason), tuple(decision.missing_scopes), decision.endpoint.key if decision.endpoint else ""


def answer(response: pb.CheckResponse) -> tuple[bool, int, tuple[str, ...], str]:
    return response.allowed, int(response.reason), tuple(response.missing_scopes), response.endpoint


def verify_scopesvc(port: int, engine: Engine, cases: list[workload.Case]) -> list[str]:
    """Ask the server every case (outside h2load) and compare with the in-process decision."""
    replies = servers.raw_calls(port, CHECK, [c.request().SerializeToString() for c in cases])
    return [f"{c.label}: server {answer(pb.CheckResponse.FromString(r))} != core {expected(engine, c)}"
            for c, r in zip(cases, replies) if answer(pb.CheckResponse.FromString(r)) != expected(engine, c)]


def verify_cerbos(port: int, engine: Engine, cases: list[workload.Case]) -> list[str]:
    replies = servers.raw_calls(port, cerbos.METHOD_PATH, [cerbos.request(c).SerializeToString() for c in cases])
    return [f"{c.label}: cerbos allowed={cerbos.allowed(r, c)}, scopesvc allowed={expected(engine, c)[0]}"
            for c, r in zip(cases, replies) if cerbos.allowed(r, c) != expected(engine, c)[0]]


def grpc_loads(port: int, method: str, bodies: list[bytes]) -> list[h2load.Load]:
    """One h2load load per body, each expecting the framed size of its answer asked once outside h2load."""
    replies = servers.raw_calls(port, method, [b[5:] for b in bodies])
    uri = f"http://127.0.0.1:{port}{method}"
    return [h2load.Load(uri, body, frame=5 + len(reply)) for body, reply in zip(bodies, replies)]


def py_spy(pid: int, seconds: float, loads: list[h2load.Load], workdir: Path) -> str:
    """A py-spy profile (functions by samples) of `pid` while h2load saturates it."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        return "(py-spy not available)"
    out = workdir / "profile.txt"
    proc = subprocess.Popen([spy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--format", "raw",
                             "--output", str(out), "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    h2load.run("profile", loads, streams=IN_FLIGHT, seconds=seconds)
    proc.wait(60)
    return report.collapse_profile(out) if out.exists() else "(py-spy produced no profile)"


def inprocess_section(cfg: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    rounds = 20 if cfg.quick else 300
    default = Engine(catalog_files.load_default())
    result: dict[str, Any] = {"default_cached": inprocess.cached_decision_ns(default, rounds),
                              "handler": inprocess.handler_hot_cold_us(rounds)}
    profile = cProfile.Profile()
    cases = [(c.token, c.method, c.path) for c in workload.full_mix(default.catalog)]
    profile.enable()
    for _ in range(rounds):
        for args in cases:
            default.check(*args)
    profile.disable()
    text = io.StringIO()
    pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(12)
    result["profile"] = report.trim_pstats(text.getvalue())
    result["sizes"] = {}
    engines: dict[Any, Engine] = {"default": default}
    for size in cfg.catalog_sizes:
        path = synthetic.write(size, workdir / f"synthetic-{size}.json")
        load = json.loads(subprocess.run([sys.executable, "-m", "bench.inprocess", "load", str(path)],
                                         capture_output=True, text=True, check=True, cwd=tools.ROOT).stdout)
        engines[size] = Engine(catalog_files.load_file(path))
        load["file_mib"] = path.stat().st_size / 2**20
        result["sizes"][size] = load
    decisions = inprocess.decision_ns(engines, len(cases) * rounds)  # the default's mix `rounds` times over
    result["default"] = decisions.pop("default")
    for size, decision in decisions.items():
        result["sizes"][size]["decision"] = decision
    return result


def batch_bodies(mix: list[workload.Case], size: int) -> list[bytes]:
    """8 CheckBatch requests of `size` checks each, consecutive slices of the (repeated) mix."""
    repeated = mix * (8 * size // len(mix) + 1)
    return [workload.grpc_frame(pb.CheckBatchRequest(
        checks=[c.request() for c in repeated[i * size:(i + 1) * size]]).SerializeToString()) for i in range(8)]


def rpc_section(cfg: argparse.Namespace, workdir: Path, engine: Engine) -> dict[str, Any]:
    mix = workload.full_mix(engine.catalog)
    chosen = workload.representative(mix)
    bodies = [workload.grpc_frame(c.request().SerializeToString()) for c in chosen]
    reasons = [engine.check(c.token, c.method, c.path).reason.name for c in chosen]
    result: dict[str, Any] = {"mix": [c.label for c in chosen], "full_mix_size": len(mix), "checks": {}}
    targets: list[rounds.Target] = []
    with contextlib.ExitStack() as stack:
        # scopesvc as `serve` runs it, without the decision cache: the h2load bodies repeat, so a
        # cache would answer every request from memory, which real traffic (ids vary) does not.
        for workers in sorted({1, cfg.workers}):
            name = "scopesvc" if workers == 1 else f"scopesvc --workers {workers}"
            port, metrics_port = servers.free_port(), servers.free_ports(workers)
            proc = stack.enter_context(servers.running(
                servers.scopesvc_cmd(port, metrics_port, workers=workers, cache_size=0), port, workdir / f"{name}.log"))
            result["checks"][f"{name}: full mix"] = verify_scopesvc(port, engine, mix)
            targets.append(rounds.Target(name, grpc_loads(port, CHECK, bodies), workers == 1,
                                         metrics.counter(metrics_port, workers), reasons))
            if workers == 1:
                scopesvc_port, scopesvc_pid, scopesvc_metrics = port, proc.pid, metrics_port
        noop_bytes = sorted(load.frame for load in targets[0].loads)[len(bodies) // 2] - 5
        port = servers.free_port()
        stack.enter_context(servers.running([sys.executable, "-m", "bench.noop_server", str(port), str(noop_bytes)],
                                            port, workdir / "noop.log"))
        targets.append(rounds.Target("no-op grpcio", grpc_loads(port, CHECK, bodies)))
        if not cfg.quick:
            port = servers.free_port()
            stack.enter_context(servers.running(
                [sys.executable, "-m", "bench.noop_server", str(port), str(noop_bytes), str(WORK_US)],
                port, workdir / "noop-work.log"))
            result["work"] = {"us": WORK_US, "target": f"no-op grpcio + {WORK_US} us of work"}
            targets.append(rounds.Target(result["work"]["target"], grpc_loads(port, CHECK, bodies), False))
        binary = tools.cerbos() if cfg.cerbos else None
        if binary is not None:
            grpc_port = servers.free_port()
            (workdir / "cerbos").mkdir(exist_ok=True)
            cmd, env = cerbos.command(binary, workdir / "cerbos", engine.catalog, grpc_port, servers.free_port())
            stack.enter_context(servers.running(cmd, grpc_port, workdir / "cerbos.log", env))
            result["checks"]["cerbos: full mix"] = verify_cerbos(grpc_port, engine, mix)
            targets.append(rounds.Target("cerbos", grpc_loads(grpc_port, cerbos.METHOD_PATH,
                                                              [cerbos.body(c) for c in chosen])))
            result["cerbos_version"] = tools.version([str(binary), "--version"])
        if not cfg.quick:
            # What the decision cache buys over RPC: the same load with `serve`'s default cache on.
            port, metrics_port = servers.free_port(), servers.free_ports(1)
            stack.enter_context(servers.running(servers.scopesvc_cmd(port, metrics_port), port,
                                                workdir / "scopesvc-cache.log"))
            targets.append(rounds.Target("scopesvc, decision cache on", grpc_loads(port, CHECK, bodies), False))

        result["runs"] = rounds.measure(targets, rounds=cfg.rounds, seconds=cfg.seconds,
                                        rate_seconds=cfg.rate_seconds, rates=cfg.rates, in_flight=IN_FLIGHT)
        # The handler's own time at saturation, from its histograms over one more run.
        before = metrics.time_totals(scopesvc_metrics)
        h2load.run("handler time", targets[0].loads, streams=IN_FLIGHT, seconds=cfg.seconds)
        result["handler_seconds"] = metrics.mean_seconds(metrics.time_totals(scopesvc_metrics) - before)
        if "scopesvc, decision cache on" in result["runs"]:
            result["cache_run"] = result["runs"].pop("scopesvc, decision cache on")["saturation"]
        result["noop_response_bytes"] = noop_bytes

        result["batch"] = {}
        for size in cfg.batch_sizes:
            batch = grpc_loads(scopesvc_port, CHECK_BATCH, batch_bodies(mix, size))
            h2load.run("warm-up", batch, streams=16, seconds=1)
            result["batch"][size] = h2load.run(f"batch {size}", batch, streams=16, seconds=cfg.seconds)
        if cfg.profile:
            result["server_profile"] = py_spy(scopesvc_pid, cfg.seconds, targets[0].loads, workdir)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds: scopesvc and the no-op server only")
    parser.add_argument("--out", type=Path, help="report file (default BENCHMARKS.md; with --quick none)")
    parser.add_argument("--json", type=Path, help="also write the raw results as JSON")
    parser.add_argument("--workers", type=int, default=2, help="also measure `serve --workers N` (default 2)")
    parser.add_argument("--no-cerbos", dest="cerbos", action="store_false", help="skip the Cerbos comparison")
    parser.add_argument("--no-envoy", dest="envoy", action="store_false", help="skip the Envoy comparison")
    cfg = parser.parse_args(argv)
    if cfg.quick:
        cfg.seconds, cfg.rate_seconds, cfg.rates, cfg.rounds = 2, 2, [1000], 1
        cfg.catalog_sizes, cfg.batch_sizes, cfg.workers, cfg.profile = [1000], [10], 1, False
        cfg.cerbos = cfg.envoy = False
    else:
        cfg.seconds, cfg.rate_seconds, cfg.rates, cfg.rounds = 3, 2, [500, 1000, 2000], 6
        cfg.catalog_sizes, cfg.batch_sizes, cfg.profile = [1000, 10_000, 100_000], [1, 10, 100], True
        cfg.out = cfg.out or tools.ROOT / "BENCHMARKS.md"
    tools.h2load()
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="scopesvc-bench-") as tmp:
        workdir = Path(tmp)
        engine = Engine(catalog_files.load_default())
        results: dict[str, Any] = {"machine": tools.machine(), "versions": tools.versions(),
                                   "load_before": os.getloadavg(), "argv": sys.argv[1:] if argv is None else argv,
                                   "rounds": cfg.rounds, "seconds": cfg.seconds, "rate_seconds": cfg.rate_seconds}
        results["inprocess"] = inprocess_section(cfg, workdir)
        results["rpc"] = rpc_section(cfg, workdir, engine)
        if cfg.envoy:
            from . import envoy
            results["envoy"] = envoy.section(cfg, workdir, engine)
        results["load_after"] = os.getloadavg()
        results["elapsed_s"] = time.time() - started
    text = report.markdown(results, cfg)
    if cfg.out:
        cfg.out.write_text(text)
    if cfg.json:
        cfg.json.write_text(json.dumps(report.jsonable(results), indent=1))
    print(report.summary(results))
    return 0 if report.all_correct(results) else 1


if __name__ == "__main__":
    sys.exit(main())
