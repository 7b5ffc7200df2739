"""The gateway configs in docs/ agree with scopesvc's defaults and with each other.

Envoy, NGINX and Traefik configs run for real in tests/e2e; Istio and Envoy Gateway cannot run
here, so these checks hold their files to the same service, port, fail-closed setting and headers.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from scopesvc.gateway.attributes import ENDPOINT_EXTENSION, GatewayConfig
from scopesvc.ops.config import ServerConfig
from scopesvc.policy.model import REWRITE_HEADERS

DOCS = Path(__file__).resolve().parent.parent / "docs"
DEFAULTS = GatewayConfig()
PORT = ServerConfig().port


def documents(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((DOCS / "gateways" / name).read_text()) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc.get("kind") == kind]


def test_gateways_md_links_every_config_file() -> None:
    text = (DOCS / "gateways.md").read_text()
    linked = set(re.findall(r"\]\(gateways/([^)]+)\)", text))
    assert linked == {p.name for p in (DOCS / "gateways").iterdir()}


def envoy_manager() -> dict[str, Any]:
    text = re.sub(r"\$\{[A-Z_]+\}", "1", (DOCS / "gateways" / "envoy.yaml").read_text())
    listener = yaml.safe_load(text)["static_resources"]["listeners"][0]
    return listener["filter_chains"][0]["filters"][0]["typed_config"]  # type: ignore[no-any-return]


def test_envoy_config_forwards_the_path_it_decided() -> None:
    manager = envoy_manager()
    assert (manager["normalize_path"], manager["merge_slashes"]) == (True, False)
    assert manager["path_with_escaped_slashes_action"] == "REJECT_REQUEST"
    assert manager["common_http_protocol_options"]["headers_with_underscores_action"] == "REJECT_REQUEST"
    assert manager["route_config"]["request_headers_to_remove"] == [*REWRITE_HEADERS, DEFAULTS.scope_header]
    named = [route["typed_per_filter_config"]["envoy.filters.http.ext_authz"]["check_settings"]
             ["context_extensions"][ENDPOINT_EXTENSION]
             for route in manager["route_config"]["virtual_hosts"][0]["routes"] if "typed_per_filter_config" in route]
    assert named == ["/users/me"]  # path-only: the request's method is decided, as the upstream receives it


def test_envoy_config_sends_the_verified_payload_and_fails_closed() -> None:
    manager = envoy_manager()
    filters = {f["name"]: f["typed_config"] for f in manager["http_filters"]}
    assert list(filters)[-1] == "envoy.filters.http.router"
    jwt, authz = filters["envoy.filters.http.jwt_authn"], filters["envoy.filters.http.ext_authz"]
    assert all(p["payload_in_metadata"] == DEFAULTS.jwt_payload_key for p in jwt["providers"].values())
    assert authz["metadata_context_namespaces"] == [DEFAULTS.jwt_metadata_namespace]
    assert authz["failure_mode_allow"] is False
    assert authz["transport_api_version"] == "V3"


def test_istio_custom_provider_matches_scopesvc() -> None:
    docs = documents("istio.yaml")
    provider = by_kind(docs, "IstioOperator")[0]["spec"]["meshConfig"]["extensionProviders"][0]
    grpc = provider["envoyExtAuthzGrpc"]
    assert grpc["port"] == PORT and grpc["failOpen"] is False
    policies = {p["spec"]["action"]: p["spec"] for p in by_kind(docs, "AuthorizationPolicy")}
    assert policies["CUSTOM"]["provider"]["name"] == provider["name"]
    assert policies["DENY"]["rules"] == [{"from": [{"source": {"notRequestPrincipals": ["*"]}}]}]
    rule = by_kind(docs, "RequestAuthentication")[0]["spec"]["jwtRules"][0]
    assert rule["outputPayloadToHeader"] == DEFAULTS.jwt_payload_header
    mesh = by_kind(docs, "IstioOperator")[0]["spec"]["meshConfig"]
    assert mesh["pathNormalization"] == {"normalization": "BASE"}  # normalize_path, slashes kept
    route = by_kind(docs, "VirtualService")[0]["spec"]["http"][0]
    assert route["headers"]["request"]["remove"] == [*REWRITE_HEADERS, DEFAULTS.scope_header]


def test_envoy_gateway_security_policy_matches_scopesvc() -> None:
    docs = documents("envoy-gateway.yaml")
    spec = by_kind(docs, "SecurityPolicy")[0]["spec"]
    ext = spec["extAuth"]
    assert ext["failOpen"] is False
    assert ext["grpc"]["backendRefs"][0]["port"] == PORT
    assert ext["headersToExtAuth"] == [DEFAULTS.scope_header, *REWRITE_HEADERS]
    claims = spec["jwt"]["providers"][0]["claimToHeaders"]
    assert claims == [{"header": DEFAULTS.scope_header, "claim": "scope"}]
    client = by_kind(docs, "ClientTrafficPolicy")[0]["spec"]
    assert client["headers"]["earlyRequestHeaders"]["remove"] == [DEFAULTS.scope_header]  # before the JWT filter
    assert client["headers"]["withUnderscoresAction"] == "RejectRequest"
    assert client["path"] == {"disableMergeSlashes": True, "escapedSlashesAction": "RejectRequest"}
    modifier = by_kind(docs, "HTTPRoute")[0]["spec"]["rules"][0]["filters"][0]["requestHeaderModifier"]
    assert modifier["remove"] == list(REWRITE_HEADERS)


def test_forward_auth_configs_use_scopesvc_headers() -> None:
    traefik = yaml.safe_load((DOCS / "gateways" / "traefik.yaml").read_text())["http"]
    forward = traefik["middlewares"]["scopesvc"]["forwardAuth"]
    assert forward["trustForwardHeader"] is False
    assert "authRequestHeaders" not in forward  # every header reaches scopesvc, rewrite headers included
    assert [h.lower() for h in forward["authResponseHeaders"]] == [DEFAULTS.endpoint_header]
    nginx = (DOCS / "gateways" / "nginx.conf").read_text()
    assert "$upstream_http_" + DEFAULTS.endpoint_header.replace("-", "_") in nginx
    assert "proxy_set_header X-Original-URI $request_uri;" in nginx


def test_forward_auth_configs_take_scopes_only_from_the_authentication_layer() -> None:
    traefik = yaml.safe_load((DOCS / "gateways" / "traefik.yaml").read_text())["http"]
    assert traefik["routers"]["api"]["middlewares"] == ["authenticate", "scopesvc", "strip-rewrite-headers"]
    authenticate = traefik["middlewares"]["authenticate"]["forwardAuth"]
    assert [h.lower() for h in authenticate["authResponseHeaders"]] == [DEFAULTS.scope_header]
    nginx = (DOCS / "gateways" / "nginx.conf").read_text()
    variable = re.search(r"auth_request_set \$(\w+) \$upstream_http_" + DEFAULTS.scope_header.replace("-", "_") + ";",
                         nginx)
    assert variable is not None
    assert f"proxy_set_header X-Scopesvc-Scopes ${variable.group(1)};" in nginx


def test_forward_auth_configs_strip_rewrite_headers() -> None:
    traefik = yaml.safe_load((DOCS / "gateways" / "traefik.yaml").read_text())["http"]
    strip = traefik["middlewares"]["strip-rewrite-headers"]["headers"]["customRequestHeaders"]
    assert {name.lower(): value for name, value in strip.items()} == dict.fromkeys(REWRITE_HEADERS, "")
    nginx = (DOCS / "gateways" / "nginx.conf").read_text().lower()
    assert all(f'proxy_set_header {name} "";' in nginx for name in REWRITE_HEADERS)
