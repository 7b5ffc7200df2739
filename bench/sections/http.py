"""Forward-auth: the HTTP front end's throughput, the server choice behind it, and the header attacks."""

from __future__ import annotations

from typing import Any

from .. import forward_auth
from ..context import Context
from ..h2load import Result
from ..report import HEAD, row

NAME = "http"
TITLE = "Forward-auth (HTTP front end)"


def run(ctx: Context) -> dict[str, Any]:
    if ctx.settings.quick:
        return {"note": "Not run by --quick.", "servers": {}, "gateways": {}, "attack": {}}
    seconds = max(5.0, ctx.settings.seconds * 2)
    return {"note": "", **forward_auth.section(seconds, ctx.workdir, ctx.settings.rounds), "seconds": seconds,
            "rounds": ctx.settings.rounds}


def _runs(results: dict[str, Any]) -> list[Result]:
    return [*results["servers"].values(), *results["gateways"].values()]


def correct(results: dict[str, Any]) -> bool:
    attack = results["attack"]
    return all(r.correct for r in _runs(results)) and (not attack or attack["grpc_failed"] == 0)


def report(results: dict[str, Any], ctx: Context) -> list[str]:
    if results["note"]:
        return [results["note"]]
    attack = results["attack"]
    return [
        (f"h2load --h1, {forward_auth.CONNECTIONS} keep-alive connections with one request in flight on each, "
        f"{results['seconds']:g} s per run; every answer checked 2xx."),
        "",
        ("The server choice: the same forward-auth work (the same header parsing, decider and answer) on each "
        f"server, called directly, in {results['rounds']} interleaved rounds (req/s pooled over the rounds; "
        "scopesvc's keep-alive limit of 1,000 requests per connection is lifted, as the others have none and "
        "h2load does not reconnect):"),
        "",
        HEAD, *(row(name, r) for name, r in results["servers"].items()),
        "",
        ("Behind the shipped configs (docs/gateways/; the authentication service they ask first is a static NGINX "
        "server here), the new server and the old one:"),
        "",
        HEAD, *(row(name, r) for name, r in results["gateways"].items()),
        "",
        ("Under attack: 2,000 slow-header connections and 100 connections dribbling 95 x 60 KiB headers "
         "(bench/http_attack.py, reconnecting when closed), with normal forward-auth requests on new connections "
         f"beside them: p50 {attack['p50_ms']} ms, p99 {attack['p99_ms']} ms ({_target(attack['p99_ms'], 50)} "
         f"50 ms), max {attack['max_ms']} ms over {attack['requests']} requests (statuses {attack['statuses']}); "
         f"gRPC Checks: {attack['grpc_ok']} answered, {attack['grpc_failed']} failed; the server's peak RSS "
         f"{attack['rss_peak_mib']} MiB ({_target(attack['rss_peak_mib'], 200)} 200 MB). The attack: "
         f"{attack['attack']}. The attacker, the measuring client and the server share this machine's cores "
         "(no nice, no pinning)."),
    ]


def _target(measured: float, target: float) -> str:
    return "target: under" if measured < target else "NOT under the target"


def summary(results: dict[str, Any]) -> list[str]:
    lines = [f"{name}: {r.rps:,.0f} req/s p99 {r.percentile(99):.2f} ms correct={r.correct}"
             for name, r in {**results["servers"], **results["gateways"]}.items()]
    if results["attack"]:
        lines.append(f"under attack: {results['attack']}")
    return lines
