"""Check over gRPC: scopesvc against a no-op grpcio server (the ceiling) and Cerbos (the peer).

One load generator (h2load) at the same concurrency for every server; scopesvc also with
`--workers N`, at fixed request rates, with CheckBatch, with its decision cache on, and profiled.
"""

from __future__ import annotations

import contextlib
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from scopesvc.policy import Engine
from scopesvc.v1 import scopesvc_pb2 as pb

from .. import cerbos, h2load, inprocess, metrics, rounds, servers, tools, workload
from ..context import IN_FLIGHT, Context
from ..report import HEAD, collapse_profile, ms, row, target_rows

NAME = "grpc"
TITLE = "Check over gRPC"
CHECK = "/scopesvc.v1.ScopeService/Check"
CHECK_BATCH = "/scopesvc.v1.ScopeService/CheckBatch"
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
    return collapse_profile(out) if out.exists() else "(py-spy produced no profile)"


def batch_bodies(mix: list[workload.Case], size: int) -> list[bytes]:
    """8 CheckBatch requests of `size` checks each, consecutive slices of the (repeated) mix."""
    repeated = mix * (8 * size // len(mix) + 1)
    return [workload.grpc_frame(pb.CheckBatchRequest(
        checks=[c.request() for c in repeated[i * size:(i + 1) * size]]).SerializeToString()) for i in range(8)]


def run(ctx: Context) -> dict[str, Any]:
    cfg, workdir, engine = ctx.settings, ctx.workdir, ctx.engine
    tools.h2load()
    mix = workload.full_mix(engine.catalog)
    chosen = workload.representative(mix)
    bodies = [workload.grpc_frame(c.request().SerializeToString()) for c in chosen]
    reasons = [engine.check(c.token, c.method, c.path).reason.name for c in chosen]
    result: dict[str, Any] = {"mix": [c.label for c in chosen], "full_mix_size": len(mix), "checks": {},
                              "endpoints": len(engine.catalog.endpoints), "rates": cfg.rates,
                              "handler": inprocess.handler_hot_cold_us(20 if cfg.quick else 300)}
    targets_: list[rounds.Target] = []
    with contextlib.ExitStack() as stack:
        # scopesvc as `serve` runs it, without the decision cache: the h2load bodies repeat, so a
        # cache would answer every request from memory, which real traffic (ids vary) does not.
        for workers in sorted({1, cfg.workers}):
            name = "scopesvc" if workers == 1 else f"scopesvc --workers {workers}"
            port, metrics_port = servers.free_port(), servers.free_ports(workers)
            proc = stack.enter_context(servers.running(
                servers.scopesvc_cmd(port, metrics_port, workers=workers, cache_size=0), port, workdir / f"{name}.log"))
            result["checks"][f"{name}: full mix"] = verify_scopesvc(port, engine, mix)
            targets_.append(rounds.Target(name, grpc_loads(port, CHECK, bodies), workers == 1,
                                          metrics.counter(metrics_port, workers), reasons))
            if workers == 1:
                scopesvc_port, scopesvc_pid, scopesvc_metrics = port, proc.pid, metrics_port
        noop_bytes = sorted(load.frame for load in targets_[0].loads)[len(bodies) // 2] - 5
        port = servers.free_port()
        stack.enter_context(servers.running([sys.executable, "-m", "bench.noop_server", str(port), str(noop_bytes)],
                                            port, workdir / "noop.log"))
        targets_.append(rounds.Target("no-op grpcio", grpc_loads(port, CHECK, bodies)))
        if not cfg.quick:
            port = servers.free_port()
            stack.enter_context(servers.running(
                [sys.executable, "-m", "bench.noop_server", str(port), str(noop_bytes), str(WORK_US)],
                port, workdir / "noop-work.log"))
            result["work"] = {"us": WORK_US, "target": f"no-op grpcio + {WORK_US} us of work"}
            targets_.append(rounds.Target(result["work"]["target"], grpc_loads(port, CHECK, bodies), False))
        binary = tools.cerbos() if cfg.cerbos else None
        if binary is not None:
            grpc_port = servers.free_port()
            (workdir / "cerbos").mkdir(exist_ok=True)
            cmd, env = cerbos.command(binary, workdir / "cerbos", engine.catalog, grpc_port, servers.free_port())
            stack.enter_context(servers.running(cmd, grpc_port, workdir / "cerbos.log", env))
            result["checks"]["cerbos: full mix"] = verify_cerbos(grpc_port, engine, mix)
            targets_.append(rounds.Target("cerbos", grpc_loads(grpc_port, cerbos.METHOD_PATH,
                                                               [cerbos.body(c) for c in chosen])))
            result["cerbos_version"] = tools.version([str(binary), "--version"])
        if not cfg.quick:
            # What the decision cache buys over RPC: the same load with `serve`'s default cache on.
            port, metrics_port = servers.free_port(), servers.free_ports(1)
            stack.enter_context(servers.running(servers.scopesvc_cmd(port, metrics_port), port,
                                                workdir / "scopesvc-cache.log"))
            targets_.append(rounds.Target("scopesvc, decision cache on", grpc_loads(port, CHECK, bodies), False))

        result["runs"] = rounds.measure(targets_, rounds=cfg.rounds, seconds=cfg.seconds,
                                        rate_seconds=cfg.rate_seconds, rates=cfg.rates, in_flight=IN_FLIGHT)
        result["rounds"], result["seconds"], result["rate_seconds"] = cfg.rounds, cfg.seconds, cfg.rate_seconds
        # The handler's own time at saturation, from its histograms over one more run.
        before = metrics.time_totals(scopesvc_metrics)
        h2load.run("handler time", targets_[0].loads, streams=IN_FLIGHT, seconds=cfg.seconds)
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
            result["server_profile"] = py_spy(scopesvc_pid, cfg.seconds, targets_[0].loads, workdir)
    return result


def correct(results: dict[str, Any]) -> bool:
    runs = [r for server in results["runs"].values() for r in server.values()] + list(results["batch"].values())
    runs += [results["cache_run"]] if "cache_run" in results else []
    return all(r.correct for r in runs) and not any(results["checks"].values())


def targets(results: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """(target, measured, ratio, met) for each of the targets over gRPC."""
    out: list[tuple[str, str, str, bool]] = []
    runs = results["runs"]
    one = runs["scopesvc"]["saturation"]
    best_name = max((n for n in runs if n.startswith("scopesvc")), key=lambda n: runs[n]["saturation"].rps)
    if "cerbos" in runs:
        c = runs["cerbos"]["saturation"]
        for name in dict.fromkeys(["scopesvc", best_name]):
            s = runs[name]["saturation"]
            out.append((f"`{name}` Check throughput at {IN_FLIGHT} in flight >= Cerbos's",
                        f"{s.rps:,.0f} vs {c.rps:,.0f} req/s", f"{s.rps / c.rps:.2f}x", s.rps >= c.rps))
            out.append((f"`{name}` p99 at {IN_FLIGHT} in flight <= Cerbos's",
                        f"{s.percentile(99):.2f} vs {c.percentile(99):.2f} ms",
                        f"{s.percentile(99) / c.percentile(99):.2f}x", s.percentile(99) <= c.percentile(99)))
    n = runs["no-op grpcio"]["saturation"]
    out.append(("Check throughput >= 0.9x the no-op grpcio server's (one process each)",
                f"{one.rps:,.0f} vs {n.rps:,.0f} req/s", f"{one.rps / n.rps:.2f}x", one.rps >= 0.9 * n.rps))
    if 1000 in runs["scopesvc"]:
        r = runs["scopesvc"][1000]
        out.append(("p99 <= 1 ms at 1,000 Check/s (one process)", f"{r.percentile(99):.3f} ms at {r.rps:,.0f}/s",
                    f"{r.percentile(99):.2f}x of 1 ms", r.percentile(99) <= 1.0))
    return out


def report(results: dict[str, Any], ctx: Context) -> list[str]:
    rpc = results
    per_body = IN_FLIGHT // max(1, len(rpc["mix"]))
    lines = target_rows(targets(results))
    lines += [
        "",
        "### How the load is made, and how answers are verified",
        "",
        f"h2load (one client connection per body, HTTP/2, `content-type: application/grpc`) sends gRPC-framed "
        f"requests. It sends one fixed body per process, so the mixed load is {len(rpc['mix'])} h2load processes at "
        f"once, one per request below, sharing the {IN_FLIGHT} streams in flight ({per_body} each) or the fixed rate. "
        "The same (endpoint, token) questions go to every server; Cerbos gets the endpoint's action name (it matches "
        "no paths). All servers run at once and are loaded in turn (each round starting one server later), in "
        f"{rpc['rounds']} interleaved rounds ({rpc['seconds']} s at saturation, {rpc['rate_seconds']} s per fixed "
        "rate, each round), so a change in the shared machine's other load hits every server alike; each row pools "
        "its rounds.",
        "",
    ]
    lines += [f"- {label}" for label in rpc["mix"]]
    lines += [
        "",
        "Correctness, since h2load ignores `grpc-status`: (1) before loading, every server is asked the full mix "
        f"({rpc['full_mix_size']} questions: all {rpc['endpoints']} endpoints with concrete ids and query strings, by "
        "every kind of token that applies) with a gRPC client; scopesvc's answers (allowed, reason, missing scopes, "
        "endpoint) must equal the in-process core's, and Cerbos's allow/deny must equal scopesvc's. (2) For every "
        "h2load run, the DATA bytes h2load received must be a whole number of that body's verified framed answer, at "
        "least one per answer h2load counted (an error status carries no message) and at most the streams still "
        "open when h2load stopped beyond that. (3) For scopesvc, its own `scopesvc_decisions_total` counters "
        "(summed over workers) must have grown, reason by reason, by what h2load got answered for each body's "
        f"expected reason (plus at most the {IN_FLIGHT} requests cut off in flight).",
        "",
    ]
    for name, problems in rpc["checks"].items():
        lines.append(f"- {name}: " + ("all answers agree" if not problems else f"**{len(problems)} disagree**: "
                                        + "; ".join(problems[:5])))
    if "cerbos_version" in rpc:
        lines += ["", f"Cerbos: {rpc['cerbos_version']}."]
    lines += ["", f"### Check at saturation ({IN_FLIGHT} in flight)", "", HEAD]
    lines += [row(name, server["saturation"]) for name, server in rpc["runs"].items()]
    lines += ["", "### Latency at fixed request rates", "", HEAD.replace("| server |", "| server @ rate |")]
    for rate in rpc["rates"]:
        lines += [row(f"{name} @ {rate}/s", server[rate]) for name, server in rpc["runs"].items() if rate in server]
    lines += ["", "### CheckBatch (one process, 16 batches in flight)", "",
              "| batch size | batches/s | decisions/s | p50 ms | p99 ms | correct |", "|---:|---:|---:|---:|---:|---|"]
    for size, r in rpc["batch"].items():
        lines.append(f"| {size} | {r.rps:,.0f} | {r.rps * int(size):,.0f} | {ms(r.percentile(50))} | "
                     f"{ms(r.percentile(99))} | {'yes' if r.correct else 'NO'} |")
    if "cache_run" in rpc:
        on, off = rpc["cache_run"], rpc["runs"]["scopesvc"]["saturation"]
        lines += ["", "### What the decision cache buys over RPC", "",
                  f"`serve` with its default decision cache answers the {len(rpc['mix'])} repeating h2load requests "
                  f"from the cache every time: {on.rps:,.0f} req/s, p99 {on.percentile(99):.2f} ms, against "
                  f"{off.rps:,.0f} req/s, p99 {off.percentile(99):.2f} ms with the cache off "
                  f"({on.rps / off.rps:.2f}x). That is the most a cache can buy; real traffic carries varying ids and "
                  "query strings, so its hit rate is lower, which is why every other run here has the cache off."]
    sweep = rpc["handler"]
    lines += ["", "### The Check handler in process", "",
              f"Median us over the {len(rpc['mix'])} h2load requests: hot (back to back) and cold (each after writing "
              f"one byte per cache line of {inprocess.COLD_SWEEP_BYTES >> 20} MiB, as the server's other work does "
              "between two requests under load):", "", "| part | hot us | cold us |", "|---|---:|---:|"]
    lines += [f"| {name} | {v['hot']:.2f} | {v['cold']:.2f} |" for name, v in sweep.items()]
    if "server_profile" in rpc:
        lines += ["", "### The server under saturation (py-spy)", "",
                  "All threads, Python frames; idle waits such as `EpollSelector.select` and the gRPC poller thread's "
                  "blocking call count as samples. At py-spy's default sampling rate few samples land in a handler of "
                  "microseconds, whose share the server's own histograms measure (see Analysis):",
                  "", "```", rpc["server_profile"], "```"]
    lines += ["", "### Analysis", ""] + analysis(results)
    return lines


def analysis(results: dict[str, Any]) -> list[str]:
    """What this run's numbers say; design notes from earlier experiments point to bench/README.md."""
    rpc, runs = results, results["runs"]
    out = []
    missed = [name for name, _, _, ok in targets(results) if not ok]
    noop = runs["no-op grpcio"]["saturation"]
    one = runs["scopesvc"]["saturation"]
    if "cerbos" in runs:
        cerb = runs["cerbos"]["saturation"]
        best = max((n for n in runs if n.startswith("scopesvc")), key=lambda n: runs[n]["saturation"].rps)
        out.append(
            f"- Against Cerbos: Cerbos is a Go server using every core ({cerb.rps:,.0f} req/s). One scopesvc process "
            f"is one Python thread running gRPC's asyncio server, so it is bounded by one core; `--workers` adds "
            f"processes ({best}: {runs[best]['saturation'].rps:,.0f} req/s). The h2load processes compete with the "
            "servers for the same cores, which caps multi-process gains. The no-op grpcio server, which decides "
            f"nothing, reaches {noop.rps / cerb.rps:.2f}x of Cerbos in this run.")
    means = rpc.get("handler_seconds", {})
    split = (f" At saturation (the server's own histograms over one more run) scopesvc's Check handler took "
             f"{1e6 * means['handler']:.1f} us per call, of which {1e6 * means['decision']:.1f} us was the "
             f"decision; scopesvc completes a request every {1e6 / one.rps:.0f} us, the no-op server every "
             f"{1e6 / noop.rps:.0f} us." if "handler" in means and "decision" in means else "")
    calibration = ""
    if "work" in rpc:
        us, work = rpc["work"]["us"], runs[rpc["work"]["target"]]["saturation"]
        calibration = (f" The no-op server made to spend {us} us per call in a busy loop in its handler reaches "
                       f"{work.rps / noop.rps:.2f}x of itself in this run (about "
                       f"{100 * (1 - work.rps / noop.rps) / us:.1f}% of throughput per microsecond).")
    by_round = sorted(s / n for s, n in zip(one.round_rps, noop.round_rps))
    spread = (f" (round by round: {by_round[0]:.2f}x to {by_round[-1]:.2f}x, median "
              f"{statistics.median(by_round):.2f}x)" if len(by_round) > 1 else "")
    out.append(
        f"- Against the no-op grpcio server: scopesvc reaches {one.rps / noop.rps:.2f}x of it{spread}. Per request "
        "the grpcio asyncio server's own work (HTTP/2 framing, the event loop, protobuf parsing and serialising) "
        f"dominates.{split}{calibration} scopesvc adds its methods as generic handlers only: registered methods "
        "make grpc.aio wait again on one pending request per method for every call it accepts (an earlier "
        "experiment; bench/README.md gives its figures, source and date).")
    if any("Cerbos" in name for name in missed):
        share = (f"scopesvc's handler is {means['handler'] * one.rps:.0%} of the time per request at saturation"
                 if "handler" in means else "scopesvc's own code is a small share of the time per request")
        out.append(f"- Not met, throughput against Cerbos: {share}; the rest is grpcio's asyncio server. One Python "
                   "process serves on one core; `--workers` adds cores where the machine has them to spare.")
    if any("no-op" in name for name in missed):
        hc = rpc["handler"]
        handler = hc.get("Check handler (parse to serialized answer)")
        noop_handler = hc.get("no-op handler (parse, return)")
        cold = (f" The handler table above: the Check handler takes {handler['hot']:.1f} us hot but "
                f"{handler['cold']:.1f} us with cold caches, against {noop_handler['cold']:.1f} us for the no-op "
                "handler." if handler and noop_handler else "")
        out.append("- Not met, against the no-op server: what is left is Python per request around a decision of a "
                   "few microseconds (reading the request into a Token, the decider's metrics, the response), run "
                   f"on caches that gRPC, the kernel and the load generator evict between two requests.{cold} "
                   "Changes tried earlier and their figures are in bench/README.md, with their dates.")
    if any("1,000" in name for name in missed):
        noop_rate = runs["no-op grpcio"].get(1000)
        floor = (f" (the no-op grpcio server's p99 at 1,000/s in this run: {noop_rate.percentile(99):.2f} ms)"
                 if noop_rate else "")
        out.append("- Not met, p99 at 1,000/s: at that rate the server is mostly idle, so the tail is scheduling, "
                   "not work: h2load's paced clients send in small bursts, and the h2load processes, the server's "
                   f"threads and other work share the cores{floor}.")
    return out


def summary(results: dict[str, Any]) -> list[str]:
    out = [f"{name}: {s['saturation'].rps:,.0f} req/s p99 {s['saturation'].percentile(99):.2f} ms "
           f"correct={s['saturation'].correct}" for name, s in results["runs"].items()]
    return out + [f"[{'met' if ok else 'NOT MET'}] {name}: {measured} ({ratio})"
                  for name, measured, ratio, ok in targets(results)]
