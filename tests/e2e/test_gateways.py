"""Requests through a real Envoy (jwt_authn + ext_authz) and a real NGINX (auth_request) to a small upstream."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from scopesvc.policy import Engine, Token
from tests.helpers import LEGACY_TIME

from .conftest import Authenticator, Keys, Reply, Stack, Upstream, send, start_envoy, start_scopesvc, start_stack

pytestmark = pytest.mark.e2e

TRICKY_PATHS = [
    "/users/me/../../scheduled_events/AB12",
    "/users/me/%2e%2e/%2e%2e/scheduled_events/AB12",
    "/users/%2E%2E/scheduled_events/AB12",
    "/scheduled_events%2FAB12",
    "/scheduled_events/AB12%2f..%2f..%2fusers%2fme",
    "//scheduled_events/AB12",
    "/scheduled_events//AB12",
    "/scheduled_events/AB12;x=1",
    "/users/me/..",
]


@dataclass
class Gateway:
    name: str
    port: int
    authorize: Callable[..., dict[str, str]]  # scopes (space-separated) -> request headers carrying them

    def get(self, path: str, scopes: str | None = None, method: str = "GET", **extra: str) -> Reply:
        headers = {} if scopes is None else self.authorize(scopes)
        return send(self.port, method, path, headers | extra, body=b"{}" if method in ("POST", "PUT", "PATCH") else None)


@pytest.fixture(params=["envoy", "nginx", "traefik"])
def gateway(request: pytest.FixtureRequest, stack: Stack, keys: Keys) -> Gateway:
    # Envoy verifies the token itself (jwt_authn); NGINX and Traefik ask the authentication service
    # in front of scopesvc, which sets the scopes header from the verified token.
    return Gateway(request.param, stack.ports[request.param],
                   lambda scopes: {"authorization": f"Bearer {keys.mint(scope=scopes)}"})


def assert_denied_like_engine(reply: Reply, engine: Engine, scopes: str, method: str, path: str) -> None:
    decision = engine.check(Token(tuple(scopes.split())), method, path)
    assert not decision.allowed and decision.http_status == 403
    assert reply.status == 403
    assert [v for k, v in reply.header_list if k.lower() == "www-authenticate"] == [decision.www_authenticate]
    assert reply.headers["content-type"].startswith("application/json")
    assert reply.body.decode() == decision.body


def test_allowed_request_reaches_the_upstream_with_the_endpoint(gateway: Gateway, upstream: Upstream) -> None:
    reply = gateway.get("/scheduled_events/AB12/invitees?count=5", "scheduled_events:read",
                        **{"x-scopesvc-endpoint": "forged by the client"})
    assert reply.reached_upstream, reply
    seen = reply.json()
    assert seen["path"] == "/scheduled_events/AB12/invitees?count=5"
    assert seen["endpoint"] == "GET /scheduled_events/{uuid}/invitees"


def test_missing_scope_is_403_with_challenge_and_body(gateway: Gateway, engine: Engine) -> None:
    reply = gateway.get("/scheduled_events/AB12", "users:read event_types:read")
    assert_denied_like_engine(reply, engine, "users:read event_types:read", "GET", "/scheduled_events/AB12")
    assert reply.json()["required_scopes"] == ["scheduled_events:read"]


def test_write_implies_read_but_not_the_reverse(gateway: Gateway, engine: Engine) -> None:
    assert gateway.get("/scheduled_events/AB12", "scheduled_events:write").reached_upstream
    assert gateway.get("/event_types/AB12", "event_types:write").reached_upstream
    # event_types:read is a real scope and event_types:write a real one it does not grant.
    assert not engine.check(Token(("event_types:read",)), "GET", "/event_types/AB12").unknown_scopes
    reply = gateway.get("/event_types/AB12", "event_types:read", method="PATCH")
    assert_denied_like_engine(reply, engine, "event_types:read", "PATCH", "/event_types/AB12")
    assert reply.json()["required_scopes"] == ["event_types:write"]


def test_no_scopes_at_all_is_401_bearer(gateway: Gateway) -> None:
    reply = gateway.get("/users/me")
    assert reply.status == 401
    assert [v for k, v in reply.header_list if k.lower() == "www-authenticate"] == ['Bearer realm="calendly-api-v2"']
    assert reply.json()["title"] == "Unauthorized"


def test_empty_scopes_are_403(gateway: Gateway) -> None:
    reply = gateway.get("/users/me", "")
    assert reply.status == 403 and not reply.reached_upstream


def test_unknown_endpoint_is_denied(gateway: Gateway, engine: Engine) -> None:
    reply = gateway.get("/admin/users", "users:read")
    decision = engine.check(Token(("users:read",)), "GET", "/admin/users")
    assert reply.status == 403
    assert reply.body.decode() == decision.body


@pytest.mark.parametrize("path", TRICKY_PATHS)
def test_tricky_paths_never_reach_the_upstream(gateway: Gateway, upstream: Upstream, path: str) -> None:
    before = len(upstream.seen)
    reply = gateway.get(path, "users:read")  # users:read may read /users/me, never scheduled events
    assert not reply.reached_upstream
    assert reply.status in (400, 403), reply
    assert len(upstream.seen) == before


@pytest.mark.parametrize("path", TRICKY_PATHS + ["/users/me/./", "/users/me/"])
def test_what_is_decided_is_what_the_upstream_gets(gateway: Gateway, engine: Engine, path: str) -> None:
    # With scopes for both endpoints a tricky path may pass, but only as the endpoint the upstream serves.
    reply = gateway.get(path, "users:read scheduled_events:read")
    if reply.reached_upstream:
        seen = reply.json()
        endpoint = engine.catalog.find_endpoint("GET", seen["path"])
        assert endpoint is not None and seen["endpoint"] == endpoint.key, (path, seen)
    else:
        assert reply.status in (400, 403), reply


# -- Envoy only: verified JWTs ----------------------------------------------------------------


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_envoy_es256_and_scp_list_tokens(stack: Stack, keys: Keys) -> None:
    es256 = send(stack.ports["envoy"], "GET", "/users/me", bearer(keys.mint(alg="ES256", scope="users:read")))
    assert es256.reached_upstream
    scp = send(stack.ports["envoy"], "GET", "/users/me", bearer(keys.mint(scp=["users:read", "event_types:read"])))
    assert scp.reached_upstream


def test_envoy_legacy_token_keeps_full_access(stack: Stack, keys: Keys, engine: Engine) -> None:
    legacy = bearer(keys.mint(issued=LEGACY_TIME))
    assert send(stack.ports["envoy"], "DELETE", "/webhook_subscriptions/AB12", legacy).reached_upstream
    assert send(stack.ports["envoy"], "GET", "/scheduled_events/AB12/invitees", legacy).reached_upstream
    scoped_without_scopes = send(stack.ports["envoy"], "GET", "/users/me", bearer(keys.mint()))
    assert scoped_without_scopes.status == 403
    assert scoped_without_scopes.body.decode() == engine.check(Token(()), "GET", "/users/me").body


def test_envoy_never_trusts_an_unverified_token_or_header(stack: Stack, keys: Keys, upstream: Upstream) -> None:
    before = len(upstream.seen)
    forged = send(stack.ports["envoy"], "GET", "/users/me", bearer(keys.mint(signer=keys.stranger, scope="users:read")))
    assert forged.status == 401  # jwt_authn rejects the signature
    header_only = send(stack.ports["envoy"], "GET", "/users/me", {"x-scopesvc-scopes": "users:read"})
    assert header_only.status == 401  # with jwt-metadata as the source, a scopes header counts for nothing
    assert len(upstream.seen) == before


def test_envoy_route_names_its_endpoint(stack: Stack, keys: Keys) -> None:
    reply = send(stack.ports["envoy"], "GET", "/profile", bearer(keys.mint(scope="users:read")))
    assert reply.reached_upstream
    assert reply.json() | {"method": "GET"} == {"upstream": "reached", "method": "GET", "path": "/users/me",
                                                "endpoint": "GET /users/me"}
    denied = send(stack.ports["envoy"], "GET", "/profile", bearer(keys.mint(scope="event_types:read")))
    assert denied.status == 403


def jwt_filter(config: dict) -> dict:
    manager = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    return next(f["typed_config"] for f in manager["http_filters"] if f["name"] == "envoy.filters.http.jwt_authn")


def payload_in_header(config: dict) -> None:
    """What Istio's RequestAuthentication (outputPayloadToHeader) and DENY-without-principal amount to."""
    jwt = jwt_filter(config)
    jwt["providers"]["api"]["forward_payload_header"] = "x-jwt-payload"
    jwt["rules"][0]["requires"] = {"provider_name": "api"}


@pytest.fixture(scope="module")
def payload_header_envoy(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream,
                         keys: Keys) -> Iterator[int]:
    tmp = tmp_path_factory.mktemp("payload-header")
    scopesvc = start_scopesvc(tmp, "--scope-source", "jwt-payload-header")
    try:
        envoy, port = start_envoy(tmp, scopesvc.grpc_port, upstream.port, keys, edit=payload_in_header)
    except Exception:
        scopesvc.process.stop()
        raise
    yield port
    envoy.stop()
    scopesvc.process.stop()


def test_envoy_payload_header_source(payload_header_envoy: int, keys: Keys, upstream: Upstream) -> None:
    port = payload_header_envoy
    assert send(port, "GET", "/users/me", bearer(keys.mint(scope="users:read"))).reached_upstream
    assert send(port, "DELETE", "/webhook_subscriptions/AB12", bearer(keys.mint(issued=LEGACY_TIME))).reached_upstream
    before = len(upstream.seen)
    assert send(port, "GET", "/scheduled_events/AB12", bearer(keys.mint(scope="users:read"))).status == 403
    # A client's own payload header is replaced by the verified one, or the request has no token at all.
    forged = base64.urlsafe_b64encode(json.dumps({"iat": LEGACY_TIME}).encode()).decode().rstrip("=")
    with_token = send(port, "GET", "/scheduled_events/AB12",
                      bearer(keys.mint(scope="users:read")) | {"x-jwt-payload": forged})
    assert with_token.status == 403
    assert send(port, "GET", "/scheduled_events/AB12", {"x-jwt-payload": forged}).status == 401
    assert len(upstream.seen) == before


# -- forward-auth gateways ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["nginx", "traefik"])
def test_client_headers_cannot_rename_the_request(stack: Stack, upstream: Upstream, keys: Keys, name: str) -> None:
    before = len(upstream.seen)
    forged = bearer(keys.mint(scope="users:read")) | {
        "x-original-method": "GET", "x-original-uri": "/users/me", "x-forwarded-method": "GET",
        "x-forwarded-uri": "/users/me"}
    reply = send(stack.ports[name], "GET", "/scheduled_events/AB12", forged)
    if name == "nginx":  # NGINX replaces X-Original-* and clears X-Forwarded-*: decided as sent
        assert reply.status == 403
        assert 'scope="scheduled_events:read"' in reply.headers["www-authenticate"]
    else:  # Traefik passes the client's X-Original-* on beside its own X-Forwarded-*: they disagree
        assert reply.status == 400 and "name different requests" in reply.json()["message"]
    assert len(upstream.seen) == before


# -- scopesvc down -------------------------------------------------------------------------------


def test_gateways_fail_closed_when_scopesvc_is_down(tmp_path: Path, upstream: Upstream, keys: Keys,
                                                    authenticator: Authenticator) -> None:
    stack = start_stack(tmp_path, upstream, keys, authenticator)
    try:
        auth = bearer(keys.mint(scope="users:read"))
        for name in stack.ports:
            assert send(stack.ports[name], "GET", "/users/me", auth).reached_upstream
        stack.scopesvc.process.stop()
        before = len(upstream.seen)
        answers = {name: send(port, "GET", "/users/me", auth).status for name, port in stack.ports.items()}
        # Envoy: status_on_error (failure_mode_allow is false); NGINX: the auth sub-request failed;
        # Traefik: the ForwardAuth call failed.
        assert answers == {"envoy": 503, "nginx": 500, "traefik": 500}
        assert len(upstream.seen) == before
    finally:
        stack.stop()
