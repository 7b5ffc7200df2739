"""The catalog format's any-of requirements, public endpoints, webhook levels and rich templates (issue 16)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from scopesvc import convert
from scopesvc.policy import CatalogError, Engine, Reason, RequestError, Token, TokenFormat, compile_catalog

SCOPES = [{"name": n} for n in ("mail.read", "mail.write", "mail.full", "drive", "drive.file", "admin", "x:read",
                                "x:write", "hooks")]


def engine(*endpoints: dict[str, Any], webhooks: dict[str, Any] | None = None, **extra: Any) -> Engine:
    doc: dict[str, Any] = {"format": "scopesvc.catalog/v1", "name": "alt", "scopes": SCOPES,
                           "endpoints": list(endpoints), **extra}
    if webhooks is not None:
        doc["webhooks"] = webhooks
    return Engine(compile_catalog(doc))


def problems(*endpoints: dict[str, Any], **extra: Any) -> list[str]:
    with pytest.raises(CatalogError) as info:
        engine(*endpoints, **extra)
    return [p.reason for p in info.value.problems]


LIST = {"method": "GET", "path": "/messages", "any_of": [["mail.full"], ["mail.read"], ["mail.write", "drive"]]}
PING = {"method": "GET", "path": "/ping", "public": True}
ME = {"method": "GET", "path": "/me", "scopes": []}


# -- any_of ---------------------------------------------------------------------------------

def test_any_one_alternative_allows_and_names_the_one_met() -> None:
    e = engine(LIST)
    for scopes, alternative in ((("mail.read",), ("mail.read",)), (("mail.full",), ("mail.full",)),
                                (("drive", "mail.write"), ("mail.write", "drive"))):
        decision = e.check(Token(scopes), "GET", "/messages")
        assert decision.allowed and decision.reason == Reason.ALLOWED
        assert decision.required_scopes == alternative
    assert not e.check(Token(("mail.write",)), "GET", "/messages").allowed


def test_missing_scopes_complete_the_closest_alternative_and_the_answer_names_it() -> None:
    e = engine(LIST)
    # mail.write is one scope short of [mail.write, drive]: one to add, as [mail.full] or [mail.read]
    # would need; among as few, the alternative granting the fewest scopes, then catalog order.
    decision = e.check(Token(("mail.write",)), "GET", "/messages")
    assert decision.reason == Reason.INSUFFICIENT_SCOPE
    assert decision.missing_scopes == ("mail.full",) and decision.required_scopes == ("mail.full",)
    decision = e.check(Token(("drive",)), "GET", "/messages")
    assert decision.missing_scopes == ("mail.full",)
    assert decision.www_authenticate == (
        'Bearer error="insufficient_scope", error_description="Insufficient scope", scope="mail.full"')
    assert json.loads(decision.body)["required_scopes"] == ["mail.full"]
    response = convert.check_response(decision, "r")
    assert list(response.required_scopes) == ["mail.full"]
    assert [list(s.scopes) for s in response.required_any_of] == [["mail.full"], ["mail.read"], ["mail.write", "drive"]]


def test_ties_prefer_the_alternative_granting_less_then_catalog_order() -> None:
    e = engine({"method": "GET", "path": "/x", "any_of": [["x:write"], ["x:read"]]},
               {"method": "GET", "path": "/y", "any_of": [["drive"], ["drive.file"]]})
    assert e.check(Token(("admin",)), "GET", "/x").missing_scopes == ("x:read",)  # x:write would grant x:read too
    assert e.check(Token(("admin",)), "GET", "/y").missing_scopes == ("drive",)  # equal: the first listed


def test_no_scopes_on_an_any_of_endpoint_names_one_alternative() -> None:
    decision = engine(LIST).check(Token(()), "GET", "/messages")
    assert decision.reason == Reason.NO_SCOPES and decision.required_scopes == ("mail.full",)
    assert json.loads(decision.body)["required_scopes"] == ["mail.full"]


def test_single_set_endpoints_answer_as_before() -> None:
    e = engine({"method": "GET", "path": "/a", "scopes": ["x:read", "drive"]})
    decision = e.check(Token(("x:read",)), "GET", "/a")
    assert decision.required_scopes == ("x:read", "drive") and decision.missing_scopes == ("drive",)
    assert [list(s.scopes) for s in convert.check_response(decision, "r").required_any_of] == [["x:read", "drive"]]


# -- public ---------------------------------------------------------------------------------

def test_public_needs_no_token_and_scopes_empty_needs_one() -> None:
    e = engine(PING, ME)
    anonymous = e.check(None, "GET", "/ping")
    assert anonymous.allowed and anonymous.reason == Reason.ALLOWED_PUBLIC == 14
    assert e.check(Token(()), "GET", "/ping").allowed
    assert e.check(Token(("junk",), format=7), "GET", "/ping").reason == Reason.ALLOWED_PUBLIC
    assert e.check(None, "GET", "/me").reason == Reason.MISSING_TOKEN
    assert e.check(Token(()), "GET", "/me").reason == Reason.NO_SCOPES
    assert e.check(Token(("drive",)), "GET", "/me").allowed
    info = convert.catalog_info(e)
    assert [(p.path, p.public, len(p.required_any_of)) for p in info.endpoints] == [("/ping", True, 0), ("/me", False, 1)]


def test_exactly_one_requirement_per_endpoint() -> None:
    assert any("not both" in p for p in problems({**PING, "scopes": ["drive"]}))
    assert any("not both" in p for p in problems({**LIST, "scopes": ["drive"]}))
    assert any("'scopes' is required" in p for p in problems({"method": "GET", "path": "/a"}))
    assert any("non-empty list" in p for p in problems({"method": "GET", "path": "/a", "any_of": []}))
    assert any("non-empty list" in p for p in problems({"method": "GET", "path": "/a", "any_of": ["drive"]}))
    assert any("repeats alternative 0" in p for p in problems({"method": "GET", "path": "/a",
                                                               "any_of": [["drive", "admin"], ["admin", "drive"]]}))
    assert any("unknown scope 'drvie'" in p and "did you mean 'drive'" in p
               for p in problems({"method": "GET", "path": "/a", "any_of": [["admin"], ["drvie"]]}))
    assert any("true or false" in p for p in problems({"method": "GET", "path": "/a", "public": "yes"}))


# -- Plan, MigrateToken, Diagnose ---------------------------------------------------------------

def test_plan_finds_the_fewest_scopes_across_alternatives() -> None:
    e = engine(LIST, {"method": "POST", "path": "/messages", "any_of": [["mail.full"], ["mail.write"]]},
               {"method": "GET", "path": "/files", "any_of": [["drive"], ["drive.file"], ["mail.full", "admin"]]})
    # One scope covers both mail endpoints; per endpoint, the first fits would be two.
    assert e.plan(["GET /messages", "POST /messages"]).scopes == ("mail.full",)
    # Two scopes either way, none granting more than another: the first alternatives listed.
    assert e.plan(["GET /messages", "GET /files"]).scopes == ("mail.full", "drive")
    assert e.plan(["GET /files", "GET /messages"]).scopes == ("mail.full", "drive")
    plan = e.plan(["GET /messages", "POST /messages"], ["mail.read"])
    assert plan.missing_from_existing == ("mail.full",)
    assert [u.needed_by for u in plan.uses] == [("GET /messages", "POST /messages")]


def test_migrated_legacy_token_covers_every_alternative_bearing_endpoint() -> None:
    e = engine(LIST, {"method": "GET", "path": "/files", "any_of": [["drive"], ["drive.file"]]}, PING, ME)
    migrated = e.migrate(Token((), TokenFormat.LEGACY))
    assert migrated.scopes == ("mail.full", "drive")
    for endpoint in e.catalog.endpoints:
        assert e.check(migrated, endpoint.method, endpoint.template).allowed, endpoint.key


def test_diagnose_looks_at_the_alternative_the_install_comes_closest_to() -> None:
    diagnosis = engine(LIST).diagnose(["mail.write", "drive"], ["mail.write"], "GET", "/messages")
    assert diagnosis.required_scopes == ("mail.full",)
    public = engine(PING).diagnose([], [], "GET", "/ping")
    assert public.required_scopes == () and not public.needs_reauthorization


# -- webhooks ---------------------------------------------------------------------------------

HOOKS = {"subscribe_scope": "hooks", "subscription_levels": ["account", "project"],
         "events": [{"name": "mail.received", "any_of": [["mail.read"], ["mail.full"]]},
                    {"name": "file.changed", "scope": "drive", "subscription_scopes": ["project"]}]}


def test_event_alternatives_and_declared_levels() -> None:
    e = engine(LIST, webhooks=HOOKS)
    assert e.catalog.subscription_levels == ("account", "project")
    assert e.catalog.events["mail.received"].subscription_scopes == ("account", "project")  # default: all declared
    assert e.check_delivery(Token(("mail.full",)), "mail.received").allowed
    assert e.check_subscription(Token(("hooks", "mail.read")), ["mail.received"], "account").allowed
    denied = e.check_subscription(Token(("hooks",)), ["mail.received", "file.changed"], "project")
    assert denied.missing_scopes == ("mail.read", "drive")
    assert e.check_subscription(Token(("hooks", "drive")), ["file.changed"], "account").reason == \
        Reason.SUBSCRIPTION_SCOPE_NOT_ALLOWED
    with pytest.raises(RequestError) as info:
        e.check_subscription(Token(("hooks",)), ["file.changed"], "organization")
    assert info.value.field == "subscription_scope" and "account, project" in info.value.reason
    legacy = e.migrate(Token((), TokenFormat.LEGACY))
    assert e.check_subscription(legacy, ["mail.received", "file.changed"], "project").allowed
    info_event = convert.catalog_info(e).events[0]
    assert list(info_event.subscription_levels) == ["account", "project"] and not info_event.subscription_scopes
    assert [list(s.scopes) for s in info_event.required_any_of] == [["mail.read"], ["mail.full"]]


def test_default_levels_are_calendlys_and_undeclared_levels_are_refused() -> None:
    e = engine(LIST, webhooks={"subscribe_scope": "hooks", "events": [{"name": "a.b", "scope": "drive"}]})
    assert e.catalog.subscription_levels == ("organization", "user", "group")
    assert e.catalog.events["a.b"].subscription_scopes == ("organization", "user", "group")
    bad = {**HOOKS, "events": [{"name": "a.b", "scope": "drive", "subscription_scopes": ["acount"]}]}
    assert any("did you mean 'account'" in p for p in problems(LIST, webhooks=bad))
    both = {**HOOKS, "events": [{"name": "a.b", "scope": "drive", "any_of": [["admin"]]}]}
    assert any("not both" in p for p in problems(LIST, webhooks=both))
    assert any("at least one" in p for p in problems(LIST, webhooks={**HOOKS, "subscription_levels": []}))


# -- templates --------------------------------------------------------------------------------

def test_rich_templates_match_with_a_literal_beating_a_parameter() -> None:
    e = engine({"method": "GET", "path": "/files/{id}", "scopes": ["drive"]},
               {"method": "GET", "path": "/files/{id}.json", "scopes": ["drive.file"]},
               {"method": "GET", "path": "/files/{id}/thumbnail.{extension}", "scopes": ["x:read"]},
               {"method": "POST", "path": "/v1/{name}:cancel", "scopes": ["admin"]},
               {"method": "GET", "path": "/v1/{name=**}", "scopes": ["mail.read"]},
               {"method": "POST", "path": "/v1/{name=**}:publish", "scopes": ["mail.write"]},
               {"method": "GET", "path": "/files/recent", "public": True})
    def key(method: str, path: str) -> str:
        return e.catalog.find_endpoint(method, path).key  # type: ignore[union-attr]
    assert key("GET", "/files/abc") == "GET /files/{id}"
    assert key("GET", "/files/abc.json") == "GET /files/{id}.json"
    assert key("GET", "/files/recent") == "GET /files/recent"
    assert key("GET", "/files/abc/thumbnail.png") == "GET /files/{id}/thumbnail.{extension}"
    assert e.catalog.find_endpoint("GET", "/files/abc/thumbnail.") is None  # a parameter is never empty
    assert key("POST", "/v1/job7:cancel") == "POST /v1/{name}:cancel"
    assert key("GET", "/v1/projects/p/topics/t") == "GET /v1/{name=**}"
    assert key("POST", "/v1/projects/p/topics/t:publish") == "POST /v1/{name=**}:publish"
    assert e.catalog.find_endpoint("GET", "/v1") is None  # one or more segments
    assert e.catalog.find_target("GET", "/v1/{name=**}").key == "GET /v1/{name=**}"  # type: ignore[union-attr]
    assert e.plan(["POST /v1/{name=**}:publish"]).scopes == ("mail.write",)


def test_case_insensitive_static_segments() -> None:
    endpoint = {"method": "GET", "path": "/Accounts/{id}/Report.json", "scopes": ["admin"]}
    e = engine(endpoint, paths={"case_insensitive": True})
    assert e.check(Token(("admin",)), "GET", "/accounts/AbC/REPORT.JSON").allowed
    assert engine(endpoint).catalog.find_endpoint("GET", "/accounts/AbC/Report.json") is None
    same = {"method": "GET", "path": "/accounts/{x}/report.json", "scopes": ["drive"]}
    assert any("duplicate endpoint" in p or "conflicts with" in p
               for p in problems(endpoint, same, paths={"case_insensitive": True}))


def test_templates_no_rule_can_order_are_refused_naming_both() -> None:
    found = problems({"method": "GET", "path": "/a/x{id}", "scopes": []},
                     {"method": "POST", "path": "/a/{id}y", "scopes": []})
    assert any("cannot be told apart from /a/x{id}" in p for p in found)
    for bad in ("/a/{x}{y}", "/a/{x=**}/b", "/a/p{x=**}", "/a/{x=*}"):
        assert problems({"method": "GET", "path": bad, "scopes": []}), bad


def test_a_subscription_names_its_level_by_enum_or_by_name() -> None:
    from scopesvc.v1 import scopesvc_pb2 as pb

    assert convert.subscription_level(pb.WebhookSubscriptionRequest(subscription_level="project")) == "project"
    assert convert.subscription_level(pb.WebhookSubscriptionRequest(subscription_scope=2)) == "user"
    assert convert.subscription_level(pb.WebhookSubscriptionRequest(subscription_scope=2,
                                                                    subscription_level="user")) == "user"
    for request, field in ((pb.WebhookSubscriptionRequest(), "subscription_scope"),
                           (pb.WebhookSubscriptionRequest(subscription_scope=9), "subscription_scope"),  # type: ignore[arg-type]
                           (pb.WebhookSubscriptionRequest(subscription_scope=1, subscription_level="user"),
                            "subscription_level")):
        with pytest.raises(RequestError) as info:
            convert.subscription_level(request)
        assert info.value.field == field
