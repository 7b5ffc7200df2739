"""The HTTP forward-auth endpoint of the real server, called as NGINX auth_request and Traefik call it."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from scopesvc.gateway.forward_auth import DENY_BODY_HEADER
from scopesvc.policy import Engine, Token
from scopesvc.server.app import ServerConfig
from tests.conftest import RunningServer
from tests.test_gateway_ext_authz import FailingEngine


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def forward_auth() -> Iterator[RunningServer]:
    running = RunningServer(ServerConfig(host="127.0.0.1", port=0, grace=0.5, metrics_port=0,
                                         forward_auth_port=free_port()))
    yield running
    running.close()


def ask(running: RunningServer, headers: dict[str, str], method: str = "GET") -> http.client.HTTPResponse:
    assert running.server.forward_auth is not None
    connection = http.client.HTTPConnection("127.0.0.1", running.server.forward_auth.port, timeout=10)
    connection.request(method, "/check", headers=headers)
    response = connection.getresponse()
    response.body = response.read()  # type: ignore[attr-defined]
    connection.close()
    return response


def nginx_style(method: str, uri: str, scopes: str | None) -> dict[str, str]:
    headers = {"X-Original-Method": method, "X-Original-URI": uri}
    if scopes is not None:
        headers["X-Scopesvc-Scopes"] = scopes
    return headers


def test_allowed_is_200_with_the_endpoint(forward_auth: RunningServer) -> None:
    response = ask(forward_auth, nginx_style("GET", "/scheduled_events/AB12/invitees?count=5", "scheduled_events:write"))
    assert response.status == 200
    assert response.getheader("x-scopesvc-endpoint") == "GET /scheduled_events/{uuid}/invitees"
    assert response.body == b""  # type: ignore[attr-defined]


def test_denied_is_403_with_the_engines_headers_and_body(forward_auth: RunningServer, engine: Engine) -> None:
    response = ask(forward_auth, nginx_style("POST", "/scheduling_links", "scheduling_links:read users:read"))
    decision = engine.check(Token(("scheduling_links:read", "users:read")), "POST", "/scheduling_links")
    assert response.status == 403 == decision.http_status
    assert response.getheader("www-authenticate") == decision.www_authenticate
    assert response.getheader("content-type") == "application/json"
    assert response.body.decode() == decision.body == response.getheader(DENY_BODY_HEADER)  # type: ignore[attr-defined]
    assert json.loads(decision.body)["required_scopes"] == ["scheduling_links:write"]


def test_no_scope_header_is_401_bearer(forward_auth: RunningServer) -> None:
    response = ask(forward_auth, nginx_style("GET", "/users/me", None))
    assert response.status == 401
    assert response.getheader("www-authenticate") == 'Bearer realm="calendly-api-v2"'
    assert json.loads(response.body)["title"] == "Unauthorized"  # type: ignore[attr-defined]


def test_traefik_style_headers(forward_auth: RunningServer) -> None:
    headers = {"X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/users/me", "X-Scopesvc-Scopes": "users:read"}
    assert ask(forward_auth, headers).status == 200
    assert ask(forward_auth, headers, method="HEAD").status == 200


def test_original_headers_win_but_must_agree(forward_auth: RunningServer) -> None:
    agreeing = nginx_style("GET", "/users/me", "users:read") | {"X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/users/me"}
    assert ask(forward_auth, agreeing).status == 200
    # A client-supplied X-Forwarded-Uri naming another request makes the request unusable, not allowed.
    conflicting = nginx_style("GET", "/users/me", "users:read") | {"X-Forwarded-Uri": "/scheduled_events"}
    response = ask(forward_auth, conflicting)
    assert response.status == 400
    assert b"different requests" in response.body  # type: ignore[attr-defined]


@pytest.mark.parametrize("headers", [{}, {"X-Original-URI": "/users/me"}, {"X-Forwarded-Method": "GET"}])
def test_missing_original_request_is_400(forward_auth: RunningServer, headers: dict[str, str]) -> None:
    assert ask(forward_auth, headers | {"X-Scopesvc-Scopes": "users:read"}).status == 400


@pytest.mark.parametrize("uri", ["/users/me/../../scheduled_events", "/users/%2e%2e/me", "/users/a%2Fb", "//users/me",
                                 "/no/such/endpoint"])
def test_tricky_and_unknown_paths_are_403(forward_auth: RunningServer, engine: Engine, uri: str) -> None:
    response = ask(forward_auth, nginx_style("GET", uri, "users:read scheduled_events:read"))
    decision = engine.check(Token(("users:read", "scheduled_events:read")), "GET", uri)
    assert response.status == 403  # auth_request knows only 401 and 403: a 400 decision is sent as 403
    assert response.body.decode() == decision.body  # type: ignore[attr-defined]


def test_garbage_and_oversized_requests_do_not_crash_it(forward_auth: RunningServer) -> None:
    assert forward_auth.server.forward_auth is not None
    port = forward_auth.server.forward_auth.port
    for raw in (b"\x00\xff garbage\r\n\r\n", b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n",
                b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(150)) + b"\r\n"):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(raw)
            reply = sock.recv(4096)
        # A request line that is not HTTP/1.x gets an HTTP/0.9-style error page: no status line, never a 200.
        assert b"Error code: 400" in reply or reply.split(b" ")[1] in (b"400", b"431"), reply[:80]
    assert ask(forward_auth, nginx_style("GET", "/users/me", "users:read")).status == 200


def test_engine_failure_is_500_never_an_answer(engine: Engine) -> None:
    running = RunningServer(ServerConfig(host="127.0.0.1", port=0, grace=0.5, metrics_port=0, cache_size=0,
                                         forward_auth_port=free_port()))
    try:
        running.server.ref.engine = FailingEngine(engine.catalog)
        assert ask(running, nginx_style("GET", "/users/me", "users:read")).status == 500
    finally:
        running.close()


def test_serve_rejects_an_empty_gateway_header_name() -> None:
    result = subprocess.run([sys.executable, "-m", "scopesvc", "serve", "--port", "0", "--metrics-port", "0",
                             "--scope-header", ""], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "scope_header: must not be empty" in result.stderr


def test_sigterm_drains_forward_auth_with_grpc_and_exits_promptly(tmp_path):
    """Forward-auth drains with gRPC: it answers through --drain-delay after SIGTERM, then idle keep-alive
    and half-sent connections are closed instead of holding the server past --grace."""
    import signal
    import socket
    import time

    from .ops_helpers import ServeProcess, free_port

    port = free_port()
    server = ServeProcess(tmp_path, "--forward-auth-port", str(port), "--grace", "2", "--drain-delay", "1.5")
    idle = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    idle.request("GET", "/check", headers=nginx_style("GET", "/users/me", "users:read"))
    assert idle.getresponse().read() == b""  # answered, and the connection stays open (keep-alive)
    dribbling = socket.create_connection(("127.0.0.1", port), timeout=10)
    dribbling.sendall(b"GET /check HTTP/1.1\r\nHost: x\r\n")  # headers never finished
    start = time.monotonic()
    server.signal(signal.SIGTERM)
    time.sleep(0.3)
    during = http.client.HTTPConnection("127.0.0.1", port, timeout=10)  # a new connection while draining
    during.request("GET", "/check", headers=nginx_style("GET", "/users/me", "users:read"))
    assert during.getresponse().status == 200
    during.close()
    assert server.proc.wait(timeout=15) == 0
    assert time.monotonic() - start < 5  # not the 120 s keep-alive or the 10 s header timeout
    assert idle.sock is not None and idle.sock.recv(1) == b""  # the server closed the idle connection
    dribbling.close()
    idle.close()
    server.close()
    assert "Traceback" not in server.log()
