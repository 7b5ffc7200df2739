"""The AuthZEN profile's mapping (scopesvc/gateway/authzen.py): what it reads, what it refuses, what it answers.

These call the mapping with a real Decider and engine; tests/test_gateway_authzen_http.py calls the
same through the real server over HTTP.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
from typing import Any

import pytest

from scopesvc.catalog import files as catalog_files
from scopesvc.decider import Decider
from scopesvc.gateway.authzen import Authzen, subject_token
from scopesvc.ops.cache import DecisionCache
from scopesvc.ops.metrics import Metrics
from scopesvc.ops.reload import EngineRef
from scopesvc.policy import Engine, RequestError, TokenFormat, TokenKind

ENGINE = Engine(catalog_files.load_default())


class Blocking:
    """An `Authzen` whose async API methods are called to completion (none does I/O without a verifier)."""

    def __init__(self, api: Authzen) -> None:
        self.api = api

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.api, name)
        if not inspect.iscoroutinefunction(value):
            return value
        return lambda *args, **kwargs: asyncio.run(value(*args, **kwargs))


def authzen(dry_run: bool = False) -> Any:
    return Blocking(Authzen(Decider(EngineRef(ENGINE), DecisionCache(100, 60), Metrics(), dry_run=dry_run)))


def request(scopes: Any = "users:read", method: str = "GET", path: str = "/users/me", **extra: Any) -> dict:
    return {"subject": {"type": "token", "id": "user-1", "properties": {"scopes": scopes}},
            "action": {"name": method}, "resource": {"type": "endpoint", "id": path}, **extra}


def refused(call: Any, body: Any) -> str:
    with pytest.raises(RequestError) as error:
        call(body)
    return error.value.field


def test_allowed_and_denied_answers() -> None:
    api = authzen()
    assert api.evaluation(request()) == {"decision": True, "context": {
        "reason": "ALLOWED", "catalog_revision": ENGINE.catalog.revision, "endpoint": "GET /users/me"}}
    denied = api.evaluation(request("users:read", "POST", "/scheduling_links"))
    assert denied["decision"] is False
    context = denied["context"]
    assert context["reason"] == "INSUFFICIENT_SCOPE" and context["missing_scopes"] == ["scheduling_links:write"]
    assert context["status"] == 403 and 'scope="scheduling_links:write"' in context["www_authenticate"]
    assert set(context) == {"reason", "catalog_revision", "endpoint", "missing_scopes", "message", "status",
                            "www_authenticate"}


def test_scopes_as_list_or_string_templates_and_properties_path() -> None:
    api = authzen()
    assert api.evaluation(request(["scheduled_events:read"], path="/scheduled_events/AB12"))["decision"]
    assert api.evaluation(request("users:read scheduled_events:read", path="/scheduled_events/{uuid}"))["decision"]
    body = request("scheduled_events:read", path="opaque-id")
    body["resource"]["properties"] = {"path": "/scheduled_events/AB12", "method": "get"}
    assert api.evaluation(body)["context"]["endpoint"] == "GET /scheduled_events/{uuid}"
    assert api.evaluation(request(method="get"))["decision"]  # methods are upper-cased


def test_token_properties() -> None:
    token = subject_token({"properties": {"scopes": ["a", "a", "b"], "token_format": "legacy",
                                          "token_kind": "personal_access_token", "issued_at": 1_700_000_000}})
    assert token.scopes == ("a", "b") and token.format == TokenFormat.LEGACY
    assert token.kind == TokenKind.PERSONAL_ACCESS_TOKEN and token.issued_at.year == 2023
    assert subject_token({"properties": {"scopes": "", "issued_at": "2026-09-21T00:00:00Z"}}).issued_at.month == 9


@pytest.mark.parametrize(("change", "field"), [
    (lambda r: r.pop("subject"), "subject"),
    (lambda r: r.update(subject="alice"), "subject"),
    (lambda r: r["subject"].pop("id"), "subject.id"),
    (lambda r: r["subject"].update(id=7), "subject.id"),
    (lambda r: r["subject"].pop("type"), "subject.type"),
    (lambda r: r["subject"].pop("properties"), "subject.properties.scopes"),
    (lambda r: r["subject"]["properties"].update(scopes=["a", 1]), "subject.properties.scopes"),
    (lambda r: r["subject"]["properties"].update(scopes={"a": 1}), "subject.properties.scopes"),
    (lambda r: r["subject"]["properties"].update(scopes=["s"] * 1001), "subject.properties.scopes"),
    (lambda r: r["subject"]["properties"].update(token_format="opaque"), "subject.properties.token_format"),
    (lambda r: r["subject"]["properties"].update(issued_at="yesterday"), "subject.properties.issued_at"),
    (lambda r: r["subject"]["properties"].update(issued_at="2026-01-01T00:00:00"), "subject.properties.issued_at"),
    (lambda r: r["subject"]["properties"].update(issued_at=1e300), "subject.properties.issued_at"),
    (lambda r: r["subject"]["properties"].update(issued_at=True), "subject.properties.issued_at"),
    (lambda r: r["subject"]["properties"].update(token="eyJ..."), "subject.properties.token"),
    (lambda r: r["subject"]["properties"].pop("scopes") and r["subject"]["properties"].update(token="x"),
     "subject.properties.token"),
    (lambda r: r.pop("action"), "action"),
    (lambda r: r["action"].update(name=""), "action.name"),
    (lambda r: r["action"].update(name="can_read"), "action.name"),
    (lambda r: r["action"].update(name="G" * 33), "action.name"),
    (lambda r: r["resource"].update(type="document"), "resource.type"),
    (lambda r: r["resource"].pop("id"), "resource.id"),
    (lambda r: r["resource"].update(id=["/users/me"]), "resource.id"),
    (lambda r: r["resource"].update(properties={"method": "POST"}), "resource.properties.method"),
    (lambda r: r["resource"].update(properties=[]), "resource.properties"),
    (lambda r: r.update(context="now"), "context"),
])
def test_what_the_profile_refuses_names_the_field(change: Any, field: str) -> None:
    body = copy.deepcopy(request())
    change(body)
    assert refused(authzen().evaluation, body) == field


def test_not_an_object_at_all() -> None:
    for body in ([], "x", 1, None):
        assert refused(authzen().evaluation, body) == "request"
        assert refused(authzen().evaluations, body) == "request"


def test_evaluations_defaults_and_semantics() -> None:
    api = authzen()
    items = [{"resource": {"type": "endpoint", "id": "/users/me"}},
             {"resource": {"type": "endpoint", "id": "/scheduling_links"}, "action": {"name": "POST"}},
             {"resource": {"type": "endpoint", "id": "/users/AB12"}}]
    body = {**request(), "evaluations": items}
    decisions = [e["decision"] for e in api.evaluations(body)["evaluations"]]
    assert decisions == [True, False, True]
    body["options"] = {"evaluations_semantic": "deny_on_first_deny"}
    assert [e["decision"] for e in api.evaluations(body)["evaluations"]] == [True, False]
    body["options"] = {"evaluations_semantic": "permit_on_first_permit"}
    assert [e["decision"] for e in api.evaluations(body)["evaluations"]] == [True]
    body["options"] = {"evaluations_semantic": "execute_all"}
    assert len(api.evaluations(body)["evaluations"]) == 3
    # Without evaluations[] it is the single evaluation.
    assert api.evaluations(request()) == api.evaluation(request())


def test_an_unreadable_item_is_its_own_closed_error_and_counts_as_a_deny() -> None:
    api = authzen()
    items = [{"resource": {"type": "endpoint", "id": "/users/me"}}, {"resource": {"type": "book", "id": "1"}},
             {"resource": {"type": "endpoint", "id": "/users/me"}}]
    results = api.evaluations({**request(), "evaluations": items})["evaluations"]
    assert results[1] == {"decision": False, "context": {"error": {
        "status": 400, "message": "evaluations[1].resource.type: must be 'endpoint' (this PDP decides on API "
                                  "endpoints), not 'book'"}}}
    assert [r["decision"] for r in results] == [True, False, True]
    first_deny = api.evaluations({**request(), "evaluations": items,
                                  "options": {"evaluations_semantic": "deny_on_first_deny"}})
    assert len(first_deny["evaluations"]) == 2


@pytest.mark.parametrize(("body", "field"), [
    ({"evaluations": {}}, "evaluations"),
    ({"evaluations": [{}] * 1001}, "evaluations"),
    ({"evaluations": [], "options": {"evaluations_semantic": "majority"}}, "options.evaluations_semantic"),
    ({"evaluations": [], "options": []}, "options"),
])
def test_a_batch_that_cannot_be_read_is_refused_whole(body: dict, field: str) -> None:
    assert refused(authzen().evaluations, body) == field


def test_evaluations_are_decided_by_the_decider() -> None:
    api = authzen()
    metrics = api.decider.metrics
    api.evaluations({**request(), "evaluations": [{}, {}]})
    api.evaluation(request())
    assert metrics.cache_misses.value + metrics.cache_hits.value == 3  # type: ignore[attr-defined]


def test_dry_run_allows_and_says_so() -> None:
    answer = authzen(dry_run=True).evaluation(request("users:read", "POST", "/scheduling_links"))
    assert answer["decision"] is True and answer["context"]["dry_run"] is True
    assert answer["context"]["reason"] == "INSUFFICIENT_SCOPE" and "status" not in answer["context"]


def test_every_search_result_evaluates_true() -> None:
    api = authzen()
    subject = request("scheduled_events:read users:read")["subject"]
    found = api.search_resource({"subject": subject, "action": {"name": "GET"}, "resource": {"type": "endpoint"}})
    ids = [r["id"] for r in found["results"]]
    assert "/users/me" in ids and "/scheduled_events/{uuid}" in ids and "/scheduling_links" not in ids
    assert found["page"] == {"next_token": "", "count": len(ids), "total": len(ids)}
    for template in ids:
        assert api.evaluation({"subject": subject, "action": {"name": "GET"},
                               "resource": {"type": "endpoint", "id": template}})["decision"]
    actions = api.search_action({"subject": subject, "resource": {"type": "endpoint", "id": "/users/me"}})
    assert actions["results"] == [{"name": "GET"}, {"name": "HEAD"}]
    for action in actions["results"]:
        assert api.evaluation({**request("scheduled_events:read users:read", action["name"])})["decision"]


def test_search_pages() -> None:
    api = authzen()
    body = {"subject": request("users:read scheduled_events:read")["subject"], "action": {"name": "GET"},
            "resource": {"type": "endpoint"}, "page": {"limit": 2}}
    first = api.search_resource(body)
    assert len(first["results"]) == 2 and first["page"]["next_token"] == "2"
    rest = api.search_resource({**body, "page": {"token": "2", "limit": 100}})
    assert rest["page"]["next_token"] == "" and rest["page"]["total"] == first["page"]["total"]
    assert refused(api.search_resource, {**body, "page": {"token": "abc"}}) == "page.token"
    assert refused(api.search_resource, {**body, "page": {"limit": -1}}) == "page.limit"


def test_metadata_names_the_endpoints_served() -> None:
    assert Authzen.metadata("https://pdp.example.com/") == {
        "policy_decision_point": "https://pdp.example.com",
        "access_evaluation_endpoint": "https://pdp.example.com/access/v1/evaluation",
        "access_evaluations_endpoint": "https://pdp.example.com/access/v1/evaluations",
        "search_resource_endpoint": "https://pdp.example.com/access/v1/search/resource",
        "search_action_endpoint": "https://pdp.example.com/access/v1/search/action",
    }
