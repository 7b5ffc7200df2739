"""What scopesvc decided is what the upstream receives, through the real gateways.

Each test reads both sides: scopesvc's decision log (what was decided) and the upstream's record
of each request (what it received).
"""

from __future__ import annotations

import copy
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import h2.config
import h2.connection
import h2.events
import pytest

from scopesvc.policy.model import REWRITE_HEADERS

from .conftest import (
    Authenticator,
    Keys,
    Scopesvc,
    Stack,
    Upstream,
    send,
    start_envoy,
    start_scopesvc,
    start_stack,
)

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
    logged, seen = stack.scopesvc.settled(), len(upstream.seen)
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


# -- raw bytes in the path: HTTP/2 (h2c) through Envoy, HTTP/1.1 through every gateway -------------------

TOKEN_SCOPES = "users:read scheduled_events:read"
RAW_PATHS = [
    b"/users/\xc0\xaf..\xc0\xafscheduled_events\xc0\xafAB12",  # overlong UTF-8 '/': '/users/../scheduled_events/AB12'
    b"/users/\xc0\xae\xc0\xae/scheduled_events/AB12",  # overlong UTF-8 '.'
    b"/users/\xc3\xa9",  # valid UTF-8, not ASCII
    b"/users/\xe2\x80\xae21BA",  # right-to-left override
    b"/users/me\xff",
    b"/users/%C0%AF",
    b"/users/me\\..\\..\\scheduled_events\\AB12",
    b"/users/a\x7fb",
    b"/users/me?x=\xc0\xaf",  # the query is never decided: only the path must arrive as decided
]


def path_part(target: bytes) -> bytes:
    return target.split(b"?", 1)[0]


def assert_received_as_decided(scopesvc: Scopesvc, upstream: Upstream, logged: int, seen: int, sent: bytes) -> None:
    """The upstream either never got the request, or got exactly the path scopesvc decided (and allowed)."""
    received = upstream.seen[seen:]
    if not received:
        return
    assert len(received) == 1, received
    decided = scopesvc.decisions(logged + 1)[logged:]
    assert len(decided) == 1 and decided[0]["allowed"], (sent, decided)
    assert path_part(received[0].raw_path) == decided[0]["path"].encode("utf-8"), (sent, received[0], decided[0])


def h2_request(port: int, method: str, target: bytes, headers: dict[str, str]) -> int | None:
    """One request over HTTP/2 without TLS (h2c, prior knowledge), its :path sent byte for byte.

    Returns the response status, or None when the stream or connection was reset instead.
    """
    config = h2.config.H2Configuration(client_side=True, header_encoding=None, validate_outbound_headers=False,
                                       normalize_outbound_headers=False)
    connection = h2.connection.H2Connection(config)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        connection.initiate_connection()
        request = [(b":method", method.encode()), (b":scheme", b"http"), (b":authority", b"localhost"),
                   (b":path", target)] + [(k.encode(), v.encode()) for k, v in headers.items()]
        connection.send_headers(1, request, end_stream=True)
        sock.sendall(connection.data_to_send())
        status = None
        while True:
            data = sock.recv(65536)
            if not data:
                return status
            for event in connection.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    status = int(dict(event.headers)[b":status"])
                elif isinstance(event, h2.events.DataReceived):
                    connection.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset, h2.events.ConnectionTerminated)):
                    return status
            sock.sendall(connection.data_to_send())


def h1_request(port: int, method: str, target: bytes, headers: dict[str, str]) -> bytes:
    """One HTTP/1.1 request with its request line sent byte for byte; the status line (or b"" when closed)."""
    head = b"%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n" % (method.encode(), target)
    head += b"".join(b"%s: %s\r\n" % (k.encode(), v.encode()) for k, v in headers.items()) + b"\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer.split(b"\r\n", 1)[0]


def answered_200(protocol: str, port: int, target: bytes, headers: dict[str, str]) -> bool:
    if protocol == "h2":
        return h2_request(port, "GET", target, headers) == 200
    return h1_request(port, "GET", target, headers).startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize("target", RAW_PATHS)
@pytest.mark.parametrize(("name", "protocol"), [("envoy", "h2"), ("envoy", "http/1.1"), ("nginx", "http/1.1"),
                                                ("traefik", "http/1.1")])
def test_the_upstream_gets_the_path_decided(stack: Stack, upstream: Upstream, keys: Keys, name: str, protocol: str,
                                            target: bytes) -> None:
    token = {"authorization": f"Bearer {keys.mint(scope=TOKEN_SCOPES)}"}
    assert answered_200(protocol, stack.ports[name], b"/users/me", token)  # the protocol is served at all
    logged, seen = stack.scopesvc.settled(), len(upstream.seen)
    answered_200(protocol, stack.ports[name], target, token)
    assert_received_as_decided(stack.scopesvc, upstream, logged, seen, target)


# -- headers: rewrite headers and client-sent scopes ------------------------------------------------------

GATEWAYS = ["envoy", "nginx", "traefik"]
# Each rewrite header as sent, and as CGI-style upstreams also read it ('_' for '-').
REWRITE_SPELLINGS = [*(h.title() for h in REWRITE_HEADERS), *(h.replace("-", "_") for h in REWRITE_HEADERS)]


def rewrite_headers_in(headers: dict[str, str]) -> list[str]:
    return [name for name in headers if name.replace("_", "-") in REWRITE_HEADERS]


def bearer(scopes: str, keys: Keys) -> dict[str, str]:
    return {"authorization": f"Bearer {keys.mint(scope=scopes)}"}


@pytest.mark.parametrize("header", REWRITE_SPELLINGS)
@pytest.mark.parametrize("name", GATEWAYS)
def test_a_rewrite_header_is_denied_and_never_reaches_the_upstream(stack: Stack, upstream: Upstream, keys: Keys,
                                                                   name: str, header: str) -> None:
    logged, seen = stack.scopesvc.settled(), len(upstream.seen)
    reply = send(stack.ports[name], "GET", "/users/me", bearer("users:read", keys) | {header: "DELETE"})
    received = upstream.seen[seen:]
    assert not [rewrite_headers_in(r.headers) for r in received if rewrite_headers_in(r.headers)]
    if "_" in header and name != "traefik":
        # Envoy rejects such names itself (400, headers_with_underscores_action); NGINX drops them.
        assert (reply.status, received) == (400, []) if name == "envoy" else reply.status == 200
        return
    assert reply.status == (400 if name == "envoy" else 403) and received == []  # forward-auth: 400 is sent as 403
    decided = stack.scopesvc.decisions(logged + 1)[logged:]
    assert [d["reason"] for d in decided] == ["REWRITE_HEADER"]
    assert header.lower() in reply.json()["message"].lower()


@pytest.fixture(scope="module")
def dry_run_stack(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream, keys: Keys,
                  authenticator: Authenticator) -> Iterator[Stack]:
    """The gateways in front of a scopesvc in dry-run mode: what it denies still reaches the upstream."""
    running = start_stack(tmp_path_factory.mktemp("dry-run"), upstream, keys, authenticator, "--dry-run")
    yield running
    running.stop()


@pytest.mark.parametrize("name", GATEWAYS)
def test_every_gateway_strips_rewrite_headers_from_what_it_forwards(dry_run_stack: Stack, upstream: Upstream,
                                                                    keys: Keys, name: str) -> None:
    # scopesvc denies these requests; in dry-run the gateway forwards them anyway, as it would if the
    # denial were ever lost: the configuration's own removal is what keeps the headers from the upstream.
    headers = bearer("users:read", keys) | {h.title(): "DELETE" for h in REWRITE_HEADERS}
    logged, seen = dry_run_stack.scopesvc.settled(), len(upstream.seen)
    reply = send(dry_run_stack.ports[name], "GET", "/users/me", headers)
    assert reply.status == 200 and len(upstream.seen) == seen + 1
    assert rewrite_headers_in(upstream.seen[-1].headers) == []
    decided = dry_run_stack.scopesvc.decisions(logged + 1)[logged:]
    assert [(d["reason"], d["dry_run"]) for d in decided] == [("REWRITE_HEADER", True)]


@pytest.mark.parametrize("name", GATEWAYS)
def test_a_client_sent_scopes_header_gets_no_access(stack: Stack, upstream: Upstream, keys: Keys, name: str) -> None:
    port, forged = stack.ports[name], {"X-Scopesvc-Scopes": "scheduled_events:read"}
    seen = len(upstream.seen)
    assert send(port, "GET", "/scheduled_events/AB12", forged).status == 401  # no token: no access
    assert send(port, "GET", "/scheduled_events/AB12", bearer("users:read", keys) | forged).status == 403
    assert len(upstream.seen) == seen
    # On an allowed request the upstream sees the verified scopes (NGINX, Traefik) or none (Envoy), never the client's.
    assert send(port, "GET", "/users/me", bearer("users:read", keys) | forged).reached_upstream
    received = upstream.seen[-1].headers.get("x-scopesvc-scopes")
    assert received == (None if name == "envoy" else "users:read")
