"""Envoy in front: requests through Envoy with ext_authz to scopesvc, against Envoy without it.

Both Envoys answer every request themselves (`direct_response` 200), so the difference is the
ext_authz round trip to scopesvc and its decision. scopesvc takes the token's scopes from the
trusted `x-scopesvc-scopes` header (`--scope-source header`), as behind an authenticating layer.
h2load checks each load's HTTP status: 200 when scopesvc allows, 403 when it denies.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any

import yaml

from scopesvc.policy import Engine
from scopesvc.policy.model import TokenFormat

from . import h2load, rounds, servers, tools, workload
from .context import Settings

IN_FLIGHT = 64


def config(port: int, scopesvc_port: int | None) -> dict[str, Any]:
    """A static Envoy config: one h2c/HTTP listener answering 200, with ext_authz when `scopesvc_port` is set."""
    filters: list[dict[str, Any]] = []
    clusters: list[dict[str, Any]] = []
    if scopesvc_port is not None:
        filters.append({"name": "envoy.filters.http.ext_authz", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
            "transport_api_version": "V3", "failure_mode_allow": False,
            "grpc_service": {"envoy_grpc": {"cluster_name": "scopesvc"}, "timeout": "2s"}}})
        clusters.append({
            "name": "scopesvc", "type": "STATIC", "connect_timeout": "1s",
            "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}}}},
            "load_assignment": {"cluster_name": "scopesvc", "endpoints": [{"lb_endpoints": [{"endpoint": {
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": scopesvc_port}}}}]}]}})
    filters.append({"name": "envoy.filters.http.router", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}})
    manager = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "ingress", "codec_type": "AUTO",
        "route_config": {"virtual_hosts": [{"name": "api", "domains": ["*"], "routes": [
            {"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": "ok"}}}]}]},
        "http_filters": filters,
    }
    return {"static_resources": {
        "listeners": [{"name": "ingress",
                       "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
                       "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                                       "typed_config": manager}]}]}],
        "clusters": clusters}}


def _envoy(stack: contextlib.ExitStack, binary: Path, workdir: Path, name: str, scopesvc_port: int | None) -> int:
    """Start an Envoy (with ext_authz to `scopesvc_port`, or without); return its port."""
    port = servers.free_port()
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config(port, scopesvc_port)))
    cmd = [str(binary), "-c", str(path), "--disable-hot-restart", "--concurrency", "1", "--log-level", "warn",
           "--base-id", str(port)]
    stack.enter_context(servers.running(cmd, port, workdir / f"{name}.log"))
    return port


def _loads(port: int, cases: list[workload.Case], engine: Engine, authz: bool) -> list[h2load.Load]:
    return [h2load.Load(f"http://127.0.0.1:{port}{c.path}", headers=(f"x-scopesvc-scopes: {' '.join(c.token.scopes)}",),
                        status="2xx" if not authz or engine.check(c.token, c.method, c.path).allowed else "4xx")
            for c in cases]


def section(cfg: Settings, workdir: Path, engine: Engine) -> dict[str, Any]:
    """Measure both Envoys (bench.sections.envoy reports it)."""
    binary = tools.envoy()
    if binary is None:
        return {"note": "Envoy not installed (scripts/install-test-tools puts it in .tools/envoy-venv); not run.",
                "runs": {}}
    # h2load sends GET (without a body), and the header carries scopes, not legacy-ness: GET cases of scoped tokens.
    mix = [c for c in workload.full_mix(engine.catalog) if c.method == "GET" and c.token.format != TokenFormat.LEGACY]
    cases: list[workload.Case] = []
    for kind in ("exact", "write_implies_read", "missing", "unknown") * 2:
        cases.append(next(c for c in mix if c.kind == kind and c not in cases))
    with contextlib.ExitStack() as stack:
        port, metrics_port = servers.free_port(), servers.free_ports(1)
        cmd = servers.scopesvc_cmd(port, metrics_port, cache_size=0) + ["--scope-source", "header"]
        stack.enter_context(servers.running(cmd, port, workdir / "scopesvc-envoy.log"))
        plain = _envoy(stack, binary, workdir, "envoy-plain", None)
        authz = _envoy(stack, binary, workdir, "envoy-authz", port)
        targets = [rounds.Target("Envoy, no ext_authz", _loads(plain, cases, engine, False), False),
                   rounds.Target("Envoy + ext_authz -> scopesvc", _loads(authz, cases, engine, True), False)]
        measured = rounds.measure(targets, rounds=cfg.rounds, seconds=cfg.seconds, rate_seconds=0, rates=[],
                                  in_flight=IN_FLIGHT)
    runs = {name: by_key["saturation"] for name, by_key in measured.items()}
    found = re.search(r"/(\d+\.\d+\.\d+)/", tools.version([str(binary), "--version"]))
    version = f"Envoy {found.group(1) if found else '?'}"
    note = (f"{version} with one worker thread (`--concurrency 1`), answering 200 itself; "
            f"{IN_FLIGHT} requests in flight over {len(cases)} GET requests (h2load sends no other method without a "
            "body): " + "; ".join(f"{c.kind}: {c.method} {c.path}" for c in cases) + ". scopesvc runs one process, "
            "cache off. Each load's HTTP status is checked (200 allowed, 403 denied).")
    return {"note": note, "runs": runs, "version": version}
