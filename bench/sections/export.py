"""Decisions in the data plane: `scopesvc export envoy` beside Envoy's other decision paths."""

from __future__ import annotations

import statistics
from typing import Any

from .. import export as export_bench
from ..context import Context
from ..h2load import Result

NAME = "export"
TITLE = "Decisions in the data plane: exported RBAC beside ext_authz"
# The targets for the exported path, against Envoy + jwt_authn in the same run.
THROUGHPUT_TARGET, P99_TARGET = 0.9, 1.1


def run(ctx: Context) -> dict[str, Any]:
    if ctx.settings.quick:
        return {"note": "Not run by --quick.", "runs": {}}
    return export_bench.section(ctx.settings, ctx.workdir)


def correct(results: dict[str, Any]) -> bool:
    return all(r.correct for by_key in results["runs"].values() for r in by_key.values())


def _cpu(result: Result) -> str:
    return f"{statistics.median(result.round_cpu_us):.0f}" if result.round_cpu_us else "-"


def report(results: dict[str, Any], ctx: Context) -> list[str]:
    runs: dict[str, dict[Any, Result]] = results["runs"]
    lines = [results["note"]]
    if not runs:
        return lines
    rates = ctx.settings.rates
    alone = runs.get(export_bench.ALONE)
    lines += ["", "| path | sat. req/s | CPU us/answer | " + " | ".join(f"p50 / p99 ms @{r}/s" for r in rates) +
              " | added p50 ms vs Envoy alone @" + f"{rates[0]}/s |",
              "|---|---|---|" + "---|" * len(rates) + "---|"]
    for name, by_key in runs.items():
        cells = [f"{by_key['saturation'].rps:,.0f}", _cpu(by_key["saturation"])]
        cells += [f"{by_key[r].percentile(50):.3f} / {by_key[r].percentile(99):.3f}" if r in by_key else "-"
                  for r in rates]
        first = rates[0]
        added = by_key[first].percentile(50) - alone[first].percentile(50) if alone and first in by_key else None
        cells.append(f"{added:+.3f}" if added is not None else "-")
        wrong = [b for r in by_key.values() for b in r.bad_bodies] + [
            f"{r.failed} failed" for r in by_key.values() if r.failed]
        lines.append(f"| {name} | " + " | ".join(cells) + " |" + (f" WRONG: {wrong[:2]}" if wrong else ""))
    base, exported = runs.get(export_bench.JWT), runs.get(export_bench.EXPORTED)
    if base and exported:
        throughput = exported["saturation"].rps / base["saturation"].rps
        p99 = {r: exported[r].percentile(99) / base[r].percentile(99) for r in rates if r in exported and r in base}
        met = throughput >= THROUGHPUT_TARGET and all(x <= P99_TARGET for x in p99.values())
        lines += ["", f"Exported / jwt_authn alone, this run: throughput {throughput:.2f}x (target >= "
                  f"{THROUGHPUT_TARGET}x); p99 " + ", ".join(f"@{r}/s {x:.2f}x" for r, x in p99.items()) +
                  f" (target <= {P99_TARGET}x): targets {'met' if met else 'NOT met'}."]
    return lines


def summary(results: dict[str, Any]) -> list[str]:
    return [f"{name}: {by_key['saturation'].rps:,.0f} req/s, CPU {_cpu(by_key['saturation'])} us/answer"
            for name, by_key in results["runs"].items()]
