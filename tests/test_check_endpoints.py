"""Every one of the 75 reference endpoints, decided through the real gRPC server."""

from __future__ import annotations

import json

import pytest

from scopesvc.v1 import scopesvc_pb2 as pb

from .conftest import REFERENCE
from .helpers import LEGACY_TIME, SCOPED_TIME, concrete, token

ENDPOINTS = json.loads(REFERENCE.read_text())["endpoints"] if REFERENCE.exists() else []
IDS = [f"{e['method']} {e['path']}" for e in ENDPOINTS]


def check(stub, tok: pb.Token, method: str, path: str) -> pb.CheckResponse:
    return stub.Check(pb.CheckRequest(token=tok, method=method, path=path))


def test_all_75_endpoints_are_covered():
    assert len(ENDPOINTS) == 75


@pytest.mark.parametrize("ref", ENDPOINTS, ids=IDS)
def test_exact_scopes_allow_concrete_path_and_template(stub, ref):
    key = f"{ref['method']} {ref['path']}"
    for path in (concrete(ref["path"]) + "?count=10&page_token=x%20y", ref["path"], concrete(ref["path"], "7")):
        response = check(stub, token(*ref["required_scopes"]), ref["method"], path)
        assert response.allowed, (path, response.message)
        assert response.reason == pb.REASON_ALLOWED
        assert response.endpoint == key
        assert list(response.required_scopes) == ref["required_scopes"]
        assert not response.HasField("deny")


@pytest.mark.parametrize("ref", ENDPOINTS, ids=IDS)
def test_missing_scopes_deny_with_ready_403(stub, ref):
    required = ref["required_scopes"]
    unrelated = "activity_log:read" if "activity_log:read" not in required else "users:read"
    response = check(stub, token(unrelated), ref["method"], concrete(ref["path"]))
    assert not response.allowed
    assert response.reason == pb.REASON_INSUFFICIENT_SCOPE
    assert response.endpoint == f"{ref['method']} {ref['path']}"
    assert list(response.missing_scopes) == required
    assert response.deny.http_status == 403
    assert response.deny.www_authenticate == (
        f'Bearer error="insufficient_scope", error_description="Insufficient scope", scope="{" ".join(required)}"'
    )
    body = json.loads(response.deny.body)
    assert body == {
        "title": "Insufficient scope",
        "message": "This operation requires the scopes listed in the 'required_scopes' array.",
        "required_scopes": required,
    }


@pytest.mark.parametrize("ref", ENDPOINTS, ids=IDS)
def test_write_satisfies_read_never_the_reverse(stub, engine, ref):
    for scope in ref["required_scopes"]:
        domain, level = scope.rsplit(":", 1)
        sibling = f"{domain}:{'write' if level == 'read' else 'read'}"
        if sibling not in engine.catalog.scopes:
            continue
        others = [s for s in ref["required_scopes"] if s != scope]
        response = check(stub, token(sibling, *others), ref["method"], concrete(ref["path"]))
        if level == "read":
            assert response.allowed, f"{sibling} must satisfy {scope}"
        else:
            assert not response.allowed, f"{sibling} must not satisfy {scope}"
            assert list(response.missing_scopes) == [scope]


@pytest.mark.parametrize("ref", ENDPOINTS, ids=IDS)
def test_legacy_and_migrated_tokens_decide_alike(stub, ref):
    legacy_by_format = token(fmt=pb.TOKEN_FORMAT_LEGACY)
    legacy_by_time = token(issued=LEGACY_TIME)
    path = concrete(ref["path"])
    for legacy in (legacy_by_format, legacy_by_time):
        response = check(stub, legacy, ref["method"], path)
        assert response.allowed and response.reason == pb.REASON_ALLOWED_LEGACY_TOKEN
        assert response.token_format == pb.TOKEN_FORMAT_LEGACY
        migrated = stub.MigrateToken(legacy)
        assert migrated.format == pb.TOKEN_FORMAT_SCOPED
        after = check(stub, migrated, ref["method"], path)
        assert after.allowed == response.allowed
        assert after.reason == pb.REASON_ALLOWED


def test_no_scopes_scoped_token_has_no_access(stub):
    for tok in (token(), token(issued=SCOPED_TIME), token(fmt=pb.TOKEN_FORMAT_SCOPED)):
        response = check(stub, tok, "GET", "/users/me")
        assert not response.allowed and response.reason == pb.REASON_NO_SCOPES
        assert "request" in response.message and "approve" in response.message
        assert list(response.missing_scopes) == ["users:read"]
        assert response.deny.http_status == 403
    pat = check(stub, token(kind=pb.TOKEN_KIND_PERSONAL_ACCESS_TOKEN), "GET", "/users/me")
    assert "personal access token" in pat.message


def test_unknown_scopes_grant_nothing_and_are_reported(stub):
    response = check(stub, token("invitees:read", "users:write", "SCHEDULED_EVENTS:READ", "users:read"), "GET",
                     "/scheduled_events/x/invitees")
    assert not response.allowed and response.reason == pb.REASON_INSUFFICIENT_SCOPE
    assert list(response.unknown_scopes) == ["invitees:read", "users:write", "SCHEDULED_EVENTS:READ"]
    assert list(response.missing_scopes) == ["scheduled_events:read"]


def test_missing_scopes_are_minimal(engine):
    from scopesvc.policy import Token

    # An endpoint that lists both levels of a domain needs only the write scope added.
    decision = engine.check(Token(("users:read",)), "GET", "/scheduled_events")
    assert decision.missing_scopes == ("scheduled_events:read",)


def test_unknown_endpoint_and_malformed_path_deny_with_own_reason(stub):
    everything = token("scheduled_events:write", "users:read")
    unknown = check(stub, everything, "GET", "/nope")
    assert (unknown.allowed, unknown.reason, unknown.deny.http_status) == (False, pb.REASON_UNKNOWN_ENDPOINT, 403)
    lower = check(stub, everything, "get", "/users/me")
    assert lower.reason == pb.REASON_UNKNOWN_ENDPOINT and "case-sensitive" in lower.message
    wrong_method = check(stub, everything, "DELETE", "/users/me")
    assert wrong_method.reason == pb.REASON_UNKNOWN_ENDPOINT
    for path in ("/users/../users/me", "/users/%2e%2e/me", "/users%2Fme", "//users/me", "/users/%zz", "/users/me#x"):
        response = check(stub, everything, "GET", path)
        assert (response.allowed, response.reason, response.deny.http_status) == (False, pb.REASON_MALFORMED_PATH, 400), path


def test_legacy_still_denied_on_unknown_endpoint(stub):
    response = check(stub, token(fmt=pb.TOKEN_FORMAT_LEGACY), "GET", "/admin")
    assert not response.allowed and response.reason == pb.REASON_UNKNOWN_ENDPOINT


def test_unknown_token_format_denied(stub):
    response = check(stub, pb.Token(scopes=["users:read"], format=7), "GET", "/users/me")  # type: ignore[arg-type]
    assert not response.allowed and response.reason == pb.REASON_UNKNOWN_TOKEN_FORMAT
    assert response.deny.http_status == 401


def test_issue_time_decides_format_when_unspecified(stub):
    at_cutover = 1_772_496_000  # 2026-03-03T00:00:00Z: scoped from this instant on
    before = check(stub, token(issued=at_cutover - 1), "GET", "/users/me")
    after = check(stub, token(issued=at_cutover), "GET", "/users/me")
    assert before.allowed and before.token_format == pb.TOKEN_FORMAT_LEGACY
    assert not after.allowed and after.token_format == pb.TOKEN_FORMAT_SCOPED
    explicit = check(stub, token(fmt=pb.TOKEN_FORMAT_SCOPED, issued=LEGACY_TIME), "GET", "/users/me")
    assert not explicit.allowed, "an explicit format wins over the issue time"


def test_head_matches_get_and_static_beats_param(stub):
    head = check(stub, token("users:read"), "HEAD", "/users/me")
    assert head.allowed and head.endpoint == "GET /users/me"
    me = check(stub, token("users:read"), "GET", "/users/me/")
    assert me.endpoint == "GET /users/me", "trailing slash is stripped"
    custom = check(stub, token("contacts:read"), "GET", "/contacts/custom_field_definitions")
    assert custom.endpoint == "GET /contacts/custom_field_definitions"
    contact = check(stub, token("contacts:read"), "GET", "/contacts/abc")
    assert contact.endpoint == "GET /contacts/{uuid}"


def test_check_batch_in_order(stub):
    requests = [
        pb.CheckRequest(token=token("users:read"), method="GET", path="/users/me"),
        pb.CheckRequest(token=token("users:read"), method="POST", path="/invitees"),
        pb.CheckRequest(token=token(fmt=pb.TOKEN_FORMAT_LEGACY), method="POST", path="/invitees"),
    ]
    results = stub.CheckBatch(pb.CheckBatchRequest(checks=requests)).results
    assert [r.allowed for r in results] == [True, False, True]
    assert results[1].missing_scopes == ["scheduled_events:write"]
    assert all(r.catalog_revision.startswith("2026-11-19+") for r in results)
