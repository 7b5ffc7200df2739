"""The peer: Cerbos serving CheckResources with a policy generated from the same catalog.

One resource policy (kind `api`) with one action per endpoint (its `METHOD /template` key). A
scoped token is a principal with role `scoped` and attribute `scopes`; each endpoint's rule
allows it when, for every scope the endpoint requires, the principal holds a scope that grants
it (the scope itself or one implying it, so `X:write` grants `X:read`). A legacy token is role
`legacy`, allowed every action. Cerbos is asked the same (endpoint, token) pairs as scopesvc;
it is handed the endpoint's action, so it does no path matching.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml

from scopesvc.policy import Catalog
from scopesvc.policy.model import TokenFormat

from . import protos
from .workload import Case, grpc_frame

KIND = "api"
METHOD_PATH = "/cerbos.svc.v1.CerbosService/CheckResources"


def policy(catalog: Catalog) -> dict[str, Any]:
    """The Cerbos resource policy equivalent to `catalog`'s endpoint rules."""
    universe = catalog.universe
    granted_by = {
        scope: [other for other in universe.names if universe.effective([other]) & universe.bit(scope)]
        for scope in universe.names
    }
    rules: list[dict[str, Any]] = [
        {"name": "legacy-full-access", "actions": ["*"], "effect": "EFFECT_ALLOW", "roles": ["legacy"]}
    ]
    for endpoint in catalog.endpoints:
        rule: dict[str, Any] = {"actions": [endpoint.key], "effect": "EFFECT_ALLOW", "roles": ["scoped"]}
        if endpoint.scopes:
            rule["condition"] = {"match": {"expr": " && ".join(
                f"{json.dumps(granted_by[scope])}.exists(g, g in P.attr.scopes)" for scope in endpoint.scopes
            )}}
        rules.append(rule)
    return {
        "apiVersion": "api.cerbos.dev/v1",
        "resourcePolicy": {"version": "default", "resource": KIND, "rules": rules},
    }


def write_policy(catalog: Catalog, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "api.yaml"
    path.write_text(yaml.safe_dump(policy(catalog), sort_keys=False))
    return path


def request(case: Case) -> Any:
    """The CheckResourcesRequest asking Cerbos what `case` asks scopesvc."""
    m = protos.cerbos()
    legacy = case.token.format == TokenFormat.LEGACY
    principal = m.Principal(id="app", roles=["legacy" if legacy else "scoped"])
    principal.attr["scopes"].list_value.extend(list(case.token.scopes))
    return m.CheckResourcesRequest(
        request_id="bench",
        principal=principal,
        resources=[m.CheckResourcesRequest.ResourceEntry(
            actions=[case.endpoint.key], resource=m.Resource(kind=KIND, id="r1"))],
    )


def body(case: Case) -> bytes:
    return grpc_frame(request(case).SerializeToString())


def allowed(response_bytes: bytes, case: Case) -> bool:
    m = protos.cerbos()
    response = m.CheckResourcesResponse.FromString(response_bytes)
    return response.results[0].actions[case.endpoint.key] == m.EFFECT_ALLOW


def command(binary: Path, workdir: Path, catalog: Catalog, grpc_port: int, http_port: int) -> tuple[list[str], dict[str, str]]:
    """The `cerbos server` command (and environment) serving the generated policy on loopback, no audit log."""
    policies = workdir / "policies"
    write_policy(catalog, policies)
    config = workdir / "config.yaml"
    config.write_text(yaml.safe_dump({
        "server": {"httpListenAddr": f"127.0.0.1:{http_port}", "grpcListenAddr": f"127.0.0.1:{grpc_port}"},
        "storage": {"driver": "disk", "disk": {"directory": str(policies), "watchForChanges": False}},
        "audit": {"enabled": False},
        "telemetry": {"disabled": True},
    }))
    return [str(binary), "server", f"--config={config}", "--log-level=warn"], dict(os.environ, CERBOS_NO_TELEMETRY="1")
