"""The AuthZEN Authorization API over HTTP: a real `scopesvc serve --authzen` process, asked with aiohttp's client.

The conformance tests walk the specification's own example request/response pairs (Authorization
API 1.0: access evaluation, access evaluations with defaults and each evaluations semantic, resource
and action search, PDP metadata, request identification, error responses), each adapted to the
scope profile: the subject carries the token's scopes, the action is an HTTP method, the resource
an endpoint of the default catalog. Where the specification's example response has a given shape
(`decision` only, an `evaluations` array in request order, `results` with `page`), so must ours.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from .helpers import decision_records
from .ops_helpers import ServeProcess, free_port, scrape, wait_for

REQUEST_ID = "bfe9eb29-ab87-4ca3-be83-a1d5d8305716"  # the specification's example X-Request-ID


class Pdp:
    """The server under test and a way to ask it."""

    def __init__(self, process: ServeProcess, port: int) -> None:
        self.process = process
        self.base = f"http://127.0.0.1:{port}"

    def ask(self, method: str, path: str, body: Any = None, *, data: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
        """(status, headers, JSON body or text) of one request made with aiohttp's client."""

        async def go() -> tuple[int, dict[str, str], Any]:
            sent = {"content-type": "application/json"} if data is None else {}
            payload = json.dumps(body).encode() if data is None else data
            async with aiohttp.ClientSession() as session:
                async with session.request(method, self.base + path, data=payload if method == "POST" else None,
                                           headers={**sent, **(headers or {})}) as response:
                    text = await response.text()
                    value = json.loads(text) if response.content_type == "application/json" else text
                    return response.status, dict(response.headers), value

        return asyncio.run(go())


@pytest.fixture(scope="module")
def pdp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pdp]:
    tmp = tmp_path_factory.mktemp("authzen")
    port = free_port()
    process = ServeProcess(tmp, "--forward-auth-port", str(port), "--authzen", "--decision-log",
                           str(tmp / "decisions.log"), "--log-level", "warning")
    yield Pdp(process, port)
    assert process.close() == 0, process.log()


def subject(scopes: str = "users:read", **properties: Any) -> dict[str, Any]:
    return {"type": "token", "id": "alice@acmecorp.com", "properties": {"scopes": scopes, **properties}}


def endpoint(path: str) -> dict[str, str]:
    return {"type": "endpoint", "id": path}


# -- Access Evaluation API ------------------------------------------------------------------


def test_spec_access_evaluation_request_example(pdp: Pdp) -> None:
    """"Example Request" / "Example Decision": subject, resource, action (with properties), context."""
    status, headers, body = pdp.ask("POST", "/access/v1/evaluation", {
        "subject": subject("scheduled_events:read"),
        "resource": {"type": "endpoint", "id": "/scheduled_events/123"},
        "action": {"name": "GET", "properties": {"method": "GET"}},
        "context": {"time": "1985-10-26T01:22-07:00"},
    })
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert body["decision"] is True
    assert body["context"]["endpoint"] == "GET /scheduled_events/{uuid}"


def test_spec_https_access_evaluation_with_request_id(pdp: Pdp) -> None:
    """"Example of an HTTPS Access Evaluation Request/Response": the X-Request-ID comes back as sent."""
    status, headers, body = pdp.ask("POST", "/access/v1/evaluation", {
        "subject": subject(), "resource": endpoint("/users/me"), "action": {"name": "GET"},
        "context": {"time": "1985-10-26T01:22-07:00"}}, headers={"X-Request-ID": REQUEST_ID})
    assert (status, headers["X-Request-ID"], body["decision"]) == (200, REQUEST_ID, True)


def test_a_deny_is_200_with_decision_false_and_the_gateways_reasons(pdp: Pdp) -> None:
    """"the PDP indicates ... denied by sending a response with a 200 ... { "decision": false }"."""
    status, _, body = pdp.ask("POST", "/access/v1/evaluation", {
        "subject": subject("users:read"), "resource": endpoint("/scheduling_links"), "action": {"name": "POST"}})
    assert status == 200 and body["decision"] is False
    assert body["context"]["reason"] == "INSUFFICIENT_SCOPE"
    assert body["context"]["missing_scopes"] == ["scheduling_links:write"] and body["context"]["status"] == 403


# -- Access Evaluations API -----------------------------------------------------------------


def test_spec_evaluations_without_defaults(pdp: Pdp) -> None:
    """Three complete requests in `evaluations`: three decisions, in request order."""
    one = {"subject": subject("scheduled_events:read"), "action": {"name": "GET"},
           "context": {"time": "2024-05-31T15:22-07:00"}}
    status, _, body = pdp.ask("POST", "/access/v1/evaluations", {"evaluations": [
        {**one, "resource": endpoint("/scheduled_events/boxcarring")},
        {**one, "resource": endpoint("/users/me")},
        {**one, "resource": endpoint("/scheduled_events/resource-search")},
    ]})
    assert status == 200 and [e["decision"] for e in body["evaluations"]] == [True, False, True]
    assert "decision" not in body  # "it is RECOMMENDED that the decision key of the response will be omitted"


def test_spec_evaluations_with_defaults_and_an_override(pdp: Pdp) -> None:
    """Default subject, context and action; the third evaluation overrides the action."""
    status, _, body = pdp.ask("POST", "/access/v1/evaluations", {
        "subject": subject("scheduled_events:read"), "context": {"time": "2024-05-31T15:22-07:00"},
        "action": {"name": "GET"},
        "evaluations": [{"resource": endpoint("/scheduled_events/boxcarring")},
                        {"resource": endpoint("/scheduled_events/subject-search")},
                        {"action": {"name": "POST"}, "resource": endpoint("/scheduled_events/resource-search")}],
    })
    assert status == 200 and [e["decision"] for e in body["evaluations"]] == [True, True, False]


@pytest.mark.parametrize(("semantic", "decisions"), [
    ("execute_all", [True, False, True]),
    ("deny_on_first_deny", [True, False]),
    ("permit_on_first_permit", [True]),
])
def test_spec_evaluations_semantics(pdp: Pdp, semantic: str, decisions: list[bool]) -> None:
    """"Evaluate read action for three documents using all three semantics": the specification's answers."""
    status, _, body = pdp.ask("POST", "/access/v1/evaluations", {
        "subject": subject("users:read"), "action": {"name": "GET"},
        "options": {"evaluations_semantic": semantic},
        "evaluations": [{"resource": endpoint("/users/1")}, {"resource": endpoint("/scheduled_events/2")},
                        {"resource": endpoint("/users/3")}],
    })
    assert status == 200 and [e["decision"] for e in body["evaluations"]] == decisions


def test_spec_error_in_an_individual_evaluation(pdp: Pdp) -> None:
    """Errors in individual evaluations: that item is decision false with the error in its context."""
    status, _, body = pdp.ask("POST", "/access/v1/evaluations", {
        "subject": subject(), "action": {"name": "GET"},
        "evaluations": [{"resource": endpoint("/users/me")}, {"resource": {"type": "document", "id": "1"}}]})
    assert status == 200
    assert body["evaluations"][1]["decision"] is False
    assert body["evaluations"][1]["context"]["error"]["status"] == 400


# -- Search APIs ----------------------------------------------------------------------------


def test_spec_resource_search(pdp: Pdp) -> None:
    """"Example of an HTTPS Resource Search Request/Response": results of the resource type, and a page."""
    status, headers, body = pdp.ask("POST", "/access/v1/search/resource", {
        "subject": subject("users:read"), "action": {"name": "GET"}, "resource": {"type": "endpoint"}},
        headers={"X-Request-ID": REQUEST_ID})
    assert status == 200 and headers["X-Request-ID"] == REQUEST_ID
    assert {"type": "endpoint", "id": "/users/me"} in body["results"]
    assert all(result["type"] == "endpoint" for result in body["results"])
    assert body["page"]["next_token"] == ""
    for result in body["results"]:  # "any returned results ... fed into an evaluation call MUST result in true"
        assert pdp.ask("POST", "/access/v1/evaluation", {"subject": subject("users:read"), "action": {"name": "GET"},
                                                         "resource": result})[2]["decision"] is True


def test_spec_action_search(pdp: Pdp) -> None:
    """"Example of an HTTPS Action Search Request/Response": the actions, as {"name": ...}."""
    status, _, body = pdp.ask("POST", "/access/v1/search/action", {
        "subject": subject("scheduled_events:write"), "resource": endpoint("/scheduled_events/123"),
        "context": {"time": "2024-10-26T01:22-07:00"}})
    assert status == 200
    names = [result["name"] for result in body["results"]]
    assert "GET" in names and "DELETE" not in names
    for name in names:
        assert pdp.ask("POST", "/access/v1/evaluation", {"subject": subject("scheduled_events:write"),
                                                         "action": {"name": name},
                                                         "resource": endpoint("/scheduled_events/123")}
                       )[2]["decision"] is True


def test_subject_search_is_not_offered(pdp: Pdp) -> None:
    """Not in the metadata, and not served: the forward-auth fallback answers that path as a forward-auth request."""
    status, _, _ = pdp.ask("POST", "/access/v1/search/subject", {"subject": {"type": "token"}})
    assert status == 400


# -- PDP metadata ---------------------------------------------------------------------------


def test_spec_pdp_metadata(pdp: Pdp) -> None:
    status, headers, body = pdp.ask("GET", "/.well-known/authzen-configuration")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert body == {
        "policy_decision_point": pdp.base,
        "access_evaluation_endpoint": f"{pdp.base}/access/v1/evaluation",
        "access_evaluations_endpoint": f"{pdp.base}/access/v1/evaluations",
        "search_resource_endpoint": f"{pdp.base}/access/v1/search/resource",
        "search_action_endpoint": f"{pdp.base}/access/v1/search/action",
    }
    assert "search_subject_endpoint" not in body  # "the non presence ... is sufficient ... not capable"


# -- Error responses ------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "headers", "complaint"), [
    (b"{not json", {"content-type": "application/json"}, "not JSON"),
    (b'{"subject": NaN}', {"content-type": "application/json"}, "NaN"),
    (b"\xff\xfe", {"content-type": "application/json"}, "UTF-8"),
    (b"[" * 100_000 + b"]" * 100_000, {"content-type": "application/json"}, "JSON"),
    (b'{"subject": "alice"}', {"content-type": "text/plain"}, "application/json"),
    (b"{}", {"content-type": "application/json"}, "subject"),
    (b'{"evaluations": [], "options": {"evaluations_semantic": "all"}}', {"content-type": "application/json"},
     "evaluations_semantic"),
    (b'{"a": "' + b"x" * (2 * 1024 * 1024) + b'"}', {"content-type": "application/json"}, "larger than"),
])
def test_spec_errors_are_400_with_a_message_string(pdp: Pdp, data: bytes, headers: dict[str, str],
                                                   complaint: str) -> None:
    for path in ("/access/v1/evaluation", "/access/v1/evaluations"):
        status, answer_headers, body = pdp.ask("POST", path, data=data,
                                               headers={**headers, "X-Request-ID": REQUEST_ID})
        assert status == 400, body
        assert answer_headers["Content-Type"].startswith("text/plain")
        assert complaint in body or (complaint == "evaluations_semantic" and path.endswith("/evaluation"))
        assert answer_headers["X-Request-ID"] == REQUEST_ID
        assert "decision" not in body


def test_decisions_are_counted_and_logged_like_every_front_end(pdp: Pdp) -> None:
    before = scrape(pdp.process.metrics_port)
    pdp.ask("POST", "/access/v1/evaluation", {"subject": subject(), "resource": endpoint("/users/me"),
                                              "action": {"name": "DELETE"}}, headers={"X-Request-ID": "count-me"})
    after = scrape(pdp.process.metrics_port)
    assert 'rpc="authzen"' in after and after != before
    log = Path(pdp.process.output).parent / "decisions.log"

    def mine() -> list[dict[str, Any]]:  # the log is written by a background thread
        records = decision_records(log)
        return [r for r in records if r.get("attributes", {}).get("x-request-id") == "count-me"]

    wait_for(mine)
    assert mine()[0]["rpc"] == "authzen" and "subject_hash" in mine()[0]
    assert "alice@acmecorp.com" not in log.read_text()


def test_other_methods_are_405_with_allow(pdp: Pdp) -> None:
    """Never the forward-auth answer that every other path of the port gets."""
    for method, path, allowed in (("GET", "/access/v1/evaluation", "POST"), ("PUT", "/access/v1/evaluations", "POST"),
                                  ("POST", "/.well-known/authzen-configuration", "GET")):
        status, headers, _ = pdp.ask(method, path, {}, headers={"X-Request-ID": REQUEST_ID})
        assert (status, headers["Allow"], headers["X-Request-ID"]) == (405, allowed, REQUEST_ID)
