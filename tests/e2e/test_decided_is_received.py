"""What scopesvc decided is what the upstream receives, through the real gateways.

Each test reads both sides: scopesvc's decision log (what was decided) and the upstream's record
of each request (what it received).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from .conftest import Keys, Scopesvc, Upstream, send, start_envoy, start_scopesvc

pytestmark = pytest.mark.e2e

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

# /users/me answers every method, reads needing users:read and writes users:write.
METHODS_CATALOG = """\
format: scopesvc.catalog/v1
name: every-method
scopes:
  - {name: "users:read"}
  - {name: "users:write"}
endpoints:
""" + "".join(f"  - {{method: {method}, path: /users/me, scopes: [\"users:{'read' if method in ('GET', 'OPTIONS') else 'write'}\"]}}\n"
              for method in METHODS if method != "HEAD")

# The shipped /profile route names its endpoint "/users/me"; this one names it "GET /users/me".
METHOD_NAMED_ROUTE = {
    "match": {"path": "/me"},
    "route": {"cluster": "upstream", "prefix_rewrite": "/users/me"},
    "typed_per_filter_config": {"envoy.filters.http.ext_authz": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute",
        "check_settings": {"context_extensions": {"scopesvc_endpoint": "GET /users/me"}},
    }},
}


def routes(config: dict[str, Any]) -> list[dict[str, Any]]:
    manager = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    return manager["route_config"]["virtual_hosts"][0]["routes"]


def add_method_named_route(config: dict[str, Any]) -> None:
    routes(config).insert(0, copy.deepcopy(METHOD_NAMED_ROUTE))


@dataclass
class EnvoyStack:
    scopesvc: Scopesvc
    port: int


@pytest.fixture(scope="module")
def every_method(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream, keys: Keys) -> Iterator[EnvoyStack]:
    tmp = tmp_path_factory.mktemp("every-method")
    catalog = tmp / "catalog.yaml"
    catalog.write_text(METHODS_CATALOG)
    scopesvc = start_scopesvc(tmp, "--catalog", str(catalog))
    try:
        envoy, port = start_envoy(tmp, scopesvc.grpc_port, upstream.port, keys, edit=add_method_named_route)
    except Exception:
        scopesvc.process.stop()
        raise
    yield EnvoyStack(scopesvc, port)
    envoy.stop()
    scopesvc.process.stop()


def through(stack: EnvoyStack, upstream: Upstream, method: str, path: str,
            headers: dict[str, str]) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
    """Send one request; return its status, the decision scopesvc logged and what the upstream received."""
    logged, seen = len(stack.scopesvc.decisions()), len(upstream.seen)
    reply = send(stack.port, method, path, headers, body=b"{}" if method in ("POST", "PUT", "PATCH") else None)
    decisions = stack.scopesvc.decisions(logged + 1)[logged:]
    assert len(decisions) == 1, decisions
    return reply.status, decisions[0], [(s.method, s.path) for s in upstream.seen[seen:]]


@pytest.mark.parametrize("scope", ["users:read", "users:write"])
@pytest.mark.parametrize("method", METHODS)
def test_a_path_only_route_name_decides_the_method_the_upstream_receives(
        every_method: EnvoyStack, upstream: Upstream, keys: Keys, method: str, scope: str) -> None:
    token = {"authorization": f"Bearer {keys.mint(scope=scope)}"}
    status, decided, received = through(every_method, upstream, method, "/profile", token)
    endpoint = f"{'GET' if method == 'HEAD' else method} /users/me"
    allowed = scope == "users:write" or method in ("GET", "HEAD", "OPTIONS")
    assert (decided["method"], decided["path"], decided["endpoint"], decided["allowed"]) == (
        method, "/profile", endpoint, allowed)
    if allowed:
        assert status == 200 and received == [(method, "/users/me")]
    else:
        assert decided["reason"] == "INSUFFICIENT_SCOPE" and status == 403 and received == []


@pytest.mark.parametrize("scope", ["users:read", "users:write"])
@pytest.mark.parametrize("method", METHODS)
def test_a_method_route_name_is_never_decided_for_another_method(
        every_method: EnvoyStack, upstream: Upstream, keys: Keys, method: str, scope: str) -> None:
    # Even a token that may call every method of /users/me cannot PATCH it through a GET route.
    token = {"authorization": f"Bearer {keys.mint(scope=scope)}"}
    status, decided, received = through(every_method, upstream, method, "/me", token)
    assert (decided["method"], decided["path"]) == (method, "/me")
    if method in ("GET", "HEAD"):
        assert (decided["endpoint"], decided["reason"]) == ("GET /users/me", "ALLOWED")
        assert status == 200 and received == [(method, "/users/me")]
    else:
        assert (decided["endpoint"], decided["reason"], decided["allowed"]) == ("", "ROUTE_METHOD_MISMATCH", False)
        assert status == 403 and received == []
