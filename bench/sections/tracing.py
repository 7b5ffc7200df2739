"""What tracing costs: Check with tracing off, on at 1% sampling and on at 100%, side by side in one run.

Three servers run at once and interleaved rounds load them in turn (bench/rounds.py), so the
machine's other load hits all alike; beside calls/s, each server's own CPU time per answer is
measured, which a busy machine does not blur. The traced servers export over OTLP/gRPC to a real
receiver on loopback (tests/otlp_receiver.py, counting only) with `parentbased_traceidratio`;
h2load sends no `traceparent`, so every call starts a trace and the ratio decides. The same three
are also timed in process: the whole Check handler, the variants taking turns.
Target (issue 18): off costs nothing measurable, 1% at most 3%.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from typing import Any

from tests.otlp_receiver import Receiver

from .. import inprocess, rounds, servers, workload
from ..context import IN_FLIGHT, Context
from ..report import HEAD, row, target_rows
from .grpc import CHECK, grpc_loads

NAME = "tracing"
TITLE = "What tracing costs (Check over gRPC)"
OFF = "tracing off"
SAMPLED = {"tracing on, 1% sampled": "0.01", "tracing on, 100% sampled": "1.0"}


def sampler_env(endpoint: str, ratio: str) -> dict[str, str]:
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": ratio}


class _Context:
    """What the traced handler asks of a call's context: its metadata (none: every call starts a trace)."""

    @staticmethod
    def invocation_metadata() -> tuple[()]:
        return ()


def handler_us(ctx: Context, endpoint: str, calls: int, turns: int = 20) -> dict[str, dict[str, float]]:
    """Median and mean microseconds of the server's Check handler in this process, per variant.

    The variants take turns, so the machine's other load reaches them alike; a median of per-call
    times ignores the calls another process interrupted, the mean keeps the 1 in 100 that is traced.
    """
    from scopesvc.ops.otel import Tracing

    bodies = [c.request().SerializeToString() for c in workload.representative(workload.full_mix(ctx.engine.catalog))]
    handles, tracers = {}, []
    for name, ratio in {OFF: None, **SAMPLED}.items():
        tracing = None
        if ratio is not None:
            os.environ.update(sampler_env(endpoint, ratio))
            tracing = Tracing()
            tracers.append(tracing)
        handles[name] = inprocess.check_handler(ctx.engine, tracing)[1]
    samples: dict[str, list[int]] = {name: [] for name in handles}
    context = _Context()
    clock = time.perf_counter_ns
    for _turn in range(turns):
        for name, handle in handles.items():
            out = samples[name]
            for k in range(calls // turns):
                coroutine = handle(bodies[k % len(bodies)], context)
                start = clock()
                inprocess.drive(coroutine)
                out.append(clock() - start)
    for tracing in tracers:
        tracing.shutdown()
    return {name: {"median_us": statistics.median(times) / 1000, "mean_us": statistics.fmean(times) / 1000}
            for name, times in samples.items()}


def run(ctx: Context) -> dict[str, Any]:
    quick = ctx.settings.quick
    bodies = [workload.grpc_frame(c.request().SerializeToString())
              for c in workload.representative(workload.full_mix(ctx.engine.catalog))]
    receiver = Receiver(keep=False)
    try:
        handler = handler_us(ctx, receiver.endpoint, 3_000 if quick else 200_000)
        with contextlib.ExitStack() as stack:
            targets = []
            for name, env in {OFF: {}, **{n: sampler_env(receiver.endpoint, r) for n, r in SAMPLED.items()}}.items():
                port, metrics_port = servers.free_port(), servers.free_port()
                cmd = [*servers.scopesvc_cmd(port, metrics_port), *(["--tracing"] if env else [])]
                proc = stack.enter_context(servers.running(cmd, port, ctx.workdir / f"tracing-{len(targets)}.log",
                                                           {**os.environ, **env}))
                targets.append(rounds.Target(name, grpc_loads(port, CHECK, bodies), pids=(proc.pid,)))
            runs = rounds.measure(targets, rounds=ctx.settings.rounds, seconds=1 if quick else ctx.settings.seconds,
                                  rate_seconds=0, rates=[], in_flight=IN_FLIGHT)
    finally:
        receiver.stop()
    return {"runs": {name: by_key["saturation"] for name, by_key in runs.items()}, "handler": handler,
            "spans": receiver.count, "rounds": ctx.settings.rounds}


def correct(results: dict[str, Any]) -> bool:
    return all(r.correct for r in results["runs"].values())


def _ratios(results: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Each variant against off: calls/s (median of rounds), server CPU per answer, handler mean."""
    off, handler_off = results["runs"][OFF], results["handler"][OFF]
    return {name: {"rps": statistics.median(r.round_rps) / statistics.median(off.round_rps),
                   "cpu": statistics.median(r.round_cpu_us) / statistics.median(off.round_cpu_us),
                   "handler": results["handler"][name]["mean_us"] / handler_off["mean_us"]}
            for name, r in results["runs"].items()}


def report(results: dict[str, Any], ctx: Context) -> list[str]:
    ratios, one = _ratios(results), "tracing on, 1% sampled"
    lines = [("| variant | calls/s (median of rounds) | x off | server CPU us/answer | x off | "
              "handler in process, median / mean us | x off (mean) |"), "|---|---:|---:|---:|---:|---:|---:|"]
    for name, r in results["runs"].items():
        h, x = results["handler"][name], ratios[name]
        lines.append(f"| {name} | {statistics.median(r.round_rps):,.0f} | {x['rps']:.3f} | "
                     f"{statistics.median(r.round_cpu_us):.1f} | {x['cpu']:.3f} | "
                     f"{h['median_us']:.2f} / {h['mean_us']:.2f} | {x['handler']:.3f} |")
    return [
        (f"{results['rounds']} interleaved rounds at saturation (h2load, {IN_FLIGHT} in flight, no `traceparent`: "
         f"every call a root the ratio decides); {results['spans']:,} spans reached the OTLP receiver. Server CPU "
         "per answer is the server process's own CPU time over the answers of a round (median of rounds): the "
         "figure a loaded machine does not blur. Off is the reference: with tracing off the SDK is not imported "
         "(tests/test_ops_tracing.py checks it) and front ends skip trace work behind one `is None` test."),
        "", *lines, "", "Every run's answers:", "", HEAD, *(row(name, r) for name, r in results["runs"].items()), "",
        *target_rows([("1% sampling costs <= 3% (server CPU per answer)", f"{ratios[one]['cpu']:.3f} x off",
                       f"{ratios[one]['cpu']:.3f}", ratios[one]["cpu"] <= 1.03)]),
    ]


def summary(results: dict[str, Any]) -> list[str]:
    return [f"{name}: {x['rps']:.3f} x off calls/s, {x['cpu']:.3f} x off CPU/answer, {x['handler']:.3f} x off handler"
            for name, x in _ratios(results).items()]
