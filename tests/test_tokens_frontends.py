"""Bearer tokens through every front end of a real server: gRPC Check/CheckBatch, ext_authz, forward-auth.

Keys are generated here and served by a real HTTP server on loopback (tests/token_helpers.py);
scopesvc discovers them through OpenID Connect discovery like it would at a real issuer.
"""

from __future__ import annotations

import http.client
import socket
import subprocess
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from envoy.service.auth.v3 import external_auth_pb2_grpc as authz_grpc
from google.rpc import code_pb2
from prometheus_client import generate_latest

from scopesvc.server.app import ServerConfig
from scopesvc.v1 import scopesvc_pb2 as pb
from scopesvc.v1 import scopesvc_pb2_grpc as pb_grpc
from tests.conftest import RunningServer
from tests.helpers import bad_request_field, token
from tests.ops_helpers import promtool
from tests.test_gateway_ext_authz import check_request

from .helpers import decision_records
from .token_helpers import AUDIENCE, KeyServer, SigningKey, claims

ENDPOINT = ("GET", "/users/me")  # needs users:read


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def running(issuer: KeyServer) -> Iterator[RunningServer]:
    server = RunningServer(ServerConfig(
        host="127.0.0.1", port=0, grace=0.5, scope_source="bearer", forward_auth_port=free_port(),
        jwt_issuer=issuer.issuer, jwt_audience=AUDIENCE, decision_log="", jwks_timeout=2.0))
    yield server
    server.close()


@pytest.fixture(scope="module")
def stub(running: RunningServer) -> Iterator[pb_grpc.ScopeServiceStub]:
    with grpc.insecure_channel(running.address) as channel:
        yield pb_grpc.ScopeServiceStub(channel)


def check(stub: pb_grpc.ScopeServiceStub, bearer: str, method: str = "GET", path: str = "/users/me") -> Any:
    return stub.Check(pb.CheckRequest(bearer_token=bearer, method=method, path=path))


def test_grpc_check_with_a_valid_bearer_token(stub: Any, issuer: KeyServer, key: SigningKey) -> None:
    bearer = key.sign(claims(issuer.issuer, scope="users:read"))
    first, again = check(stub, bearer), check(stub, bearer)
    assert first.allowed and first.reason == pb.REASON_ALLOWED and again == first
    denied = check(stub, key.sign(claims(issuer.issuer, scope="groups:read")))
    assert not denied.allowed and denied.reason == pb.REASON_INSUFFICIENT_SCOPE and denied.deny.http_status == 403


@pytest.mark.parametrize("make", [
    lambda i, k: k.sign(claims(i.issuer, lifetime=-300)),
    lambda i, k: k.sign(claims(i.issuer, aud="https://elsewhere")),
    lambda i, k: k.sign(claims(i.issuer), kid="unknown"),
    lambda i, k: "garbage.garbage.garbage",
    lambda i, k: "opaque-inactive",
], ids=["expired", "audience", "kid", "garbage", "inactive-without-introspection"])
def test_grpc_invalid_bearer_token_is_a_401_decision(stub: Any, issuer: KeyServer, key: SigningKey, make: Any) -> None:
    response = check(stub, make(issuer, key))
    assert not response.allowed and response.reason == pb.REASON_INVALID_TOKEN
    assert response.deny.http_status == 401
    assert response.deny.www_authenticate.startswith('Bearer error="invalid_token", error_description="')


def test_grpc_token_and_bearer_token_together_is_invalid_argument(stub: Any) -> None:
    with pytest.raises(grpc.RpcError) as error:
        stub.Check(pb.CheckRequest(token=token("users:read"), bearer_token="x.y.z", method="GET", path="/users/me"))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_field(error.value) == "bearer_token"


def test_grpc_check_batch_verifies_each_check(stub: Any, issuer: KeyServer, key: SigningKey) -> None:
    response = stub.CheckBatch(pb.CheckBatchRequest(checks=[
        pb.CheckRequest(bearer_token=key.sign(claims(issuer.issuer)), method="GET", path="/users/me"),
        pb.CheckRequest(bearer_token=key.sign(claims(issuer.issuer, lifetime=-300)), method="GET", path="/users/me"),
        pb.CheckRequest(token=token("users:read"), method="GET", path="/users/me"),
    ]))
    assert [r.reason for r in response.results] == [pb.REASON_ALLOWED, pb.REASON_INVALID_TOKEN, pb.REASON_ALLOWED]


def test_ext_authz_bearer_source(running: RunningServer, issuer: KeyServer, key: SigningKey) -> None:
    with grpc.insecure_channel(running.address) as channel:
        ext = authz_grpc.AuthorizationStub(channel)
        good = ext.Check(check_request(*ENDPOINT, headers={"authorization": f"Bearer {key.sign(claims(issuer.issuer))}"}))
        assert good.status.code == code_pb2.OK
        expired = key.sign(claims(issuer.issuer, lifetime=-300))
        for headers in ({"authorization": f"Bearer {expired}"}, {"authorization": "Bearer not a token"}):
            bad = ext.Check(check_request(*ENDPOINT, headers=headers))
            assert bad.status.code == code_pb2.UNAUTHENTICATED and bad.denied_response.status.code == 401
            challenge = {h.header.key: h.header.value for h in bad.denied_response.headers}["www-authenticate"]
            assert challenge.startswith('Bearer error="invalid_token"')
        for headers in ({}, {"authorization": "Basic dXNlcjpwdw=="}):  # no bearer credential at all
            missing = ext.Check(check_request(*ENDPOINT, headers=headers))
            assert missing.denied_response.status.code == 401
        # A trusted-looking scope header is not trusted in bearer mode.
        forged = ext.Check(check_request(*ENDPOINT, headers={"x-scopesvc-scopes": "users:read"}))
        assert forged.denied_response.status.code == 401
        insufficient = ext.Check(check_request(*ENDPOINT, headers={
            "authorization": f"Bearer {key.sign(claims(issuer.issuer, scope='groups:read'))}"}))
        assert insufficient.denied_response.status.code == 403


def ask(running: RunningServer, authorization: str | None) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", running.server.forward_auth.port, timeout=10)
    headers = {"X-Original-Method": "GET", "X-Original-URI": "/users/me"}
    if authorization is not None:
        headers["Authorization"] = authorization
    connection.request("GET", "/auth", headers=headers)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def test_forward_auth_bearer_source(running: RunningServer, issuer: KeyServer, key: SigningKey) -> None:
    assert ask(running, f"Bearer {key.sign(claims(issuer.issuer))}").status == 200
    assert ask(running, f"bearer {key.sign(claims(issuer.issuer, jti='2'))}").status == 200  # scheme is case-insensitive
    expired = ask(running, f"Bearer {key.sign(claims(issuer.issuer, lifetime=-300))}")
    assert expired.status == 401
    assert expired.getheader("www-authenticate") == (
        'Bearer error="invalid_token", error_description="the access token has expired"')
    assert ask(running, None).status == 401
    assert ask(running, f"Bearer {key.sign(claims(issuer.issuer, scope='groups:read'))}").status == 403


def test_key_source_outage_is_unavailable_everywhere(issuer: KeyServer, key: SigningKey) -> None:
    server = RunningServer(ServerConfig(
        host="127.0.0.1", port=0, grace=0.5, scope_source="bearer", forward_auth_port=free_port(),
        jwt_issuer="http://127.0.0.1:9", jwt_audience=AUDIENCE, jwks_timeout=1.0, metrics_port=0))
    try:
        bearer = key.sign(claims("http://127.0.0.1:9"))
        with grpc.insecure_channel(server.address) as channel:
            with pytest.raises(grpc.RpcError) as error:
                check(pb_grpc.ScopeServiceStub(channel), bearer)
            assert error.value.code() == grpc.StatusCode.UNAVAILABLE
            with pytest.raises(grpc.RpcError) as error:
                authz_grpc.AuthorizationStub(channel).Check(
                    check_request(*ENDPOINT, headers={"authorization": f"Bearer {bearer}"}))
            assert error.value.code() == grpc.StatusCode.UNAVAILABLE
        assert ask(server, f"Bearer {bearer}").status == 503
    finally:
        server.close()


def test_metrics_and_decision_log_treat_verified_tokens_like_any_decision(
        issuer: KeyServer, key: SigningKey, tmp_path: Any) -> None:
    log = tmp_path / "decisions.jsonl"
    server = RunningServer(ServerConfig(host="127.0.0.1", port=0, grace=0.5, jwt_issuer=issuer.issuer,
                                        jwt_audience=AUDIENCE, decision_log=str(log), dry_run=True))
    try:
        with grpc.insecure_channel(server.address) as channel:
            stub = pb_grpc.ScopeServiceStub(channel)
            expired = check(stub, key.sign(claims(issuer.issuer, lifetime=-300)))
            assert expired.allowed and expired.dry_run and expired.reason == pb.REASON_INVALID_TOKEN
            assert check(stub, key.sign(claims(issuer.issuer, sub="alice"))).allowed
        text = generate_latest(server.server.metrics.registry).decode()
        assert 'scopesvc_decisions_total{reason="INVALID_TOKEN",result="deny",rpc="Check"} 1.0' in text
        assert f'scopesvc_token_verifications_total{{issuer="{issuer.issuer}",result="expired"}} 1.0' in text
        assert f'scopesvc_jwks_fetches_total{{issuer="{issuer.issuer}",result="ok"}} 1.0' in text
        lint = subprocess.run([promtool(), "check", "metrics"], input=text, capture_output=True, text=True,
                              timeout=30, check=False)
        assert lint.returncode == 0, lint.stdout + lint.stderr
    finally:
        server.close()
    records = decision_records(log)
    assert [r["reason"] for r in records] == ["INVALID_TOKEN", "ALLOWED"]
    assert "subject_hash" in records[1] and "client_hash" in records[1]
    assert "alice" not in log.read_text() and "app-1" not in log.read_text()
