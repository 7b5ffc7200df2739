"""The embedded default catalog holds exactly the reference Calendly API v2 model."""

from __future__ import annotations

import datetime as dt

from scopesvc.policy import Reason, Token
from scopesvc.v1 import scopesvc_pb2 as pb


def test_scopes_match_reference(engine, reference):
    catalog = engine.catalog
    assert [s["scope"] for s in reference["scopes"]] == list(catalog.scopes)
    assert len(catalog.scopes) == 23
    for ref in reference["scopes"]:
        scope = catalog.scopes[ref["scope"]]
        assert (scope.category, scope.description) == (ref["category"], ref["description"])


def test_endpoints_match_reference(engine, reference):
    ours = {(e.method, e.template): list(e.scopes) for e in engine.catalog.endpoints}
    theirs = {(e["method"], e["path"]): e["required_scopes"] for e in reference["endpoints"]}
    assert len(ours) == 75
    assert ours == theirs


def test_webhook_events_match_reference(engine, reference):
    ours = {n: (e.scope, list(e.subscription_scopes)) for n, e in engine.catalog.events.items()}
    theirs = {e["event"]: (e["required_read_scope"], e["subscription_scopes"]) for e in reference["webhook_events"]}
    assert len(ours) == 14
    assert ours == theirs
    assert engine.catalog.subscribe_scope == "webhooks:write"


def test_cutover_authorize_url_and_error_body(engine, reference):
    catalog = engine.catalog
    assert catalog.scopes_introduced_at == dt.datetime.fromisoformat(reference["scopes_introduced_at"]).replace(tzinfo=dt.timezone.utc)
    assert catalog.authorize_url == reference["authorize_url"]
    body = reference["insufficient_scope_error_body"]
    assert (catalog.error_body.title, catalog.error_body.message) == (body["title"], body["message"])


def test_scopes_page_paths_that_do_not_exist_are_not_endpoints(engine, reference):
    token = Token(scopes=tuple(engine.catalog.scopes))
    for item in reference["scopes_page_paths_not_in_api"]:
        method, path = item["scopes_page"].split(" ", 1)
        decision = engine.check(token, method, path)
        # Either no endpoint at all, or (GET /webhook_subscriptions/sample_data) a real template
        # whose parameter happens to match: never the scopes page's phantom template.
        assert decision.reason == Reason.UNKNOWN_ENDPOINT or decision.endpoint_key != item["scopes_page"], item
        real_method, real_path = item["api"].split(" ", 1)
        assert engine.check(token, real_method, real_path).allowed


def test_required_named_features_exist(engine):
    for name in (
        "sync-basic-scheduling-data", "realtime-invitee-notifications", "scheduling-api-booking",
        "manage-event-types", "single-use-links", "organization-user-provisioning", "activity-log-export",
        "data-deletion-requests", "contact-sync", "meeting-recaps",
    ):
        assert name in engine.catalog.features


def test_get_catalog_rpc(stub):
    info = stub.GetCatalog(pb.GetCatalogRequest())
    assert info.name == "calendly-api-v2"
    assert len(info.scopes) == 23 and len(info.endpoints) == 75 and len(info.events) == 14
    assert info.scopes_introduced_at.ToDatetime().date() == dt.date(2026, 3, 3)
    implies = {s.name: list(s.implies) for s in info.scopes}
    assert implies["contacts:write"] == ["contacts:read"]
    assert implies["shares:write"] == []
    assert "scheduled_events:read" not in info.legacy_equivalent_scopes
    assert "scheduled_events:write" in info.legacy_equivalent_scopes
