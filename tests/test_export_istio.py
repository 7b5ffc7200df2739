"""`scopesvc export istio`: valid against Istio's CRD schemas, refused where Istio cannot be faithful,
and deciding as the engine does on the paths Istio decides on.

No Istio runs here: the resources are validated offline against the CRDs' OpenAPI schemas
(tests/data, from istio/istio) and their ALLOW rules are evaluated by `allows` below, which
follows Istio's documented semantics (rules ORed; in a rule, every `to` operation field and
every `when` condition must hold; `paths` exact, a suffix `*abc`, or a template where `{*}` is one
or more characters of a segment and `{**}` zero or more characters including `/`, of the set
Envoy's uri_template matcher allows; `notPaths` excludes; a claim condition holds when the claim,
a string or any element of a list, is one of the values).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from scopesvc.catalog import files as catalog_files
from scopesvc.cli import main
from scopesvc.export import ExportRefused, istio
from scopesvc.gateway.attributes import GatewayConfig, token_from_payload
from scopesvc.policy import Engine, compile_catalog

from .test_export_rules import exportable
from .test_properties_decisions import SCOPE_POOL, catalogs, requests

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = yaml.safe_load((ROOT / "tests" / "data" / "istio-security-crd-schemas.yaml").read_text())
EXAMPLE = ROOT / "scopesvc" / "catalog" / "builtin" / "example-tasks.yaml"
OPTIONS = istio.IstioOptions(name="tasks", namespace="api", issuer="https://issuer.test", audiences=("api.test",),
                             jwks_uri="https://issuer.test/jwks", selector=(("app", "tasks"),),
                             accept_mesh_path_normalization=True)


def validate(resource: dict[str, Any]) -> None:
    assert resource["apiVersion"] == "security.istio.io/v1"
    jsonschema.validate(resource["spec"], SCHEMAS[resource["kind"]])
    # The CEL rules that concern these resources: one workload selector form; one JWKS source.
    spec = resource["spec"]
    assert sum(k in spec for k in ("selector", "targetRef", "targetRefs")) <= 1
    for rule in spec.get("jwtRules", ()):
        assert sum(k in rule for k in ("jwks", "jwksUri", "jwks_uri")) <= 1


# The characters Envoy's uri_template matcher lets `{*}` and `{**}` match (its kLiteral: RFC 3986
# pchar without '*'), as source/extensions/path/uri_template_lib/uri_template_internal.cc has them.
_TEMPLATE_CHARS = "a-zA-Z0-9._~%!$&'()+,;:@=\\-"


def _path_matches(pattern: str, path: str) -> bool:
    if pattern.startswith("*"):
        return path.endswith(pattern[1:])
    if "{*}" not in pattern and "{**}" not in pattern:
        return pattern == path
    operators = {"{*}": f"[{_TEMPLATE_CHARS}]+", "{**}": f"[{_TEMPLATE_CHARS}/]*"}
    regex = "/".join(operators.get(p, re.escape(p)) for p in pattern.split("/"))
    return re.fullmatch(regex, path) is not None


def _claim_holds(payload: dict[str, Any], key: str, values: list[str]) -> bool:
    claim = payload.get(re.fullmatch(r"request\.auth\.claims\[(.+)\]", key)[1])  # type: ignore[index]
    # Istio splits the `scope` claim on spaces; a list is matched element by element.
    items = claim.split(" ") if isinstance(claim, str) else claim if isinstance(claim, list) else []
    return any(item in values for item in items)


def allows(policy: dict[str, Any], method: str, path: str, payload: dict[str, Any] | None) -> bool:
    for rule in policy["spec"]["rules"]:
        operation = rule["to"][0]["operation"]
        if method not in operation["methods"] or not any(_path_matches(p, path) for p in operation["paths"]):
            continue
        if any(_path_matches(p, path) for p in operation.get("notPaths", ())):
            continue
        if payload is not None and all(_claim_holds(payload, w["key"], w["values"]) for w in rule["when"]):
            return True
    return False


def test_example_catalog_validates_against_the_crds() -> None:
    for resource in istio.resources(catalog_files.load(str(EXAMPLE)), OPTIONS):
        validate(resource)


def test_refusals_name_every_reason() -> None:
    catalog = catalog_files.load("")  # the embedded catalog has a legacy cut-over
    with pytest.raises(ExportRefused) as refused:
        istio.resources(catalog, istio.IstioOptions(name="x", namespace="", issuer="i"))
    reasons = refused.value.reasons
    assert len(reasons) == 2 and "pathNormalization" in reasons[0] and "scopes_introduced_at" in reasons[1]
    wild = compile_catalog({"format": "scopesvc.catalog/v1", "name": "w", "scopes": [{"name": "a*"}],
                            "endpoints": [{"method": "GET", "path": "/", "scopes": ["a*"]}]})
    assert "'*'" in istio.refusals(wild, OPTIONS)[0]


RICH = {
    "format": "scopesvc.catalog/v1", "name": "rich", "scopes": [{"name": "s"}],
    "endpoints": [{"method": "GET", "path": "/files/{id}.json", "scopes": ["s"]},
                  {"method": "POST", "path": "/ops/{name=**}:cancel", "scopes": ["s"]},
                  {"method": "GET", "path": "/ops/{name=**}", "scopes": ["s"]},
                  {"method": "GET", "path": "/123", "scopes": ["s"]}],
}


def test_refuses_what_istio_templates_cannot_state() -> None:
    reasons = istio.refusals(compile_catalog(RICH), OPTIONS)
    assert len(reasons) == 2
    assert reasons[0].startswith("GET /files/{id}.json: literal text around a parameter")
    assert reasons[1].startswith("POST /ops/{name=**}:cancel: a literal suffix (custom verb)")
    insensitive = compile_catalog(dict(RICH, paths={"case_insensitive": True}, endpoints=RICH["endpoints"][2:]))
    reasons = istio.refusals(insensitive, OPTIONS)
    assert len(reasons) == 1 and reasons[0].startswith("GET /ops/{name=**}: paths.case_insensitive")
    digits = compile_catalog(dict(RICH, paths={"case_insensitive": True}, endpoints=RICH["endpoints"][3:]))
    assert istio.refusals(digits, OPTIONS) == []  # no letter: case does not matter


@pytest.mark.parametrize("trailing", ["strip", "strict"])
def test_multi_segment_parameter_is_one_or_more_segments(trailing: str) -> None:
    doc = dict(RICH, paths={"trailing_slash": trailing}, endpoints=[
        {"method": "GET", "path": "/ops/{name=**}", "scopes": ["s"]},
        {"method": "GET", "path": "/ops/{id}/x", "scopes": []},
        {"method": "GET", "path": "/{all=**}", "scopes": []}])
    catalog = compile_catalog(doc)
    engine = Engine(catalog)
    policy = istio.resources(catalog, OPTIONS)[1]
    validate(policy)
    token = token_from_payload({"scope": "s"}, GatewayConfig())
    for path in ("/", "/ops", "/ops/", "/ops/a", "/ops/a/", "/ops/a/b", "/ops/a/b/", "/ops/a/x", "/ops/a/x/", "/x",
                 "/x/", "/x/y"):
        for payload in ({"scope": "s"}, {"scope": "t"}):
            decision = engine.check(token_from_payload(payload, GatewayConfig()), "GET", path)
            assert allows(policy, "GET", path, payload) == decision.allowed, (path, payload)
    assert token is not None


def test_cli_refuses_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "istio", "--jwt-issuer", "i", "--jwt-jwks-uri", "https://i/jwks"]) == 2
    assert "cannot export to Istio faithfully" in capsys.readouterr().err


def test_cli_writes_both_resources(tmp_path: Path) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text('{"keys": []}')
    out = tmp_path / "istio.yaml"
    assert main(["export", "istio", "--catalog", str(EXAMPLE), "--jwt-issuer", "i", "--jwt-jwks-file", str(jwks),
                 "--selector", "app=tasks", "--accept-mesh-path-normalization", "-o", str(out)]) == 0
    documents = list(yaml.safe_load_all(out.read_text()))
    assert [d["kind"] for d in documents] == ["RequestAuthentication", "AuthorizationPolicy"]
    assert documents[0]["spec"]["jwtRules"][0]["jwks"] == '{"keys": []}'
    for document in documents:
        validate(document)


payloads = st.one_of(
    st.none(),
    st.fixed_dictionaries({}, optional={
        "scope": st.lists(st.sampled_from(SCOPE_POOL + ["unknown"]), max_size=3).map(" ".join),
        "scp": st.lists(st.sampled_from(SCOPE_POOL + ["unknown"]), max_size=3),
    }),
)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_decides_as_the_engine_on_normalised_paths(data: st.DataObject) -> None:
    doc = exportable(data.draw(catalogs()), istio=True)
    doc.pop("oauth", None)  # Istio refuses legacy cut-overs
    catalog = compile_catalog(doc)
    engine = Engine(catalog)
    policy = istio.resources(catalog, OPTIONS)[1]
    validate(policy)
    for _ in range(15):
        method, path = data.draw(requests(doc))
        path = path.partition("?")[0]
        if not path or not re.fullmatch(r"(/[A-Za-z0-9_{}]+)*/?", path) or path.endswith("//") or method == "get":
            continue  # Istio decides on mesh-normalised paths; the engine's path grammar is not encoded
        payload = data.draw(payloads)
        token = None if payload is None else token_from_payload(payload, GatewayConfig())
        allowed, expected = allows(policy, method, path, payload), engine.check(token, method, path).allowed
        if "{" in path:  # a template written as a path: a value to the engine, outside {*}'s characters
            assert expected or not allowed, (method, path, payload, yaml.safe_dump(doc))
        else:
            assert allowed == expected, (method, path, payload, yaml.safe_dump(doc))
