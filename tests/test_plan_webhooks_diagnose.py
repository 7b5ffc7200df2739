"""Plan, webhook and diagnosis RPCs through the real gRPC server."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import grpc
import pytest

from scopesvc.v1 import scopesvc_pb2 as pb

from .helpers import bad_request_field, token


def plan(stub, *features: str, **kwargs) -> pb.PlanResponse:  # type: ignore[no-untyped-def]
    return stub.Plan(pb.PlanRequest(features=features, **kwargs))


def test_plan_sync_basic_scheduling_data(stub):
    response = plan(stub, "sync-basic-scheduling-data")
    assert list(response.scopes) == ["event_types:read", "scheduled_events:read", "users:read"]
    assert list(response.optional_scopes) == ["availability:read"]
    needed = {u.scope: list(u.needed_by) for u in response.uses}
    assert needed["users:read"] == ["sync-basic-scheduling-data"]


def test_plan_never_read_beside_write(stub):
    response = plan(stub, "GET /scheduled_events", "POST /invitees", "GET /contacts", "POST /contacts")
    assert list(response.scopes) == ["scheduled_events:write", "contacts:write"]


def test_plan_event_needs_subscription_scope_and_read_scope(stub):
    response = plan(stub, "invitee.created")
    assert sorted(response.scopes) == ["scheduled_events:read", "webhooks:write"]


def test_plan_optional_scopes_implied_by_required_are_dropped(stub):
    response = plan(stub, "scheduling-api-booking")
    assert "scheduled_events:write" in response.scopes
    assert "scheduled_events:write" not in response.optional_scopes
    assert list(response.optional_scopes) == ["locations:read"]


def test_plan_over_broad_and_missing_from_existing(stub):
    response = plan(stub, "activity-log-export", existing_scopes=["activity_log:read", "users:read", "organizations:write",
                                                                   "made:up"])
    assert [(o.scope, "no requested feature" in o.note) for o in response.over_broad] == [("organizations:write", True)]
    assert list(response.missing_from_existing) == []
    assert list(response.unknown_scopes) == ["made:up"]
    broader = plan(stub, "GET /scheduled_events", existing_scopes=["scheduled_events:write"])
    assert broader.over_broad[0].scope == "scheduled_events:write"
    assert "scheduled_events:read suffices" in broader.over_broad[0].note
    lacking = plan(stub, "realtime-invitee-notifications", existing_scopes=["users:read"])
    assert list(lacking.missing_from_existing) == ["scheduled_events:read", "webhooks:write"]


def test_plan_invitees_read_is_mapped_with_a_note(stub):
    response = plan(stub, "invitees:read", existing_scopes=["invitees:read"])
    assert list(response.scopes) == ["scheduled_events:read"]
    assert "invitees:read" in response.unknown_scopes
    assert any("not a real scope" in note and "scheduled_events:read" in note for note in response.notes)


def test_plan_authorize_url(stub):
    response = plan(stub, "single-use-links", client_id="client 1", redirect_uri="https://app.example/cb?x=1",
                    state="s&t", code_challenge="abc")
    url = urlsplit(response.authorize_url)
    assert f"{url.scheme}://{url.netloc}{url.path}" == "https://auth.calendly.com/oauth/authorize"
    assert "scope=event_types:read%20scheduling_links:write" in url.query
    query = parse_qs(url.query)
    assert query == {
        "client_id": ["client 1"], "redirect_uri": ["https://app.example/cb?x=1"], "response_type": ["code"],
        "scope": ["event_types:read scheduling_links:write"], "state": ["s&t"], "code_challenge": ["abc"],
        "code_challenge_method": ["S256"],
    }
    assert plan(stub, "single-use-links").authorize_url == ""


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"features": []}, "features"),
        ({"features": ["no-such-feature"]}, "features[0]"),
        ({"features": ["users:read", "GET /nope"]}, "features[1]"),
        ({"features": ["users:read"], "client_id": "c", "redirect_uri": "not a uri"}, "redirect_uri"),
        ({"features": ["users:read"], "redirect_uri": "https://a.example/cb"}, "client_id"),
        ({"features": ["x" * 9000]}, "features[0]"),
    ],
)
def test_plan_bad_input_is_invalid_argument(stub, kwargs, field):
    with pytest.raises(grpc.RpcError) as info:
        stub.Plan(pb.PlanRequest(**kwargs))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_field(info.value) == field
    assert field in info.value.details()


def subscription(stub, tok, events, at=pb.SUBSCRIPTION_SCOPE_USER):  # type: ignore[no-untyped-def]
    return stub.CheckWebhookSubscription(pb.WebhookSubscriptionRequest(token=tok, events=events, subscription_scope=at))


def test_webhook_subscription_needs_write_and_each_read_scope(stub):
    ok = subscription(stub, token("webhooks:write", "scheduled_events:read"), ["invitee.created", "invitee.canceled"])
    assert ok.allowed and ok.reason == pb.REASON_ALLOWED
    no_write = subscription(stub, token("webhooks:read", "scheduled_events:write"), ["invitee.created"])
    assert not no_write.allowed and list(no_write.missing_scopes) == ["webhooks:write"]
    no_read = subscription(stub, token("webhooks:write"), ["invitee.created", "event_type.created"])
    assert list(no_read.missing_scopes) == ["event_types:read", "scheduled_events:read"]
    assert sorted(no_read.required_scopes) == ["event_types:read", "scheduled_events:read", "webhooks:write"]


def test_webhook_subscription_scope_rules(stub):
    everything = token(fmt=pb.TOKEN_FORMAT_LEGACY)
    mixed = subscription(stub, everything, ["invitee.created", "routing_form_submission.created"])
    assert not mixed.allowed and mixed.reason == pb.REASON_SUBSCRIPTION_SCOPE_NOT_ALLOWED
    assert [(d.event, list(d.allowed)) for d in mixed.disallowed_events] == [
        ("routing_form_submission.created", [pb.SUBSCRIPTION_SCOPE_ORGANIZATION])
    ]
    recap_org = subscription(stub, everything, ["meeting_recap.created"], pb.SUBSCRIPTION_SCOPE_ORGANIZATION)
    assert not recap_org.allowed
    assert subscription(stub, everything, ["meeting_recap.created"]).allowed
    unknown = subscription(stub, everything, ["invitee.exploded"])
    assert unknown.reason == pb.REASON_UNKNOWN_EVENT and list(unknown.unknown_events) == ["invitee.exploded"]


def test_webhook_subscription_bad_input(stub):
    for kwargs, field in (
        ({"token": token("webhooks:write"), "events": [], "subscription_scope": 1}, "events"),
        ({"token": token("webhooks:write"), "events": ["invitee.created"]}, "subscription_scope"),
        ({"events": ["invitee.created"], "subscription_scope": 1}, "token"),
    ):
        with pytest.raises(grpc.RpcError) as info:
            stub.CheckWebhookSubscription(pb.WebhookSubscriptionRequest(**kwargs))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert bad_request_field(info.value) == field


def test_webhook_delivery(stub):
    def deliver(tok, event):  # type: ignore[no-untyped-def]
        return stub.CheckWebhookDelivery(pb.WebhookDeliveryRequest(token=tok, event=event))

    assert deliver(token("contacts:write"), "contact.updated").allowed
    denied = deliver(token("webhooks:write", "users:read"), "meeting_recap.created")
    assert not denied.allowed and list(denied.missing_scopes) == ["meeting_recaps:read"]
    assert deliver(token(issued=1_600_000_000), "meeting_recap.created").allowed
    assert deliver(token("users:read"), "nope.created").reason == pb.REASON_UNKNOWN_EVENT


def diagnose(stub, **kwargs) -> pb.DiagnoseResponse:  # type: ignore[no-untyped-def]
    return stub.Diagnose(pb.DiagnoseRequest(**kwargs))


def test_diagnose_not_requested_vs_declined(stub):
    response = diagnose(stub, requested_scopes=["users:read", "scheduled_events:read"], granted_scopes=["users:read"],
                        method="GET", path="/scheduled_events/abc/invitees")
    assert response.target == "GET /scheduled_events/{uuid}/invitees"
    assert [(m.scope, m.cause) for m in response.missing] == [("scheduled_events:read", pb.CAUSE_DECLINED)]
    assert response.needs_reauthorization
    never = diagnose(stub, requested_scopes=["users:read"], granted_scopes=["users:read"], method="POST", path="/invitees")
    assert [(m.scope, m.cause) for m in never.missing] == [("scheduled_events:write", pb.CAUSE_NOT_REQUESTED)]
    assert any("add scheduled_events:write" in step for step in never.steps)
    assert any("re-authoriz" in step for step in never.steps)


def test_diagnose_requested_write_covers_needed_read(stub):
    response = diagnose(stub, requested_scopes=["scheduled_events:write"], granted_scopes=[], method="GET",
                        path="/scheduled_events")
    assert [(m.scope, m.cause) for m in response.missing] == [("scheduled_events:read", pb.CAUSE_DECLINED)]


def test_diagnose_webhook_event_and_nothing_missing(stub):
    response = diagnose(stub, requested_scopes=["webhooks:write", "contacts:read"], granted_scopes=["contacts:read"],
                        event="contact.created")
    assert [(m.scope, m.cause) for m in response.missing] == [("webhooks:write", pb.CAUSE_DECLINED)]
    fine = diagnose(stub, requested_scopes=["users:read"], granted_scopes=["users:read"], method="GET", path="/users/me")
    assert not fine.missing and not fine.needs_reauthorization and "cover" in fine.summary


def test_diagnose_bad_input(stub):
    for kwargs, field in (
        ({"requested_scopes": ["users:read"]}, "target"),
        ({"method": "GET", "path": "/nope"}, "path"),
        ({"event": "nope.created"}, "event"),
        ({"event": "contact.created", "method": "GET", "path": "/users/me"}, "event"),
        ({"method": "GET", "path": "/a/../b"}, "path"),
    ):
        with pytest.raises(grpc.RpcError) as info:
            diagnose(stub, **kwargs)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, kwargs
        assert bad_request_field(info.value) == field


def test_migrate_token(stub):
    legacy = stub.MigrateToken(token("users:read", issued=1_600_000_000, kind=pb.TOKEN_KIND_PERSONAL_ACCESS_TOKEN))
    assert legacy.format == pb.TOKEN_FORMAT_SCOPED and legacy.kind == pb.TOKEN_KIND_PERSONAL_ACCESS_TOKEN
    assert legacy.issued_at.seconds == 1_600_000_000
    scopes = set(legacy.scopes)
    assert "scheduled_events:write" in scopes and "scheduled_events:read" not in scopes
    assert {"shares:write", "activity_log:read", "webhooks:write"} <= scopes
    scoped = token("users:read", "made:up", fmt=pb.TOKEN_FORMAT_SCOPED)
    assert stub.MigrateToken(scoped) == scoped
    with pytest.raises(grpc.RpcError) as info:
        stub.MigrateToken(pb.Token(format=9))  # type: ignore[arg-type]
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and bad_request_field(info.value) == "format"
    with pytest.raises(grpc.RpcError) as info:
        stub.MigrateToken(pb.Token(scopes=["a:read"] * 1001))
    assert bad_request_field(info.value) == "scopes"
