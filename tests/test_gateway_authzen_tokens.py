"""AuthZEN with a bearer token as the subject: a real `scopesvc serve --authzen --jwt-issuer` process,
asked with aiohttp's client, verifying tokens signed here and served by the local issuer (KeyServer).

The profile (docs/gateways.md, "AuthZEN"): `subject.properties.token` is verified by the same Verifier
as the gateways' `Authorization: Bearer`; an invalid token is a decision, false, with the 401 answer's
reason (INVALID_TOKEN); no usable keys is the server's own failure, 503, never a decision.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .helpers import decision_records
from .ops_helpers import ServeProcess, free_port, wait_for
from .test_gateway_authzen_http import Pdp
from .token_helpers import AUDIENCE, KeyServer, SigningKey, claims

EVALUATION = "/access/v1/evaluation"
DENY_CONTEXT = {"reason", "catalog_revision", "message", "missing_scopes", "status", "www_authenticate"}


def serve(tmp: Path, issuer: str) -> Pdp:
    port = free_port()
    process = ServeProcess(tmp, "--forward-auth-port", str(port), "--authzen", "--jwt-issuer", issuer,
                           "--jwt-audience", AUDIENCE, "--jwks-timeout", "1", "--decision-log",
                           str(tmp / "decisions.log"), "--log-level", "warning")
    return Pdp(process, port)


@pytest.fixture(scope="module")
def pdp(tmp_path_factory: pytest.TempPathFactory, issuer: KeyServer) -> Iterator[Pdp]:
    served = serve(tmp_path_factory.mktemp("authzen-tokens"), issuer.issuer)
    yield served
    assert served.process.close() == 0, served.process.log()


def bearer(token: str, **subject: Any) -> dict[str, Any]:
    return {"type": "token", **subject, "properties": {"token": token}}


def ask(pdp: Pdp, token: str, method: str = "GET", path: str = "/users/me", **headers: str) -> tuple[int, Any]:
    status, _, body = pdp.ask("POST", EVALUATION, {"subject": bearer(token), "action": {"name": method},
                                                   "resource": {"type": "endpoint", "id": path}}, headers=headers)
    return status, body


def test_a_valid_token_is_allowed_or_denied_by_its_scopes(pdp: Pdp, issuer: KeyServer, key: SigningKey) -> None:
    token = key.sign(claims(issuer.issuer, scope="users:read"))
    assert ask(pdp, token) == (200, {"decision": True, "context": {
        "reason": "ALLOWED", "catalog_revision": ask(pdp, token)[1]["context"]["catalog_revision"],
        "endpoint": "GET /users/me"}})
    status, denied = ask(pdp, key.sign(claims(issuer.issuer, scope="groups:read")))
    assert status == 200 and denied["decision"] is False
    assert denied["context"]["reason"] == "INSUFFICIENT_SCOPE" and denied["context"]["status"] == 403
    assert denied["context"]["missing_scopes"]


@pytest.mark.parametrize("changed", [{"lifetime": -120}, {"aud": "https://other.example.test"}])
def test_an_expired_or_foreign_token_is_a_false_decision_saying_invalid_token(
        pdp: Pdp, issuer: KeyServer, key: SigningKey, changed: dict[str, Any]) -> None:
    status, body = ask(pdp, key.sign(claims(issuer.issuer, **changed)))
    assert status == 200 and body["decision"] is False
    context = body["context"]
    assert context["reason"] == "INVALID_TOKEN" and context["status"] == 401
    assert context["www_authenticate"].startswith('Bearer error="invalid_token"')
    assert set(context) <= DENY_CONTEXT and "endpoint" not in context  # no more than the 401 answer
    assert "user-1" not in json.dumps(body)


def test_an_unsigned_string_is_an_invalid_token_too(pdp: Pdp) -> None:
    status, body = ask(pdp, "not-a-jwt")
    assert status == 200 and (body["decision"], body["context"]["reason"]) == (False, "INVALID_TOKEN")


def test_scopes_and_token_together_is_400_naming_the_field(pdp: Pdp, issuer: KeyServer, key: SigningKey) -> None:
    subject = bearer(key.sign(claims(issuer.issuer)))
    subject["properties"]["scopes"] = "users:read"
    status, _, body = pdp.ask("POST", EVALUATION, {"subject": subject, "action": {"name": "GET"},
                                                   "resource": {"type": "endpoint", "id": "/users/me"}})
    assert status == 400 and "subject.properties.token" in body
    status, _, body = pdp.ask("POST", EVALUATION, {"subject": bearer(""), "action": {"name": "GET"},
                                                   "resource": {"type": "endpoint", "id": "/users/me"}})
    assert status == 400 and "subject.properties.token" in body


def test_the_log_names_the_verified_sub_hashed_unless_subject_id_is_given(
        pdp: Pdp, issuer: KeyServer, key: SigningKey) -> None:
    token = key.sign(claims(issuer.issuer, sub="sub-42"))
    ask(pdp, token, **{"X-Request-ID": "from-sub"})
    pdp.ask("POST", EVALUATION, {"subject": {"type": "token", "id": "sub-42", "properties": {"scopes": "users:read"}},
                                 "action": {"name": "GET"}, "resource": {"type": "endpoint", "id": "/users/me"}},
            headers={"X-Request-ID": "from-id"})
    pdp.ask("POST", EVALUATION, {"subject": bearer(token, id="someone-else"), "action": {"name": "GET"},
                                 "resource": {"type": "endpoint", "id": "/users/me"}},
            headers={"X-Request-ID": "named"})
    log = Path(pdp.process.output).parent / "decisions.log"

    def hashes() -> dict[str, str]:  # the log is written by a background thread
        records = decision_records(log)
        return {r["attributes"]["x-request-id"]: r.get("subject_hash", "") for r in records
                if r.get("attributes", {}).get("x-request-id")}

    wait_for(lambda: {"from-sub", "from-id", "named"} <= set(hashes()))
    found = hashes()
    assert found["from-sub"] and found["from-sub"] == found["from-id"] != found["named"]
    assert "sub-42" not in log.read_text() and token not in log.read_text()


def test_evaluations_verify_each_items_token(pdp: Pdp, issuer: KeyServer, key: SigningKey) -> None:
    good, expired = key.sign(claims(issuer.issuer)), key.sign(claims(issuer.issuer, lifetime=-120))
    status, _, body = pdp.ask("POST", "/access/v1/evaluations", {
        "subject": bearer(good), "action": {"name": "GET"},
        "evaluations": [{"resource": {"type": "endpoint", "id": "/users/me"}},
                        {"resource": {"type": "endpoint", "id": "/users/me"}, "subject": bearer(expired)},
                        {"resource": {"type": "endpoint", "id": "/groups/AB12"}}]})
    assert status == 200
    assert [(e["decision"], e["context"]["reason"]) for e in body["evaluations"]] == [
        (True, "ALLOWED"), (False, "INVALID_TOKEN"), (False, "INSUFFICIENT_SCOPE")]


def test_searches_take_the_token_and_find_nothing_for_an_invalid_one(
        pdp: Pdp, issuer: KeyServer, key: SigningKey) -> None:
    good = key.sign(claims(issuer.issuer, scope="users:read"))
    search = {"subject": bearer(good), "action": {"name": "GET"}, "resource": {"type": "endpoint"}}
    status, _, found = pdp.ask("POST", "/access/v1/search/resource", search)
    assert status == 200 and {"type": "endpoint", "id": "/users/me"} in found["results"]
    status, _, actions = pdp.ask("POST", "/access/v1/search/action", {
        "subject": bearer(good), "resource": {"type": "endpoint", "id": "/users/me"}})
    assert status == 200 and {"name": "GET"} in actions["results"]
    search["subject"] = bearer(key.sign(claims(issuer.issuer, lifetime=-120)))
    status, _, nothing = pdp.ask("POST", "/access/v1/search/resource", search)
    assert status == 200 and nothing["results"] == [] and nothing["context"]["reason"] == "INVALID_TOKEN"


def test_no_usable_keys_is_503_never_a_decision(tmp_path: Path, key: SigningKey) -> None:
    unreachable = "http://127.0.0.1:9"  # nothing listens: no metadata, no keys
    pdp = serve(tmp_path, unreachable)
    try:
        token = key.sign(claims(unreachable))
        status, body = ask(pdp, token)
        assert status == 503 and isinstance(body, str) and "decision" not in body
        status, _, body = pdp.ask("POST", "/access/v1/evaluations", {
            "action": {"name": "GET"}, "resource": {"type": "endpoint", "id": "/users/me"},
            "evaluations": [{"subject": {"type": "token", "id": "u", "properties": {"scopes": "users:read"}}},
                            {"subject": bearer(token)}]})
        assert status == 503 and "decision" not in body  # the whole batch: none of it was decided
        for path, extra in (("/access/v1/search/resource", {"action": {"name": "GET"}}),
                            ("/access/v1/search/action", {})):
            status, _, body = pdp.ask("POST", path, {"subject": bearer(token), **extra,
                                                     "resource": {"type": "endpoint", "id": "/users/me"}})
            assert status == 503, body
        status, _, body = pdp.ask("POST", EVALUATION, {  # scopes need no keys
            "subject": {"type": "token", "id": "u", "properties": {"scopes": "users:read"}},
            "action": {"name": "GET"}, "resource": {"type": "endpoint", "id": "/users/me"}})
        assert status == 200 and body["decision"] is True
    finally:
        assert pdp.process.close() == 0, pdp.process.log()
