"""A catalog compiled to Istio `RequestAuthentication` + `AuthorizationPolicy` (security.istio.io/v1).

Istio's policy language is narrower than Envoy's RBAC (no regular expressions, claims compared
as strings, no custom deny answers), so this export covers less and refuses, with the reasons,
what it cannot express faithfully (`refusals`). What it encodes: every endpoint as a rule on its
methods and path template (`{*}` for a `{name}` segment, `{**}` for a last `{name=**}`) minus the
paths of the templates that outrank it (`notPaths`), the trailing-slash and HEAD-as-GET settings,
and per required scope the scopes that grant it, in the `scope` or the `scp` claim. Everything
else is denied by the ALLOW policy.

Istio path templates (Envoy's uri_template matcher) hold whole-segment operators only: `{*}` is
one or more characters of one segment, `{**}` zero or more characters including `/`. So
`/a/{**}` also matches `/a/`, which `/a/{x=**}` (one or more segments) does not: it is written
`/a/{*}` and `/a/{*}/{**}`, and under strict trailing slashes every path ending in `/` is
excluded from it (`notPaths` `*/`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from ..policy import Catalog
from ..policy.paths import template_segments
from . import ExportRefused
from .model import PARAM, REST, TEXT, Node, granting, nodes, outranked_by, part, unsupported

API_VERSION = "security.istio.io/v1"
CLAIMS = ("scope", "scp")
# Required scopes per endpoint beyond which the claim combinations (2 ** n rules) are refused.
MAX_REQUIRED = 4
PATH_NORMALIZATION_REASON = (
    "Istio decides on the path after the mesh's own normalisation (meshConfig.pathNormalization), not on "
    "the path as sent: a path the engine refuses as malformed (dot segments, '//', '%2F', ';', bad "
    "percent-encoding) is normalised and decided instead of refused with 400, and a path parameter segment "
    "('{*}') accepts characters the engine refuses. Pass --accept-mesh-path-normalization to export anyway, "
    "with meshConfig.pathNormalization.normalization: DECODE_AND_MERGE_SLASHES so the upstream receives the "
    "path the policy decided on (docs/export.md)"
)


@dataclass(frozen=True)
class IstioOptions:
    name: str
    namespace: str
    issuer: str
    audiences: tuple[str, ...] = ()
    jwks_uri: str = ""
    jwks: str = ""  # a JWKS document, inline
    selector: tuple[tuple[str, str], ...] = ()
    accept_mesh_path_normalization: bool = False


def refusals(catalog: Catalog, options: IstioOptions) -> list[str]:
    """Why this catalog cannot be exported to Istio faithfully (empty: it can)."""
    reasons = unsupported(catalog) + _template_refusals(catalog)
    if not options.accept_mesh_path_normalization:
        reasons.append(PATH_NORMALIZATION_REASON)
    if catalog.scopes_introduced_at is not None:
        reasons.append(
            "oauth.scopes_introduced_at: legacy tokens are told by their iat claim, a number Istio can only "
            "compare as a string (no range), so tokens issued before the cut-over would lose their access")
    wild = [name for name in catalog.universe.names if "*" in name]
    if wild:
        reasons.append(f"scope names with '*' ({', '.join(wild)}): Istio reads '*' in claim values as a wildcard")
    many = [e.key for e in catalog.endpoints if len(e.scopes) > MAX_REQUIRED]
    if many:
        reasons.append(f"endpoints requiring more than {MAX_REQUIRED} scopes ({', '.join(many)}): each needs "
                       f"2^n rules to accept a scope from either claim")
    return reasons


def _template_refusals(catalog: Catalog) -> list[str]:
    """The templates an Istio path template cannot state: it holds literal text and whole-segment
    `{*}`/`{**}`, compared case-sensitively."""
    reasons = []
    for endpoint in catalog.endpoints:
        parts = [part(s) for s in template_segments(endpoint.template)]
        what = []
        if any(p.kind == TEXT for p in parts):
            what.append("literal text around a parameter (Istio's {*} is a whole segment)")
        if any(p.kind == REST and p.suffix for p in parts):
            what.append("a literal suffix (custom verb) after {name=**} (Istio's {**} is the whole rest of the path)")
        if catalog.case_insensitive and any(c.isalpha() for p in parts for c in p.prefix + p.suffix):
            what.append("paths.case_insensitive with letters in its literal text (Istio compares paths exactly)")
        if what:
            reasons.append(f"{endpoint.key}: {', '.join(what)}")
    return reasons


def _template(node: Node, rest: str) -> str:
    spelled = {PARAM: "{*}", REST: rest}
    return "/" + "/".join(spelled.get(p.kind, s) for p, s in zip(node.parts, node.segments))


def _paths(node: Node, strip_trailing_slash: bool) -> list[str]:
    """The paths Istio matches as this node's: `{name=**}` is one segment, or one then anything."""
    if node.parts and node.parts[-1].kind == REST:
        return [_template(node, "{*}"), _template(node, "{*}/{**}")]
    path = _template(node, "")
    return [path, path + "/"] if strip_trailing_slash and node.segments else [path]


def _trailing_slash_exclusions(node: Node, strip_trailing_slash: bool) -> list[str]:
    """Under strict trailing slashes, `/a/{*}/{**}` must not match `/a/b/` (a suffix match)."""
    return ["*/"] if not strip_trailing_slash and node.parts and node.parts[-1].kind == REST else []


def _conditions(catalog: Catalog, scopes: tuple[str, ...]) -> list[list[dict[str, Any]]]:
    """Alternative `when` lists (rules are ORed): every assignment of a claim to each required scope."""
    needs = [granting(catalog, scope) for scope in scopes] or [list(catalog.universe.names)]
    out = []
    for claims in itertools.product(CLAIMS, repeat=len(needs)):
        out.append([{"key": f"request.auth.claims[{claim}]", "values": values} for claim, values in zip(claims, needs)])
    return out


def _metadata(name: str, namespace: str) -> dict[str, Any]:
    return {"name": name, "namespace": namespace} if namespace else {"name": name}


def resources(catalog: Catalog, options: IstioOptions) -> list[dict[str, Any]]:
    """RequestAuthentication and AuthorizationPolicy, or ExportRefused with every reason."""
    reasons = refusals(catalog, options)
    if reasons:
        raise ExportRefused("Istio", reasons)
    selector = {"selector": {"matchLabels": dict(options.selector)}} if options.selector else {}
    rule: dict[str, Any] = {"issuer": options.issuer, "forwardOriginalToken": True}
    if options.audiences:
        rule["audiences"] = list(options.audiences)
    if options.jwks_uri:
        rule["jwksUri"] = options.jwks_uri
    elif options.jwks:
        rule["jwks"] = options.jwks
    ordered = nodes(catalog)
    rules = []
    for node in ordered:
        outranking = [p for other in outranked_by(ordered, node) for p in _paths(other, catalog.strip_trailing_slash)]
        outranking += _trailing_slash_exclusions(node, catalog.strip_trailing_slash)
        for method, endpoint in node.endpoints.items():
            operation: dict[str, Any] = {
                "methods": list(node.request_methods(method, catalog.head_as_get)),
                "paths": _paths(node, catalog.strip_trailing_slash),
            }
            if outranking:
                operation["notPaths"] = outranking
            for when in _conditions(catalog, endpoint.scopes):
                rules.append({"to": [{"operation": operation}], "when": when})
    return [
        {"apiVersion": API_VERSION, "kind": "RequestAuthentication",
         "metadata": _metadata(options.name, options.namespace), "spec": {**selector, "jwtRules": [rule]}},
        {"apiVersion": API_VERSION, "kind": "AuthorizationPolicy",
         "metadata": _metadata(options.name, options.namespace),
         "spec": {**selector, "action": "ALLOW", "rules": rules}},
    ]
