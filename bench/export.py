"""Decisions in the data plane: what the exported RBAC costs beside Envoy's other decision paths.

Five Envoys, each answering 200 itself (`direct_response`), so what differs is the decision:
- Envoy alone (no authorization);
- Envoy + jwt_authn (verifying the token, deciding nothing): the baseline for the export;
- Envoy + `scopesvc export envoy` (jwt_authn + the classifier and enforcer RBAC + local replies);
- Envoy + jwt_authn + ext_authz -> scopesvc (the verified payload as metadata);
- Envoy + jwt_authn + ext_authz -> the no-op grpcio server (the RPC's floor).
Every request carries the same RS256 token; allowed and denied requests are mixed and each
answer's status is checked. The CPU each path spends per answer is measured too (Envoy's, plus
the decision service's behind ext_authz). `./bench/run export` runs it (bench/sections/export.py).
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import jwt
import yaml
from cryptography.hazmat.primitives.asymmetric import rsa

from scopesvc.catalog import files as catalog_files
from scopesvc.export import envoy as exported
from scopesvc.policy import Catalog

from . import h2load, rounds, servers, tools
from .context import IN_FLIGHT, Settings

ISSUER, AUDIENCE = "https://issuer.bench", "api.bench"
_TYPE = "type.googleapis.com/"
# (path, allowed) for a token holding users:read and scheduled_events:read (the embedded catalog).
REQUESTS = [("/users/me", True), ("/scheduled_events/AAAA1111", True), ("/event_types", False),
            ("/organizations/BBBB2222/invitations", False)]
SCOPES = "users:read scheduled_events:read"
ALONE, JWT, EXPORTED = "Envoy alone", "Envoy + jwt_authn", "Envoy + exported RBAC + jwt_authn"
EXT_AUTHZ, NOOP = "Envoy + jwt_authn + ext_authz -> scopesvc", "Envoy + jwt_authn + ext_authz -> no-op"


def _grpc_cluster(name: str, port: int) -> dict[str, Any]:
    return {"name": name, "type": "STATIC", "connect_timeout": "1s",
            "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": _TYPE + "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}}}},
            "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [{"endpoint": {
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]}}


def _ext_authz(cluster: str) -> dict[str, Any]:
    return {"name": "envoy.filters.http.ext_authz", "typed_config": {
        "@type": _TYPE + "envoy.extensions.filters.http.ext_authz.v3.ExtAuthz", "transport_api_version": "V3",
        "failure_mode_allow": False, "metadata_context_namespaces": [exported.JWT_FILTER],
        "grpc_service": {"envoy_grpc": {"cluster_name": cluster}, "timeout": "2s"}}}


def config(kind: str, port: int, catalog: Catalog, options: exported.JwtOptions, authz_port: int = 0) -> dict[str, Any]:
    """One Envoy of the comparison: `plain`, `jwt`, `exported`, or `ext_authz` (to `authz_port`)."""
    settings: dict[str, Any] = {"http_filters": []}
    clusters = []
    if kind == "exported":
        settings = exported.connection_manager_settings(catalog, options)
    elif kind in ("jwt", "ext_authz"):
        settings["http_filters"] = [exported.jwt_authn_filter(options)]
    if kind == "ext_authz":
        settings["http_filters"].append(_ext_authz("authz"))
        clusters.append(_grpc_cluster("authz", authz_port))
    manager = {
        "@type": _TYPE + "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "ingress", "codec_type": "AUTO", **settings,
        "route_config": {"virtual_hosts": [{"name": "api", "domains": ["*"], "routes": [
            {"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": "ok"}}}]}]},
    }
    manager["http_filters"] = manager["http_filters"] + [{"name": "envoy.filters.http.router", "typed_config": {
        "@type": _TYPE + "envoy.extensions.filters.http.router.v3.Router"}}]
    return {
        "static_resources": {
            "listeners": [{"name": "ingress", "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
                           "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                                           "typed_config": manager}]}]}],
            "clusters": clusters},
        "layered_runtime": {"layers": [{"name": "scopesvc", "static_layer": dict(exported.RUNTIME)}]},
    }


def _token(key: Any) -> str:
    now = int(time.time())
    return jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": "bench", "iat": now, "exp": now + 86400,
                       "scope": SCOPES}, key, algorithm="RS256", headers={"kid": "bench"})


def setup(workdir: Path) -> tuple[Catalog, exported.JwtOptions, str]:
    """The embedded catalog, jwt_authn options reading a fresh key's JWKS from `workdir`, and the
    `authorization` header every request of the comparison carries."""
    catalog = catalog_files.load("")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True) | {"kid": "bench", "alg": "RS256"}
    (workdir / "jwks.json").write_text(json.dumps({"keys": [jwk]}))
    options = exported.JwtOptions(issuer=ISSUER, audiences=(AUDIENCE,), jwks_file=str(workdir / "jwks.json"))
    return catalog, options, f"authorization: Bearer {_token(key)}"


def section(cfg: Settings, workdir: Path) -> dict[str, Any]:
    binary = tools.envoy()
    if binary is None:
        return {"note": "Envoy not installed (scripts/install-test-tools puts it in .tools/envoy-venv); not run.",
                "runs": {}}
    catalog, options, header = setup(workdir)

    def loads(port: int, decides: bool) -> list[h2load.Load]:
        return [h2load.Load(f"http://127.0.0.1:{port}{path}", headers=(header,),
                            status="2xx" if allowed or not decides else "4xx") for path, allowed in REQUESTS]

    with contextlib.ExitStack() as stack:
        scopesvc_port, noop_port = servers.free_port(), servers.free_port()
        scopesvc = stack.enter_context(servers.running(
            servers.scopesvc_cmd(scopesvc_port, servers.free_ports(1), cache_size=0), scopesvc_port,
            workdir / "scopesvc.log"))
        noop = stack.enter_context(servers.running([sys.executable, "-m", "bench.noop_server", str(noop_port), "64"],
                                                   noop_port, workdir / "noop.log"))
        targets = []
        for name, kind, authz, decides in (
                (ALONE, "plain", None, False),
                (JWT, "jwt", None, False),
                (EXPORTED, "exported", None, True),
                (EXT_AUTHZ, "ext_authz", (scopesvc_port, scopesvc.pid), True),
                (NOOP, "ext_authz", (noop_port, noop.pid), False)):
            port = servers.free_port()
            path = workdir / f"{kind}-{port}.yaml"
            path.write_text(yaml.safe_dump(config(kind, port, catalog, options, authz[0] if authz else 0)))
            cmd = [str(binary), "-c", str(path), "--disable-hot-restart", "--concurrency", "1", "--log-level", "warn",
                   "--base-id", str(port)]
            proxy = stack.enter_context(servers.running(cmd, port, workdir / f"{kind}-{port}.log"))
            pids = (proxy.pid, authz[1]) if authz else (proxy.pid,)
            targets.append(rounds.Target(name, loads(port, decides), pids=pids))
        measured = rounds.measure(targets, rounds=cfg.rounds, seconds=cfg.seconds, rate_seconds=cfg.rate_seconds,
                                  rates=cfg.rates, in_flight=IN_FLIGHT)
    note = (f"{tools.version([str(binary), '--version']).strip()} with one worker (`--concurrency 1`) answering 200 "
            f"itself; {IN_FLIGHT} requests in flight at saturation; GET " + ", ".join(p for p, _ in REQUESTS) +
            f" with one RS256 token ({SCOPES}); scopesvc one process, cache off.")
    return {"note": note, "runs": measured}
