"""A request with no token goes through the one Decider: counted, logged and shadowed like every other."""

from __future__ import annotations

import json

import grpc
from envoy.service.auth.v3 import external_auth_pb2_grpc as authz_grpc
from google.rpc import code_pb2

from tests.test_gateway_ext_authz import check_request, headers_of
from tests.test_gateway_forward_auth import ask, nginx_style

from .helpers import decision_records
from .ops_helpers import free_port, running, sample, scrape

CHALLENGE = 'Bearer realm="calendly-api-v2"'


def test_no_token_is_decided_counted_and_logged(tmp_path) -> None:
    log = tmp_path / "decisions.jsonl"
    with running(metrics_port=free_port(), forward_auth_port=free_port(), decision_log=str(log)) as (server, _):
        with grpc.insecure_channel(server.address) as channel:
            response = authz_grpc.AuthorizationStub(channel).Check(check_request("GET", "/users/me"))
        assert response.status.code == code_pb2.UNAUTHENTICATED
        denied = response.denied_response
        assert denied.status.code == 401
        assert headers_of(denied.headers)["www-authenticate"] == CHALLENGE
        assert json.loads(denied.body)["title"] == "Unauthorized"

        reply = ask(server, nginx_style("GET", "/users/me", None))
        assert reply.status == 401 and reply.getheader("www-authenticate") == CHALLENGE
        assert json.loads(reply.body)["title"] == "Unauthorized"  # type: ignore[attr-defined]

        text = scrape(server.server.metrics_port)
        for rpc in ("ext_authz", "forward_auth"):
            assert sample(text, "scopesvc_decisions_total", rpc=rpc, result="deny", reason="MISSING_TOKEN") == 1
    records = decision_records(log)
    assert [(r["rpc"], r["reason"], r["allowed"]) for r in records] == [
        ("ext_authz", "MISSING_TOKEN", False), ("forward_auth", "MISSING_TOKEN", False)]


def test_dry_run_shadows_a_request_with_no_token() -> None:
    with running(dry_run=True, metrics_port=free_port(), forward_auth_port=free_port()) as (server, _):
        with grpc.insecure_channel(server.address) as channel:
            response = authz_grpc.AuthorizationStub(channel).Check(check_request("GET", "/users/me"))
        assert response.status.code == code_pb2.OK
        assert ask(server, nginx_style("GET", "/users/me", None)).status == 200
        text = scrape(server.server.metrics_port)
        assert sample(text, "scopesvc_dry_run_allowed_total", rpc="ext_authz") == 1
        assert sample(text, "scopesvc_dry_run_allowed_total", rpc="forward_auth") == 1
