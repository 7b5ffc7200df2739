"""envoy.service.auth.v3.Authorization/Check on the real scopesvc gRPC server, called as Envoy calls it."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from envoy.service.auth.v3 import attribute_context_pb2 as ac
from envoy.service.auth.v3 import external_auth_pb2 as authz
from envoy.service.auth.v3 import external_auth_pb2_grpc as authz_grpc
from google.protobuf import struct_pb2
from google.rpc import code_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from scopesvc.policy import Engine, Token
from scopesvc.server.app import ServerConfig
from tests.conftest import RunningServer
from tests.helpers import LEGACY_TIME, SCOPED_TIME

NAMESPACE = "envoy.filters.http.jwt_authn"


def check_request(method: str, path: str, payload: dict[str, Any] | None = None, *,
                  headers: dict[str, str] | None = None, extensions: dict[str, str] | None = None,
                  namespace: str = NAMESPACE, key: str = "jwt_payload") -> authz.CheckRequest:
    attributes = ac.AttributeContext(
        request=ac.AttributeContext.Request(
            http=ac.AttributeContext.HttpRequest(method=method, path=path, headers=headers or {})
        ),
        context_extensions=extensions or {},
    )
    if payload is not None:
        struct = struct_pb2.Struct()
        struct.update({key: payload})
        attributes.metadata_context.filter_metadata[namespace].CopyFrom(struct)
    return authz.CheckRequest(attributes=attributes)


def serve(**options: Any) -> RunningServer:
    return RunningServer(ServerConfig(host="127.0.0.1", port=0, grace=0.5, metrics_port=0, **options))


@pytest.fixture(scope="module")
def jwt_server() -> Iterator[RunningServer]:
    running = serve(legacy_claim="legacy")
    yield running
    running.close()


@pytest.fixture(scope="module")
def header_server() -> Iterator[RunningServer]:
    running = serve(scope_source="header", scope_header="X-Auth-Scopes", endpoint_header="X-Matched")
    yield running
    running.close()


def stub_for(running: RunningServer) -> Iterator[authz_grpc.AuthorizationStub]:
    with grpc.insecure_channel(running.address) as channel:
        yield authz_grpc.AuthorizationStub(channel)


@pytest.fixture(scope="module")
def authz_stub(jwt_server: RunningServer) -> Iterator[authz_grpc.AuthorizationStub]:
    yield from stub_for(jwt_server)


@pytest.fixture(scope="module")
def header_stub(header_server: RunningServer) -> Iterator[authz_grpc.AuthorizationStub]:
    yield from stub_for(header_server)


def headers_of(options: Any) -> dict[str, str]:
    return {option.header.key: option.header.value for option in options}


def assert_denied_like(response: authz.CheckResponse, engine: Engine, token: Token, method: str, path: str) -> None:
    """The denied response carries exactly the engine's status, challenge and body."""
    decision = engine.check(token, method, path)
    assert not decision.allowed
    assert response.WhichOneof("http_response") == "denied_response"
    assert response.status.code == code_pb2.PERMISSION_DENIED
    denied = response.denied_response
    assert denied.status.code == decision.http_status
    assert denied.body == decision.body
    headers = headers_of(denied.headers)
    assert headers["content-type"] == "application/json"
    assert headers.get("www-authenticate", "") == decision.www_authenticate


def test_allowed_adds_the_endpoint_header(authz_stub: authz_grpc.AuthorizationStub) -> None:
    response = authz_stub.Check(check_request("GET", "/users/AB12?x=1", {"scope": "users:read", "iat": SCOPED_TIME}))
    assert response.status.code == code_pb2.OK
    assert response.WhichOneof("http_response") == "ok_response"
    assert headers_of(response.ok_response.headers) == {"x-scopesvc-endpoint": "GET /users/{uuid}"}
    assert response.ok_response.headers[0].append_action == response.ok_response.headers[0].OVERWRITE_IF_EXISTS_OR_ADD


def test_missing_scope_is_denied_with_the_engines_answer(authz_stub: authz_grpc.AuthorizationStub,
                                                          engine: Engine) -> None:
    payload = {"scope": "users:read", "iat": SCOPED_TIME}
    response = authz_stub.Check(check_request("GET", "/scheduled_events/AB12", payload))
    assert_denied_like(response, engine, Token(("users:read",)), "GET", "/scheduled_events/AB12")
    assert 'scope="scheduled_events:read"' in headers_of(response.denied_response.headers)["www-authenticate"]


@pytest.mark.parametrize("claims", [
    {"scp": ["scheduled_events:write"]},
    {"scp": "users:read scheduled_events:write"},
    {"scope": "users:read scheduled_events:write"},
])
def test_write_implies_read_in_every_claim_shape(authz_stub: authz_grpc.AuthorizationStub, claims: dict) -> None:
    response = authz_stub.Check(check_request("GET", "/scheduled_events/AB12", {**claims, "iat": SCOPED_TIME}))
    assert response.status.code == code_pb2.OK


def test_read_does_not_imply_write(authz_stub: authz_grpc.AuthorizationStub) -> None:
    response = authz_stub.Check(check_request("POST", "/scheduling_links", {"scope": "scheduling_links:read"}))
    assert response.denied_response.status.code == 403


def test_no_verified_payload_is_401_bearer_even_with_a_token_header(authz_stub: authz_grpc.AuthorizationStub) -> None:
    # An Authorization header is never decoded here: only jwt_authn's verified payload counts.
    unverified = {"authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzY29wZSI6InVzZXJzOnJlYWQifQ."}
    response = authz_stub.Check(check_request("GET", "/users/me", headers=unverified))
    assert response.status.code == code_pb2.UNAUTHENTICATED
    denied = response.denied_response
    assert denied.status.code == 401
    assert headers_of(denied.headers)["www-authenticate"] == 'Bearer realm="calendly-api-v2"'
    assert '"title":"Unauthorized"' in denied.body


def test_payload_under_another_namespace_or_key_is_not_trusted(authz_stub: authz_grpc.AuthorizationStub) -> None:
    for request in (check_request("GET", "/users/me", {"scope": "users:read"}, namespace="envoy.filters.http.lua"),
                    check_request("GET", "/users/me", {"scope": "users:read"}, key="other")):
        assert authz_stub.Check(request).denied_response.status.code == 401


def test_verified_token_without_scopes_is_403_not_401(authz_stub: authz_grpc.AuthorizationStub,
                                                      engine: Engine) -> None:
    response = authz_stub.Check(check_request("GET", "/users/me", {"sub": "u1", "iat": SCOPED_TIME}))
    assert_denied_like(response, engine, Token(()), "GET", "/users/me")
    assert response.denied_response.status.code == 403


def test_legacy_tokens_by_issue_time_and_by_claim(authz_stub: authz_grpc.AuthorizationStub) -> None:
    by_iat = authz_stub.Check(check_request("DELETE", "/webhook_subscriptions/AB12", {"iat": LEGACY_TIME}))
    assert by_iat.status.code == code_pb2.OK
    by_claim = authz_stub.Check(check_request("DELETE", "/webhook_subscriptions/AB12",
                                              {"iat": SCOPED_TIME, "legacy": True}))
    assert by_claim.status.code == code_pb2.OK
    not_legacy = authz_stub.Check(check_request("DELETE", "/webhook_subscriptions/AB12",
                                                {"iat": SCOPED_TIME, "legacy": False}))
    assert not_legacy.denied_response.status.code == 403


def test_route_extension_names_the_endpoint(authz_stub: authz_grpc.AuthorizationStub) -> None:
    payload = {"scope": "users:read", "iat": SCOPED_TIME}
    named = authz_stub.Check(check_request("GET", "/v2/people/AB12", payload,
                                           extensions={"scopesvc_endpoint": "GET /users/{uuid}"}))
    assert headers_of(named.ok_response.headers)["x-scopesvc-endpoint"] == "GET /users/{uuid}"
    overridden = authz_stub.Check(check_request("GET", "/users/AB12", payload,
                                                extensions={"scopesvc_endpoint": "GET /scheduled_events/{uuid}"}))
    assert overridden.denied_response.status.code == 403
    path_only = authz_stub.Check(check_request("POST", "/anything", payload,
                                               extensions={"scopesvc_endpoint": "/users/me"}))
    assert path_only.denied_response.status.code == 403  # POST /users/me is no endpoint


@pytest.mark.parametrize("path", ["/users/me/../../scheduled_events", "/users/%2e%2e/me", "/users/a%2Fb",
                                  "//users/me", "/users//me", "/users/me;x=1", "/nope"])
def test_unknown_and_tricky_paths_are_denied(authz_stub: authz_grpc.AuthorizationStub, engine: Engine,
                                             path: str) -> None:
    payload = {"scope": "users:read scheduled_events:read", "iat": SCOPED_TIME}
    response = authz_stub.Check(check_request("GET", path, payload))
    assert_denied_like(response, engine, Token(("users:read", "scheduled_events:read")), "GET", path)


def test_bad_scope_claim_is_invalid_argument(authz_stub: authz_grpc.AuthorizationStub) -> None:
    for claims in ({"scope": 7}, {"scp": ["users:read", 3]}, {"scope": " ".join(["x:read"] * 1001)}):
        with pytest.raises(grpc.RpcError) as error:
            authz_stub.Check(check_request("GET", "/users/me", claims))
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_header_source_reads_only_the_trusted_header(header_stub: authz_grpc.AuthorizationStub) -> None:
    allowed = header_stub.Check(check_request("GET", "/users/me", headers={"x-auth-scopes": "users:read,event_types:read"}))
    assert headers_of(allowed.ok_response.headers) == {"x-matched": "GET /users/me"}
    # Verified-looking metadata is ignored when the configured source is the header.
    ignored = header_stub.Check(check_request("GET", "/users/me", {"scope": "users:read"}))
    assert ignored.denied_response.status.code == 401
    empty = header_stub.Check(check_request("GET", "/users/me", headers={"x-auth-scopes": ""}))
    assert empty.denied_response.status.code == 403


class FailingEngine(Engine):
    def check(self, token: Token, method: str, path: str):  # type: ignore[no-untyped-def]
        raise RuntimeError("engine failure")


def test_engine_failure_is_a_grpc_error_not_a_deny(engine: Engine) -> None:
    running = serve(cache_size=0)
    try:
        running.server.ref.engine = FailingEngine(engine.catalog)
        for stub in stub_for(running):
            with pytest.raises(grpc.RpcError) as error:
                stub.Check(check_request("GET", "/users/me", {"scope": "users:read"}))
            assert error.value.code() == grpc.StatusCode.INTERNAL
    finally:
        running.close()


def test_ext_authz_is_listed_by_reflection(jwt_server: RunningServer) -> None:
    with grpc.insecure_channel(jwt_server.address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        replies = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        names = {service.name for reply in replies for service in reply.list_services_response.service}
    assert "envoy.service.auth.v3.Authorization" in names


def payload_header(claims: dict[str, Any]) -> str:
    """A payload as jwt_authn's forward_payload_header writes it: unpadded base64url JSON."""
    return base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")


@pytest.fixture(scope="module")
def payload_header_stub() -> Iterator[authz_grpc.AuthorizationStub]:
    running = serve(scope_source="jwt-payload-header")
    yield from stub_for(running)
    running.close()


def test_payload_header_source_reads_the_whole_verified_payload(
        payload_header_stub: authz_grpc.AuthorizationStub) -> None:
    def ask(path: str, claims: dict[str, Any] | None, method: str = "GET") -> authz.CheckResponse:
        headers = {} if claims is None else {"x-jwt-payload": payload_header(claims)}
        return payload_header_stub.Check(check_request(method, path, headers=headers))

    assert ask("/users/me", {"scope": "users:read", "iat": SCOPED_TIME}).status.code == code_pb2.OK
    assert ask("/users/me", {"scp": ["event_types:read"], "iat": SCOPED_TIME}).denied_response.status.code == 403
    assert ask("/webhook_subscriptions/AB12", {"iat": LEGACY_TIME}, "DELETE").status.code == code_pb2.OK
    assert ask("/users/me", None).denied_response.status.code == 401
    # jwt_authn metadata and a scopes header count for nothing with this source.
    ignored = payload_header_stub.Check(check_request("GET", "/users/me", {"scope": "users:read"},
                                                      headers={"x-scopesvc-scopes": "users:read"}))
    assert ignored.denied_response.status.code == 401


@pytest.mark.parametrize("value", ["not base64!", payload_header(["a list"]), "e30" + "%%"])  # type: ignore[list-item]
def test_unreadable_payload_header_is_invalid_argument(payload_header_stub: authz_grpc.AuthorizationStub,
                                                       value: str) -> None:
    with pytest.raises(grpc.RpcError) as error:
        payload_header_stub.Check(check_request("GET", "/users/me", headers={"x-jwt-payload": value}))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
