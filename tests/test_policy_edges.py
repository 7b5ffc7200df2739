"""The policy's edges (issue 14 section 3): no credentials, no scopes, migration, naive times, Plan and Diagnose."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from scopesvc.catalog import files as catalog_files
from scopesvc.policy import Engine, Reason, RequestError, Token, TokenFormat, compile_catalog
from scopesvc.policy.model import Cause

TASKS = Engine(catalog_files.load(str(catalog_files.builtin_path("example-tasks.yaml"))))


def catalog(*endpoints: dict, **extra: object) -> Engine:
    doc = {"format": "scopesvc.catalog/v1", "name": "edges", "oauth": {"scopes_introduced_at": "2026-03-03"},
           "scopes": [{"name": "a:read"}, {"name": "a:write"}], "endpoints": list(endpoints), **extra}
    return Engine(compile_catalog(doc))


# -- a request with no credentials --------------------------------------------------------

def test_no_token_is_missing_token_401_with_a_bare_realm_challenge(engine: Engine) -> None:
    decision = engine.check(None, "GET", "/users/me")
    assert not decision.allowed and decision.reason == Reason.MISSING_TOKEN == 11
    assert decision.http_status == 401
    assert decision.www_authenticate == 'Bearer realm="calendly-api-v2"'  # no error code: RFC 6750 section 3.1
    assert json.loads(decision.body) == {"title": "Unauthorized", "message": "this request carries no access token"}
    assert decision.endpoint_key == "GET /users/me"
    assert decision.token_format == TokenFormat.UNSPECIFIED and decision.unknown_scopes == ()


def test_no_token_on_an_unknown_endpoint_learns_nothing_but_a_malformed_path_is_400(engine: Engine) -> None:
    unknown = engine.check(None, "GET", "/no/such/thing")
    assert unknown.reason == Reason.MISSING_TOKEN and unknown.http_status == 401 and unknown.endpoint is None
    malformed = engine.check(None, "GET", "/users/%2e%2e/me")
    assert malformed.reason == Reason.MALFORMED_PATH and malformed.http_status == 400


# -- no scopes means no access ------------------------------------------------------------

@pytest.mark.parametrize("scopes", [("garbage",), ("",), ("invitees:read", "A:READ")])
def test_only_unknown_scopes_is_no_scopes_even_where_no_scope_is_required(scopes: tuple[str, ...]) -> None:
    decision = TASKS.check(Token(scopes), "GET", "/v2/me")  # declared `scopes: []`
    assert not decision.allowed and decision.reason == Reason.NO_SCOPES
    assert decision.unknown_scopes == tuple(dict.fromkeys(scopes))
    assert TASKS.check(Token(("tasks.read",) + scopes), "GET", "/v2/me").allowed


def test_diagnose_agrees_with_check_where_no_scope_is_required() -> None:
    # Check denies an install with no known scope even on a `scopes: []` endpoint: so must Diagnose.
    none = TASKS.diagnose(["garbage"], ["garbage"], "GET", "/v2/me")
    assert none.needs_reauthorization and none.missing == () and "no scope the catalog knows" in none.summary
    assert any("requested scopes" in step for step in none.steps)
    some = TASKS.diagnose(["tasks.read"], ["tasks.read"], "GET", "/v2/me")
    assert not some.needs_reauthorization and some.summary == "the granted scopes cover GET /v2/me"


def test_only_unknown_scopes_get_no_webhook_delivery(engine: Engine) -> None:
    delivery = engine.check_delivery(Token(("garbage",)), "invitee.created")
    assert not delivery.allowed and delivery.reason == Reason.NO_SCOPES


# -- migration never loses access -----------------------------------------------------------

def test_migrated_token_keeps_access_where_nothing_requires_a_scope() -> None:
    engine = catalog({"method": "GET", "path": "/me", "scopes": []}, {"method": "GET", "path": "/ping", "scopes": []})
    legacy = Token((), TokenFormat.LEGACY)
    migrated = engine.migrate(legacy)
    assert migrated.format == TokenFormat.SCOPED and migrated.scopes == ("a:read",)
    for path in ("/me", "/ping"):
        assert engine.check(legacy, "GET", path).allowed
        assert engine.check(migrated, "GET", path).allowed, path


def test_migrated_token_keeps_access_beside_endpoints_that_need_no_scope() -> None:
    migrated = TASKS.migrate(Token(("garbage",), TokenFormat.LEGACY))
    for endpoint in TASKS.catalog.endpoints:
        assert TASKS.check(migrated, endpoint.method, endpoint.template).allowed, endpoint.key


# -- issue times ----------------------------------------------------------------------------

def test_naive_issued_at_is_utc_and_never_raises(engine: Engine) -> None:
    before = Token(("users:read",), issued_at=dt.datetime(2026, 3, 2, 23, 59))
    after = Token(("users:read",), issued_at=dt.datetime(2026, 3, 3, 0, 0))
    assert engine.token_format(before) == TokenFormat.LEGACY
    assert engine.token_format(after) == TokenFormat.SCOPED
    assert engine.check(before, "DELETE", "/webhook_subscriptions/AB12").reason == Reason.ALLOWED_LEGACY_TOKEN
    assert engine.check(after, "DELETE", "/webhook_subscriptions/AB12").reason == Reason.INSUFFICIENT_SCOPE
    assert engine.check_delivery(before, "invitee.created").allowed
    assert engine.migrate(before).format == TokenFormat.SCOPED


# -- Plan and Diagnose ----------------------------------------------------------------------

def test_plan_never_calls_a_narrower_existing_scope_broader(engine: Engine) -> None:
    plan = engine.plan(["GET /scheduled_events", "POST /invitees"], ["scheduled_events:read"])
    assert plan.scopes == ("scheduled_events:write",)
    assert plan.over_broad == ()
    assert plan.missing_from_existing == ("scheduled_events:write",)
    broader = engine.plan(["GET /scheduled_events"], ["scheduled_events:write"])
    assert [(o.scope, o.note) for o in broader.over_broad] == [
        ("scheduled_events:write", "broader than needed: scheduled_events:read suffices")]


def test_diagnose_declined_names_the_scope_the_app_requested(engine: Engine) -> None:
    diagnosis = engine.diagnose(["scheduled_events:write"], [], "GET", "/scheduled_events")
    [missing] = diagnosis.missing
    assert (missing.scope, missing.cause) == ("scheduled_events:read", Cause.DECLINED)
    assert missing.action.startswith("the app requests scheduled_events:write (which grants scheduled_events:read)")
    assert "ask the user to approve scheduled_events:write" in diagnosis.steps
    same = engine.diagnose(["scheduled_events:read"], [], "GET", "/scheduled_events")
    assert same.missing[0].action.startswith("the app requests scheduled_events:read but")


def test_an_event_or_a_method_and_path_is_the_engines_rule(engine: Engine) -> None:
    with pytest.raises(RequestError) as both:
        engine.diagnose(["users:read"], [], "GET", "/users/me", "invitee.created")
    assert both.value.field == "event"
    with pytest.raises(RequestError) as path_only:
        engine.diagnose(["users:read"], [], "", "/users/me", "invitee.created")
    assert path_only.value.field == "event"
    with pytest.raises(RequestError) as neither:
        engine.diagnose(["users:read"], [])
    assert neither.value.field == "target"
