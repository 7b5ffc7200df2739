"""docs/deploy.md's sidecar recipe: the pod patch is a valid Kubernetes 1.30 Deployment once applied
to a gateway, its args are `scopesvc serve` flags, and a real Envoy with the documented cluster
authorizes requests through scopesvc over the Unix socket alone."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from scopesvc.cli import build_parser
from scopesvc.ops.config import resolve

from .deploy_helpers import ROOT, tool
from .e2e.conftest import Keys, Process, Upstream, free_port, send, start_envoy
from .ops_helpers import wait_for

DOC = ROOT / "docs" / "deploy.md"
GATEWAY = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "my-gateway"},
    "spec": {"selector": {"matchLabels": {"app": "gw"}}, "template": {
        "metadata": {"labels": {"app": "gw"}},
        "spec": {"containers": [{"name": "gateway", "image": "envoyproxy/envoy:v1.36.2"}]}}},
}


def doc_block(first_line: str) -> Any:
    """The YAML code block of docs/deploy.md whose first line is `first_line`."""
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)
    found = [b for b in blocks if b.startswith(first_line)]
    assert len(found) == 1, f"docs/deploy.md: no single yaml block starting {first_line!r}"
    return yaml.safe_load(found[0])


def merge(base: Any, patch: Any) -> Any:
    """A strategic merge patch as kubectl applies it to a pod template: lists of named items merge by name."""
    if isinstance(base, dict) and isinstance(patch, dict):
        return {k: merge(base[k], v) if k in base else v for k, v in patch.items()} | \
            {k: v for k, v in base.items() if k not in patch}
    if isinstance(base, list) and isinstance(patch, list) and all(isinstance(i, dict) and "name" in i
                                                                   for i in base + patch):
        merged = {i["name"]: i for i in base}
        for item in patch:
            merged[item["name"]] = merge(merged[item["name"]], item) if item["name"] in merged else item
        return list(merged.values())
    return patch


@pytest.fixture(scope="module")
def patched() -> dict:
    return merge(copy.deepcopy(GATEWAY), doc_block("# scopesvc-sidecar.yaml"))


def sidecar_args(patched: dict) -> list[str]:
    containers = {c["name"]: c for c in patched["spec"]["template"]["spec"]["containers"]}
    return containers["scopesvc"]["args"]


def test_patched_gateway_is_valid_kubernetes(patched, tmp_path):
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(patched))
    result = subprocess.run([tool("kubernetes-validate"), "--strict", "-k", "1.30.0", str(path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "passed for resource deployment/my-gateway" in result.stdout, \
        result.stdout + result.stderr


def test_sidecar_shares_the_socket_directory(patched):
    spec = patched["spec"]["template"]["spec"]
    containers = {c["name"]: c for c in spec["containers"]}
    assert set(containers) == {"gateway", "scopesvc"}
    config = resolve(build_parser().parse_args(sidecar_args(patched)), environ={})
    for container in containers.values():
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert mounts["scopesvc-socket"] == str(Path(config.uds).parent), container["name"]
    assert "emptyDir" in next(v for v in spec["volumes"] if v["name"] == "scopesvc-socket")
    scopesvc = containers["scopesvc"]
    assert scopesvc["readinessProbe"]["grpc"]["port"] == scopesvc["livenessProbe"]["grpc"]["port"] == config.port
    assert scopesvc["securityContext"]["readOnlyRootFilesystem"] is True
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] == 10001
    envoy_cluster = doc_block("# envoy cluster")[0]
    endpoint = envoy_cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert endpoint["address"]["pipe"]["path"] == config.uds


@pytest.mark.e2e
def test_envoy_authorizes_over_the_socket(patched, tmp_path):
    """scopesvc with the documented args (loopback ports, the socket in a temp dir) behind a real Envoy
    whose only route to scopesvc is the documented pipe cluster."""
    socket = tmp_path / "scopesvc.sock"
    doc_socket = resolve(build_parser().parse_args(sidecar_args(patched)), environ={}).uds
    port = free_port()
    loopback = {"--host": "127.0.0.1", "--metrics-host": "127.0.0.1", "--port": str(port), "--metrics-port": "0",
                "--uds": str(socket)}
    args = [f"{flag}={loopback[flag]}" if flag in loopback else arg
            for arg in sidecar_args(patched) for flag in [arg.split("=", 1)[0]]]
    keys, upstream = Keys(), Upstream()
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    (tmp_path / "envoy").mkdir()
    scopesvc = Process([sys.executable, "-m", "scopesvc", *args, "--grace=0.5"], tmp_path / "scopesvc.log", [port])
    envoy = None
    try:
        wait_for(socket.exists)
        cluster = doc_block("# envoy cluster")[0]
        endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
        assert endpoint["address"]["pipe"]["path"] == doc_socket
        endpoint["address"]["pipe"]["path"] = str(socket)

        def use_socket(config: dict) -> None:
            clusters = config["static_resources"]["clusters"]
            clusters[:] = [cluster if c["name"] == "scopesvc" else c for c in clusters]

        envoy, envoy_port = start_envoy(tmp_path / "envoy", port, upstream.port, keys, edit=use_socket)
        bearer = {"authorization": f"Bearer {keys.mint(scope='users:read')}"}
        allowed = send(envoy_port, "GET", "/users/me", bearer)
        assert allowed.status == 200 and allowed.json()["upstream"] == "reached"
        assert allowed.json()["endpoint"] == "GET /users/me"
        denied = send(envoy_port, "GET", "/scheduled_events/AB12", bearer)
        assert denied.status == 403 and denied.json()["required_scopes"] == ["scheduled_events:read"]
        assert len(upstream.seen) == 1
        scopesvc.stop()  # no scopesvc: Envoy fails closed
        assert send(envoy_port, "GET", "/users/me", bearer).status >= 403
        assert len(upstream.seen) == 1
    finally:
        if envoy is not None:
            envoy.stop()
        scopesvc.stop()
        upstream.shutdown()
        upstream.server_close()
