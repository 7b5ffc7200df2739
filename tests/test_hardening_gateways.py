"""Bad input through the gateway adapters: Envoy ext_authz (CheckRequest with garbage attributes)
and HTTP forward-auth (garbage headers, huge headers, bad URIs).

Each gets a deny (ext_authz: a non-OK status; forward-auth: 400/401/403) or a gRPC error (which
Envoy, with failure_mode_allow false, also turns into a deny). None allows, none crashes the server.
"""

from __future__ import annotations

import http.client
import json
import math
import socket
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from envoy.service.auth.v3 import attribute_context_pb2 as ac
from envoy.service.auth.v3 import external_auth_pb2 as authz
from envoy.service.auth.v3 import external_auth_pb2_grpc as authz_grpc
from google.protobuf import struct_pb2

from scopesvc.server.app import ServerConfig
from tests.conftest import RunningServer
from tests.ops_helpers import free_port

from .helpers import bad_request_field
from .test_hardening_grpc import CONFUSED, _field

NAMESPACE = "envoy.filters.http.jwt_authn"
EVERYTHING = " ".join(["users:read", "organizations:write", "scheduled_events:write", "event_types:write",
                       "availability:write", "webhooks:write", "groups:read", "activity_log:read"])


@pytest.fixture(scope="module")
def gateway() -> Iterator[RunningServer]:
    running = RunningServer(ServerConfig(host="127.0.0.1", port=0, grace=0.5, metrics_port=0,
                                         forward_auth_port=free_port(), legacy_claim="legacy"))
    yield running
    running.close()


@pytest.fixture(scope="module")
def stub(gateway: RunningServer) -> Iterator[authz_grpc.AuthorizationStub]:
    with grpc.insecure_channel(gateway.address) as channel:
        yield authz_grpc.AuthorizationStub(channel)


def envoy_check(method: str, path: str, payload: Any = None, headers: dict[str, str] | None = None,
                extensions: dict[str, str] | None = None) -> authz.CheckRequest:
    attributes = ac.AttributeContext(
        request=ac.AttributeContext.Request(http=ac.AttributeContext.HttpRequest(method=method, path=path,
                                                                                 headers=headers or {})),
        context_extensions=extensions or {},
    )
    if payload is not None:
        struct = struct_pb2.Struct()
        struct.update({"jwt_payload": payload})
        attributes.metadata_context.filter_metadata[NAMESPACE].CopyFrom(struct)
    return authz.CheckRequest(attributes=attributes)


def allowed_or_error(stub: authz_grpc.AuthorizationStub, request: authz.CheckRequest) -> bool | None:
    """True/False for an answer (OK status or not); None for a gRPC error."""
    try:
        response = stub.Check(request, timeout=10)
    except grpc.RpcError as exc:
        assert exc.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED), exc
        return None
    if response.status.code == 0:
        return True
    assert response.denied_response.status.code in (400, 401, 403)
    return False


@pytest.fixture(autouse=True)
def still_answers(stub: authz_grpc.AuthorizationStub) -> Iterator[None]:
    yield
    assert allowed_or_error(stub, envoy_check("GET", "/users/me", {"scope": "users:read"})) is True
    assert allowed_or_error(stub, envoy_check("GET", "/organizations/o", {"scope": "users:read"})) is False


def test_everything_token_does_pass_a_plain_path(stub):
    assert allowed_or_error(stub, envoy_check("GET", "/scheduled_events/AB12", {"scope": EVERYTHING})) is True


@pytest.mark.parametrize("path", CONFUSED)
def test_confused_paths_are_never_allowed_by_ext_authz(stub, path):
    for payload in ({"scope": EVERYTHING}, {"legacy": True}, {"iat": 1_600_000_000}):
        assert allowed_or_error(stub, envoy_check("GET", path, payload)) is not True, (path, payload)


@pytest.mark.parametrize(
    "payload",
    [
        {}, {"scope": None}, {"scope": 5}, {"scope": [1, 2]}, {"scope": {"users:read": True}}, {"scope": [["users:read"]]},
        {"scope": True}, {"scp": ""}, {"scope": "x" * 5000}, {"scope": " ".join(f"s{i}" for i in range(1001))},
        {"scope": "users:read\x00organizations:read"}, {"scope": "USERS:READ"}, {"scope": "users:*"}, {"scope": "*"},
        {"scope": "organizations:read\u200b"}, {"iat": "1600000000"}, {"iat": math.nan}, {"iat": math.inf},
        {"iat": -math.inf}, {"iat": 1e300}, {"iat": -1e300}, {"legacy": "yes"}, {"legacy": 1}, {"legacy": "True"},
        {"legacy": ["true"]}, {"format": 2}, {"token_format": "legacy"}, {"sub": {"nested": "x"}, "scope": "users:read"},
        "users:read organizations:read", ["organizations:read"], 42, None,
    ],
)
def test_garbage_jwt_payloads_never_reach_organizations(stub, payload):
    request = envoy_check("GET", "/organizations/o1", payload if payload is not None else {})
    if payload is None:
        request.attributes.metadata_context.filter_metadata[NAMESPACE].fields["jwt_payload"].null_value = 0
    assert allowed_or_error(stub, request) is not True, payload


def test_client_headers_are_never_trusted_in_jwt_metadata_mode(stub):
    spoofed = {"x-scopesvc-scopes": EVERYTHING, "authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzY29wZSI6IioifQ.",
               "x-jwt-payload": "eyJzY29wZSI6Im9yZ2FuaXphdGlvbnM6cmVhZCJ9"}
    assert allowed_or_error(stub, envoy_check("GET", "/organizations/o1", None, spoofed)) is False


@pytest.mark.parametrize("namespace", ["", "envoy.filters.http.jwt_authn ", "ENVOY.FILTERS.HTTP.JWT_AUTHN", "other"])
def test_payload_under_another_namespace_is_not_trusted(stub, namespace):
    request = envoy_check("GET", "/users/me")
    struct = struct_pb2.Struct()
    struct.update({"jwt_payload": {"scope": EVERYTHING}})
    request.attributes.metadata_context.filter_metadata[namespace].CopyFrom(struct)
    assert allowed_or_error(stub, request) is False


@pytest.mark.parametrize(
    ("method", "path"),
    [("", "/users/me"), ("GET", ""), ("get", "/users/me"), ("GET\r\n", "/users/me"), ("G" * 10_000, "/users/me"),
     ("GET", "/users/" + "a" * 1_000_000), ("GET", "/users/me\x00"), ("CONNECT", "api.example:443"), ("GET", "*")],
)
def test_garbage_methods_and_paths_are_refused(stub, method, path):
    assert allowed_or_error(stub, envoy_check(method, path, {"scope": EVERYTHING})) is not True


def test_empty_and_huge_check_requests(stub):
    assert allowed_or_error(stub, authz.CheckRequest()) is not True
    huge = envoy_check("GET", "/users/me", {"scope": "users:read"}, {f"x-h{i}": "v" * 1000 for i in range(5000)})
    assert allowed_or_error(stub, huge) is not True  # over the message limit: RESOURCE_EXHAUSTED


def test_invalid_utf8_in_an_ext_authz_request_is_refused(gateway):
    # HttpRequest.path (field 4 of AttributeContext.HttpRequest) with bytes that are not UTF-8.
    http = _field(3, b"GET") + _field(4, b"/users/\xff")
    body = _field(1, _field(2, _field(2, http)))  # CheckRequest.attributes.request.http
    with grpc.insecure_channel(gateway.address) as channel:
        call = channel.unary_unary("/envoy.service.auth.v3.Authorization/Check", request_serializer=None,
                                   response_deserializer=authz.CheckResponse.FromString)
        with pytest.raises(grpc.RpcError) as info:
            call(body, timeout=5)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_field(info.value) == "request"


# -- forward-auth -------------------------------------------------------------------------


def ask(gateway: RunningServer, headers: dict[str, str] | list[tuple[str, str]], method: str = "GET") -> int:
    assert gateway.server.forward_auth is not None
    connection = http.client.HTTPConnection("127.0.0.1", gateway.server.forward_auth.port, timeout=10)
    connection.putrequest(method, "/check", skip_accept_encoding=True)
    for name, value in headers.items() if isinstance(headers, dict) else headers:
        connection.putheader(name, value)
    connection.endheaders()
    response = connection.getresponse()
    response.read()
    connection.close()
    return response.status


def raw(gateway: RunningServer, data: bytes) -> bytes:
    assert gateway.server.forward_auth is not None
    chunks = []
    with socket.create_connection(("127.0.0.1", gateway.server.forward_auth.port), timeout=10) as sock:
        try:  # the server may answer and close before it has read everything
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (ConnectionResetError, BrokenPipeError, OSError):
            pass
    return b"".join(chunks)


# HTTP header values are bytes; http.client sends latin-1, so the others are sent raw below. Whitespace
# at the end of a header is not part of its value (RFC 9110 5.5): those URIs are tested below.
@pytest.mark.parametrize("uri", [u for u in CONFUSED[:-2] if u.isascii() and u == u.rstrip(" \t")]
                         + ["/users/me\r\nX-Scopesvc-Scopes: x"])
def test_forward_auth_confused_uris_are_never_allowed(gateway, uri):
    headers = {"X-Original-Method": "GET", "X-Original-URI": uri.replace("\r", "%0D").replace("\n", "%0A"),
               "X-Scopesvc-Scopes": EVERYTHING}
    assert ask(gateway, headers) in (400, 403), uri


@pytest.mark.parametrize(
    "headers",
    [
        [("X-Original-Method", "GET"), ("X-Original-URI", "/organizations/o1"), ("X-Scopesvc-Scopes", "users:read"),
         ("X-Scopesvc-Scopes", "organizations:read")],  # a second scope header appended by a client
        [("X-Original-Method", "GET"), ("X-Original-URI", "/users/me"), ("X-Original-URI", "/organizations/o1"),
         ("X-Scopesvc-Scopes", "users:read")],  # two URIs
        [("X-Original-Method", "get"), ("X-Original-URI", "/users/me"), ("X-Scopesvc-Scopes", "users:read")],
        [("X-Original-Method", "GET"), ("X-Original-URI", "/users/me"), ("X-Scopesvc-Scopes", "x" * 60_000)],
        [("X-Original-Method", "GET"), ("X-Original-URI", "/users/me"),
         ("X-Scopesvc-Scopes", " ".join(f"s{i}" for i in range(1001)))],
        [("X-Original-Method", "GET"), ("X-Original-URI", "/users/" + "a" * 60_000), ("X-Scopesvc-Scopes", EVERYTHING)],
        [("X-Original-Method", "GET"), ("X-Original-URI", "https://evil.example/users/me"),
         ("X-Scopesvc-Scopes", EVERYTHING)],
        [("X-Original-Method", "GET"), ("X-Original-URI", "/organizations/o1"), ("X-Scopesvc-Scopes", "")],
        [("X-Original-Method", "GET"), ("X-Original-URI", "/organizations/o1"), ("X-Scopesvc-Scopes", "users:read,,")],
        [("X-Forwarded-Method", "GET"), ("X-Forwarded-Uri", "/organizations/o1"), ("X-Scopesvc-Scopes", "users:read")],
        [("X-Original-Method", "GET"), ("X-Original-URI", "/users/me"), ("X-Forwarded-Uri", "/organizations/o1"),
         ("X-Scopesvc-Scopes", "users:read")],
    ],
)
def test_forward_auth_garbage_headers_never_allow_organizations(gateway, headers):
    status = ask(gateway, headers)
    assert status in (400, 401, 403), (headers, status)


@pytest.mark.parametrize("uri", [u for u in CONFUSED if u != u.rstrip(" \t")])
def test_forward_auth_header_values_end_before_trailing_whitespace(gateway, uri):
    headers = {"X-Original-Method": "GET", "X-Original-URI": uri, "X-Scopesvc-Scopes": "organizations:read"}
    assert ask(gateway, headers) == ask(gateway, headers | {"X-Original-URI": uri.rstrip(" \t")})


def test_forward_auth_latin1_and_control_bytes(gateway):
    for value in (b"/users/\xe9", b"/users/me\x00", b"/users/\x7f", b"/\xc0\xae\xc0\xae/organizations",
                  "/users/\u202eem".encode(), "/users/m\u00e9".encode()):
        reply = raw(gateway, b"GET /check HTTP/1.1\r\nHost: x\r\nX-Original-Method: GET\r\nX-Original-URI: " + value
                    + b"\r\nX-Scopesvc-Scopes: " + EVERYTHING.encode() + b"\r\nConnection: close\r\n\r\n")
        status = reply.split(b" ", 2)[1] if reply.startswith(b"HTTP/") else b"?"
        assert status in (b"400", b"403"), (value, reply[:100])


@pytest.mark.parametrize(
    "data",
    [
        b"", b"\r\n\r\n", b"GET\r\n\r\n", b"GET /check HTTP/9.9\r\n\r\n", b"GET /check HTTP/1.1\r\n" + b"X: y\r\n" * 200 + b"\r\n",
        b"GET /check HTTP/1.1\r\nX-Original-URI: " + b"a" * 100_000 + b"\r\n\r\n",
        b"GET /check HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        b"GET /check HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET /check HTTP/1.1\r\nHost: x\r\n X-Original-URI: /users/me\r\n\r\n",  # obsolete line folding
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    ],
)
def test_forward_auth_malformed_http_is_never_200(gateway, data):
    reply = raw(gateway, data)
    assert not reply.startswith(b"HTTP/1.1 200") and not reply.startswith(b"HTTP/1.0 200"), reply[:120]
    assert ask(gateway, {"X-Original-Method": "GET", "X-Original-URI": "/users/me", "X-Scopesvc-Scopes": "users:read"}) == 200


@pytest.mark.parametrize("data", [
    b"GET /check HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    b"GET /check HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
    b"GET /check HTTP/1.1\r\nHost: x\r\n X-Original-URI: /users/me\r\n\r\n",  # obsolete line folding
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 32 + b"\r\n\r\n",  # TLS on the plain port
])
def test_forward_auth_answers_unparsable_requests_as_itself(gateway, data):
    # aiohttp answers what it cannot parse; the answer must not name Python's and aiohttp's versions
    # nor echo the request's bytes, and reads like the front end's other refusals.
    head, _, body = raw(gateway, data).partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (h.partition(b":") for h in lines[1:])}
    assert lines[0].split(b" ")[1] == b"400", head
    assert headers[b"server"] == b"scopesvc" and b"aiohttp" not in head + body and b"Python" not in head + body
    assert headers[b"content-type"].startswith(b"application/json")
    reply = json.loads(body)
    assert reply["title"] == "Bad request" and reply["message"] and b"\\x" not in body and "b'" not in reply["message"]
