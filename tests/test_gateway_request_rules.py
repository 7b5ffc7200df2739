"""A gateway request is decided as the upstream will receive it: route names keep the method, rewrite headers deny.

The rules are the engine's (`Engine.gateway_target`), applied by the Decider for every gateway
front end; tests/e2e proves them through real Envoy, NGINX and Traefik.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from envoy.service.auth.v3 import external_auth_pb2_grpc as authz_grpc

from scopesvc.policy import Decision, Engine, Reason, Token, compile_catalog
from scopesvc.policy.model import REWRITE_HEADERS
from tests.conftest import RunningServer
from tests.helpers import SCOPED_TIME
from tests.test_gateway_ext_authz import check_request
from tests.test_gateway_forward_auth import ask, nginx_style

from .helpers import decision_records
from .ops_helpers import free_port, running, sample, scrape, wait_for

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
TOKEN = Token(("users:read",))


def catalog(head_as_get: bool) -> Engine:
    return Engine(compile_catalog({
        "format": "scopesvc.catalog/v1", "name": "route-test", "paths": {"head_as_get": head_as_get},
        "scopes": [{"name": "users:read"}, {"name": "users:write"}],
        "endpoints": [{"method": method, "path": "/users/me", "scopes": ["users:read" if method == "GET" else "users:write"]}
                      for method in ("GET", "PATCH")],
    }))


@pytest.mark.parametrize("method", METHODS)
def test_a_path_only_route_name_keeps_the_requests_method(method: str) -> None:
    assert catalog(True).gateway_target(TOKEN, method, "/profile", "/users/me") == "/users/me"
    assert catalog(True).gateway_target(TOKEN, method, "/profile", "  /users/me ") == "/users/me"


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("head_as_get", [True, False])
def test_a_method_route_name_is_honoured_only_for_its_method(method: str, head_as_get: bool) -> None:
    engine = catalog(head_as_get)
    target = engine.gateway_target(TOKEN, method, "/profile", "GET /users/me")
    if method == "GET" or (method == "HEAD" and head_as_get):
        assert target == "/users/me"
        assert engine.check(TOKEN, method, target).allowed  # what is decided is the request's own method
        return
    assert isinstance(target, Decision)
    assert (target.allowed, target.reason, target.http_status) == (False, Reason.ROUTE_METHOD_MISMATCH, 403)
    assert json.loads(target.body) == {"title": "Forbidden", "message": target.message}
    assert "GET /users/me" in target.message and method in target.message


def test_a_request_without_a_token_is_asked_for_one_first() -> None:
    engine = catalog(True)
    target = engine.gateway_target(None, "PATCH", "/profile", "GET /users/me")
    assert target == "/users/me" and engine.check(None, "PATCH", target).reason == Reason.MISSING_TOKEN


def test_no_route_and_no_rewrite_header_is_the_requests_own_path() -> None:
    assert catalog(True).gateway_target(TOKEN, "PATCH", "/users/me", "", {"accept": "x"}) == "/users/me"


@pytest.mark.parametrize("header", REWRITE_HEADERS)
def test_a_rewrite_header_is_denied_whatever_the_route(header: str) -> None:
    engine = catalog(True)
    # CGI-style servers (PHP, WSGI) read `_` as `-`, in any case: every spelling is the same header.
    spellings = (header, header.upper(), header.replace("-", "_"), header.replace("-", "_", 1).title())
    for route in ("", "/users/me", "GET /users/me"):
        for spelling in spellings:
            target = engine.gateway_target(TOKEN, "GET", "/users/me", route, {"accept": "x", spelling: "DELETE"})
            assert isinstance(target, Decision)
            assert (target.allowed, target.reason, target.http_status) == (False, Reason.REWRITE_HEADER, 400)
            assert spelling in target.message and json.loads(target.body)["title"] == "Bad request"


def test_similar_headers_that_change_nothing_are_not_rewrite_headers() -> None:
    headers = {"x-forwarded-uri": "/a", "x-original-uri": "/a", "x-http-method-overrides": "x", "method": "GET"}
    assert catalog(True).gateway_target(TOKEN, "GET", "/users/me", "", headers) == "/users/me"


# -- through the real server: ext_authz and forward-auth, counted and logged by the Decider ----------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, Path]]:
    log = tmp_path_factory.mktemp("rules") / "decisions.jsonl"
    with running(metrics_port=free_port(), forward_auth_port=free_port(), decision_log=str(log)) as (server, _stub):
        yield server, log


def test_ext_authz_route_method_mismatch_is_a_counted_and_logged_deny(served: tuple[RunningServer, Path]) -> None:
    server, log = served
    port = server.server.metrics_port
    before = scrape(port)
    with grpc.insecure_channel(server.address) as channel:
        stub = authz_grpc.AuthorizationStub(channel)
        payload = {"scope": "users:read", "iat": SCOPED_TIME}
        named = {"scopesvc_endpoint": "GET /users/me"}
        patch = stub.Check(check_request("PATCH", "/profile", payload, extensions=named))
        get = stub.Check(check_request("GET", "/profile", payload, extensions=named))
        head = stub.Check(check_request("HEAD", "/profile", payload, extensions=named))
        path_only = stub.Check(check_request("PATCH", "/profile", payload, extensions={"scopesvc_endpoint": "/users/me"}))
        override = stub.Check(check_request("GET", "/users/me", payload, headers={"x-http-method-override": "DELETE"}))
    assert patch.denied_response.status.code == 403
    assert json.loads(patch.denied_response.body)["message"].startswith("this route is the endpoint GET /users/me")
    assert get.HasField("ok_response") and head.HasField("ok_response")
    assert path_only.denied_response.status.code == 403  # decided as PATCH /users/me: no such endpoint
    assert override.denied_response.status.code == 400
    assert "x-http-method-override" in json.loads(override.denied_response.body)["message"]

    def delta(reason: str) -> float:
        return sample(scrape(port), "scopesvc_decisions_total", rpc="ext_authz", result="deny", reason=reason) - sample(
            before, "scopesvc_decisions_total", rpc="ext_authz", result="deny", reason=reason)

    wait_for(lambda: delta("ROUTE_METHOD_MISMATCH") == 1 and delta("REWRITE_HEADER") == 1
             and delta("UNKNOWN_ENDPOINT") == 1)
    wait_for(lambda: '"ROUTE_METHOD_MISMATCH"' in log.read_text())
    records = decision_records(log)
    mismatch = next(r for r in records if r["reason"] == "ROUTE_METHOD_MISMATCH")
    assert (mismatch["method"], mismatch["path"], mismatch["endpoint"]) == ("PATCH", "/profile", "")
    unknown = next(r for r in records if r["reason"] == "UNKNOWN_ENDPOINT")
    assert (unknown["method"], unknown["path"]) == ("PATCH", "/profile")


@pytest.mark.parametrize("header", REWRITE_HEADERS)
def test_forward_auth_denies_a_rewrite_header(served: tuple[RunningServer, Path], header: str) -> None:
    server, _log = served
    allowed = nginx_style("GET", "/users/me", "users:read")
    assert ask(server, allowed).status == 200
    response = ask(server, allowed | {header.title(): "DELETE"})
    assert response.status == 403  # auth_request understands only 2xx, 401 and 403: the 400 is sent as 403
    assert header in json.loads(response.body)["message"].lower()  # type: ignore[attr-defined]
