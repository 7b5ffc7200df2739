"""Envoy in front: requests through Envoy with ext_authz to scopesvc, against Envoy alone."""

from __future__ import annotations

from typing import Any

from .. import envoy as envoy_bench
from ..context import Context
from ..h2load import Result
from ..report import HEAD, row

NAME = "envoy"
TITLE = "Envoy in front"


def run(ctx: Context) -> dict[str, Any]:
    if ctx.settings.quick:
        return {"note": "Not run by --quick.", "runs": {}}
    return envoy_bench.section(ctx.settings, ctx.workdir, ctx.engine)


def correct(results: dict[str, Any]) -> bool:
    return all(r.correct for r in results["runs"].values() if isinstance(r, Result))


def report(results: dict[str, Any], ctx: Context) -> list[str]:
    lines = [results["note"]]
    if not results["runs"]:
        return lines
    lines += ["", HEAD] + [row(name, r) for name, r in results["runs"].items()]
    plain = results["runs"].get("Envoy, no ext_authz")
    authz = results["runs"].get("Envoy + ext_authz -> scopesvc")
    if plain and authz:
        lines += ["", f"ext_authz to scopesvc costs {authz.percentile(50) - plain.percentile(50):.2f} ms at the "
                  f"median under this load; throughput {authz.rps / plain.rps:.2f}x of Envoy alone."]
    return lines


def summary(results: dict[str, Any]) -> list[str]:
    return [f"{name}: {r.rps:,.0f} req/s p99 {r.percentile(99):.2f} ms correct={r.correct}"
            for name, r in results["runs"].items()]
