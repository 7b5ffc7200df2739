"""A real OpenID Provider (npm oidc-provider) issuing tokens that scopesvc verifies end to end.

scopesvc finds the provider by OpenID Connect discovery, verifies its RFC 9068 JWT access
tokens (RS256 and ES256) with the keys it publishes, introspects its opaque tokens (RFC 7662,
client_secret_basic), and answers through gRPC, real Envoy (ext_authz, docs/gateways/envoy-bearer.yaml),
real NGINX (auth_request, nginx-bearer.conf) and real Traefik (ForwardAuth, traefik-bearer.yaml).
"""

from __future__ import annotations

import base64
import json
import shutil
import signal
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from scopesvc.v1 import scopesvc_pb2 as pb
from scopesvc.v1 import scopesvc_pb2_grpc as pb_grpc

from ..deploy_helpers import TOOLS
from .conftest import (
    DOCS,
    Process,
    Scopesvc,
    Upstream,
    _missing,
    envoy_binary,
    free_port,
    render,
    send,
    start_nginx,
    start_scopesvc,
    start_traefik,
)

HERE = Path(__file__).resolve().parent
API, ES_API, OPAQUE_API = "https://api.example.test", "https://es.example.test", "https://opaque.example.test"
APP_SECRET, SCOPESVC_SECRET = "app-secret-for-tests", "scopesvc-secret-for-tests"
pytestmark = pytest.mark.e2e


@dataclass
class OpenIdProvider:
    process: Process
    issuer: str

    def token(self, resource: str, scope: str = "users:read") -> str:
        """An access token for `resource` by the client-credentials grant (client_secret_basic)."""
        body = urllib.parse.urlencode({"grant_type": "client_credentials", "resource": resource,
                                       "scope": scope}).encode()
        request = urllib.request.Request(f"{self.issuer}/token", data=body, headers={
            "authorization": "Basic " + base64.b64encode(f"app:{APP_SECRET}".encode()).decode()})
        with urllib.request.urlopen(request, timeout=10) as response:  # loopback only
            return str(json.load(response)["access_token"])

    def rotate(self) -> None:
        """New signing keys first in the JWKS (the old ones stay published)."""
        self.process.popen.send_signal(signal.SIGUSR2)


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenIdProvider]:
    module = TOOLS / "oidc-provider" / "node_modules" / "oidc-provider"
    node = shutil.which("node")
    if node is None or not (module / "package.json").exists():
        _missing("oidc-provider (npm, under Node.js)")
    port = free_port()
    tmp = tmp_path_factory.mktemp("oidc")
    env = {"OIDC_PROVIDER": str(module), "PORT": str(port), "APP_SECRET": APP_SECRET,
           "SCOPESVC_SECRET": SCOPESVC_SECRET, "NODE_NO_WARNINGS": "1"}
    process = Process([node, str(HERE / "oidc" / "provider.mjs")], tmp / "provider.log", [port], env=env)
    yield OpenIdProvider(process, f"http://127.0.0.1:{port}")
    process.stop()


@pytest.fixture(scope="module")
def scopesvc(provider: OpenIdProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scopesvc]:
    tmp = tmp_path_factory.mktemp("scopesvc-bearer")
    secret = tmp / "introspection-secret"
    secret.write_text(SCOPESVC_SECRET)
    running = start_scopesvc(
        tmp, "--scope-source", "bearer", "--jwt-issuer", provider.issuer,
        "--jwt-audience", f"{API} {ES_API} {OPAQUE_API}", "--jwt-require-typ",
        "--introspection-endpoint", "discover", "--introspection-client-id", "scopesvc",
        "--introspection-client-secret-file", str(secret), "--jwks-refresh-min", "1")
    yield running
    running.process.stop()


@pytest.fixture(scope="module")
def stub(scopesvc: Scopesvc) -> Iterator[pb_grpc.ScopeServiceStub]:
    with grpc.insecure_channel(f"127.0.0.1:{scopesvc.grpc_port}") as channel:
        grpc.channel_ready_future(channel).result(timeout=10)
        yield pb_grpc.ScopeServiceStub(channel)


def check(stub: pb_grpc.ScopeServiceStub, bearer: str, path: str = "/users/me") -> pb.CheckResponse:
    return stub.Check(pb.CheckRequest(bearer_token=bearer, method="GET", path=path), timeout=10)


def test_grpc_verifies_and_introspects_the_providers_tokens(provider: OpenIdProvider, stub: Any) -> None:
    for resource in (API, ES_API, OPAQUE_API):
        allowed = check(stub, provider.token(resource))
        assert allowed.allowed and allowed.reason == pb.REASON_ALLOWED, (resource, allowed)
        denied = check(stub, provider.token(resource, "groups:read"))
        assert denied.reason == pb.REASON_INSUFFICIENT_SCOPE and denied.deny.http_status == 403
    jwt_token = provider.token(API)
    head, payload, signature = jwt_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged = base64.urlsafe_b64encode(json.dumps(claims | {"scope": "users:read groups:read"}).encode())
    tampered = check(stub, f"{head}.{forged.rstrip(b'=').decode()}.{signature}")
    assert tampered.reason == pb.REASON_INVALID_TOKEN and tampered.deny.http_status == 401
    unknown_opaque = check(stub, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFG")
    assert unknown_opaque.reason == pb.REASON_INVALID_TOKEN


def start_envoy_bearer(tmp: Path, scopesvc_port: int, upstream_port: int) -> tuple[Process, int]:
    port = free_port()
    config = tmp / "envoy.yaml"
    config.write_text(render(DOCS / "envoy-bearer.yaml", {
        "ENVOY_PORT": port, "SCOPESVC_PORT": scopesvc_port, "UPSTREAM_PORT": upstream_port}))
    argv = [envoy_binary(), "-c", str(config), "--disable-hot-restart", "--concurrency", "1", "--log-level", "warn"]
    return Process(argv, tmp / "envoy.log", [port]), port


@pytest.fixture(scope="module")
def gateways(scopesvc: Scopesvc, upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp("bearer-gateways")
    started: dict[str, tuple[Process, int]] = {}
    try:
        for name, start in {
            "envoy": lambda where: start_envoy_bearer(where, scopesvc.grpc_port, upstream.port),
            "nginx": lambda where: start_nginx(where, scopesvc.forward_auth_port, upstream.port,
                                               template="nginx-bearer.conf"),
            "traefik": lambda where: start_traefik(where, scopesvc.forward_auth_port, upstream.port,
                                                   template="traefik-bearer.yaml"),
        }.items():
            (tmp / name).mkdir()
            started[name] = start(tmp / name)
        yield {name: port for name, (_process, port) in started.items()}
    finally:
        for process, _port in started.values():
            process.stop()


@pytest.mark.parametrize("gateway", ["envoy", "nginx", "traefik"])
def test_gateway_with_the_bearer_source(gateway: str, gateways: dict[str, int], provider: OpenIdProvider) -> None:
    port = gateways[gateway]
    for resource in (API, ES_API, OPAQUE_API):
        reply = send(port, "GET", "/users/me", {"authorization": f"Bearer {provider.token(resource)}"})
        assert reply.status == 200 and json.loads(reply.body)["upstream"] == "reached", (resource, reply)
    insufficient = send(port, "GET", "/users/me",
                        {"authorization": f"Bearer {provider.token(API, 'groups:read')}"})
    assert insufficient.status == 403
    assert 'error="insufficient_scope"' in insufficient.headers.get("www-authenticate", "")
    for authorization in ("Bearer not-a-real-token", "Bearer a.b.c"):
        invalid = send(port, "GET", "/users/me", {"authorization": authorization})
        assert invalid.status == 401
        assert invalid.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    missing = send(port, "GET", "/users/me", {"x-scopesvc-scopes": "users:read"})  # no header is trusted
    assert missing.status == 401
    in_query = send(port, "GET", f"/users/me?access_token={provider.token(API)}")  # RFC 6750 2.1 only
    assert in_query.status == 401
    rewritten = send(port, "GET", "/users/me", {"authorization": f"Bearer {provider.token(API)}",
                                                "x-http-method-override": "DELETE"})
    assert rewritten.status in (400, 403)  # scopesvc sees the rewrite header through every gateway


def test_key_rotation_during_load_fails_no_request(provider: OpenIdProvider, stub: Any) -> None:
    old = [provider.token(API, "users:read"), provider.token(ES_API, "users:read")]
    time.sleep(1.1)  # past --jwks-refresh-min since scopesvc's last fetch: the new kid is fetched at first sight
    failures: list[Any] = []
    stop = threading.Event()
    tokens = list(old)

    def load() -> None:
        i = 0
        while not stop.is_set():
            bearer = tokens[i % len(tokens)]
            i += 1
            try:
                response = check(stub, bearer, f"/users/me?n={i}")
                if not response.allowed:
                    failures.append(response)
            except grpc.RpcError as exc:
                failures.append(exc)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.5)
        provider.rotate()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # wait until the provider signs with the new key
            fresh = provider.token(API)
            if json.loads(base64.urlsafe_b64decode(fresh.split(".")[0] + "==")).get("kid") != "rsa-1":
                break
            time.sleep(0.1)
        tokens.extend([fresh, provider.token(ES_API)])
        time.sleep(1.0)
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
    assert failures == []
    assert json.loads(base64.urlsafe_b64decode(fresh.split(".")[0] + "=="))["kid"] == "rsa-2"
