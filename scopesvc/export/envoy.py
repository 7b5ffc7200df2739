"""A catalog compiled to Envoy v3 configuration: jwt_authn, two RBAC filters and local replies.

How the engine's decision is laid out in Envoy (docs/export.md says it for operators):
- `jwt_authn` verifies the bearer token and puts its payload in dynamic metadata; a missing
  token goes on without a payload, an invalid one is answered 401 by jwt_authn itself.
- RBAC `scopesvc.decide` holds the whole decision as one matcher (shadow mode, so it never acts
  itself): a rewrite header, a malformed path, then the template shape the engine picks (first
  match in the engine's priority order, behind a longest-prefix map on the path so a request
  tries only the shapes it could match), the method on it (an exact map), and the endpoint's
  requirement on the verified payload. Its first match is the verdict, and Envoy records the
  action's name (`header`, `malformed`, `unknown`, or the endpoint's `endpoint_id`) and
  `allowed`/`denied` as dynamic metadata.
- RBAC `scopesvc.enforce` denies (403) what the decision denied: one metadata lookup.
- The HTTP connection manager's `local_reply_config` turns each deny into the engine's answer by
  the decision's name: 401 without a token, 400 for a rewrite header or a malformed path, the
  endpoint's own 403 challenge and body, or the unknown-endpoint 403.

Why one matcher and not RBAC policies: an RBAC policy list is tried policy by policy, so every
request paid a path regex per shape and a metadata lookup per endpoint; the matcher's maps make
a decision a few regexes and one requirement (bench/export.py measures it).
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..policy import Catalog, Engine
from ..policy.catalog import Endpoint, bearer_challenge
from ..policy.cover import closest
from ..policy.model import REWRITE_HEADERS
from . import ExportRefused, regex
from .model import ANY_OF, PUBLIC, IatBounds, Node, granting, iat_bounds, nodes, unsupported

JWT_FILTER = "envoy.filters.http.jwt_authn"
RBAC_NAMESPACE = "envoy.filters.http.rbac"  # where every RBAC filter writes its dynamic metadata
DECIDE_PREFIX = "scopesvc_"
# Envoy prefixes the shadow metadata keys with the filter's shadow_rules_stat_prefix.
SHADOW_POLICY = DECIDE_PREFIX + "shadow_effective_policy_id"  # the decision's name (below)
SHADOW_RESULT = DECIDE_PREFIX + "shadow_engine_result"  # "allowed"/"denied": set on every request decided
# The decision's names besides endpoint_id(): a rewrite header, a malformed path, an unknown endpoint.
REWRITE = "header"
MALFORMED = "malformed"
UNKNOWN = "unknown"
PROVIDER = "api"
_TYPE = "type.googleapis.com/"
_RBAC_TYPE = _TYPE + "envoy.extensions.filters.http.rbac.v3.RBAC"
_MAX_DOUBLE = 1.7976931348623157e308
# Envoy refuses a regex whose RE2 program is larger than this runtime value (default 100).
RE2_PROGRAM_SIZE = 1_000_000
# Distinct scopes in an endpoint's any_of alternatives beyond which it is refused: the deny names
# the alternative the token comes closest to, one local reply per combination of them (2 ** n).
MAX_ANY_OF_SCOPES = 8
RUNTIME = {"re2.max_program_size.error_level": RE2_PROGRAM_SIZE, "re2.max_program_size.warn_level": RE2_PROGRAM_SIZE}
# The engine decides on the path as the client sent it (docs/paths.md), and so does the exported
# classifier: Envoy must neither normalise it nor act on encoded slashes itself. Whatever the
# engine calls malformed (dot segments, '//', '%2F', ...) the classifier answers 400, after the
# 401 for a missing token, exactly as the engine's adapters do; nothing malformed is routed.
PATH_SETTINGS = {
    "normalize_path": False,
    "merge_slashes": False,
    "path_with_escaped_slashes_action": "KEEP_UNCHANGED",
}
REWRITE_BODY = json.dumps({"title": "Bad request", "message": "the request carries a header that would change its "
                           "method or path after this decision"}, separators=(",", ":"))
MALFORMED_BODY = json.dumps({"title": "Bad request", "message": "malformed path"}, separators=(",", ":"))


@dataclass(frozen=True)
class JwtOptions:
    """How tokens are verified and where their payload lands (the `--jwt-*` flags)."""

    issuer: str
    audiences: tuple[str, ...] = ()
    jwks_file: str = ""
    jwks_uri: str = ""
    jwks_cluster: str = "jwks"
    payload_key: str = "jwt_payload"
    legacy_claim: str = ""

    def __post_init__(self) -> None:
        if not self.issuer:
            raise ValueError("--jwt-issuer is required")
        if bool(self.jwks_file) == bool(self.jwks_uri):
            raise ValueError("give exactly one of --jwt-jwks-file and --jwt-jwks-uri")
        if self.jwks_uri:
            parts = urlsplit(self.jwks_uri)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"--jwt-jwks-uri must be an absolute http(s) URL, not {self.jwks_uri!r}")


# -- jwt_authn -----------------------------------------------------------------------------


def jwt_authn_filter(options: JwtOptions) -> dict[str, Any]:
    provider: dict[str, Any] = {"issuer": options.issuer, "payload_in_metadata": options.payload_key}
    if options.audiences:
        provider["audiences"] = list(options.audiences)
    if options.jwks_file:
        provider["local_jwks"] = {"filename": options.jwks_file}
    else:
        provider["remote_jwks"] = {
            "http_uri": {"uri": options.jwks_uri, "cluster": options.jwks_cluster, "timeout": "5s"},
            "cache_duration": "600s",
            "async_fetch": {"fast_listener": False},
        }
    return {
        "name": JWT_FILTER,
        "typed_config": {
            "@type": _TYPE + "envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {PROVIDER: provider},
            # A bad token is answered 401 here; a missing one goes on without a payload and the
            # local reply for "denied without a payload" answers 401 as scopesvc does.
            "rules": [{"match": {"prefix": "/"}, "requires": {"requires_any": {"requirements": [
                {"provider_name": PROVIDER}, {"allow_missing": {}}]}}}],
        },
    }


# -- the decision: one RBAC matcher names what the engine decides --------------------------


def _header_input(name: str) -> dict[str, Any]:
    return {"name": "request_header", "typed_config": {
        "@type": _TYPE + "envoy.type.matcher.v3.HttpRequestHeaderMatchInput", "header_name": name}}


def _header_matches(name: str, pattern: str) -> dict[str, Any]:
    """A matcher predicate: header `name` is present and its value fully matches `pattern` (RE2)."""
    return {"single_predicate": {"input": _header_input(name),
                                 "value_match": {"safe_regex": {"google_re2": {}, "regex": pattern}}}}


def _any(predicates: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return predicates[0] if len(predicates) == 1 else {"or_matcher": {"predicate": list(predicates)}}


def _every(predicates: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return predicates[0] if len(predicates) == 1 else {"and_matcher": {"predicate": list(predicates)}}


def _action(name: str, allow: bool) -> dict[str, Any]:
    """A leaf of the matcher: the name Envoy records as the shadow policy id, and the verdict."""
    return {"action": {"name": "rbac_action", "typed_config": {
        "@type": _TYPE + "envoy.config.rbac.v3.Action", "name": name, "action": "ALLOW" if allow else "DENY"}}}


def rewrite_header_names() -> list[str]:
    """Every spelling of the rewrite headers the engine refuses: `_` for any `-` (Envoy lower-cases names)."""
    names = []
    for header in REWRITE_HEADERS:
        parts = header.split("-")
        for joins in itertools.product("-_", repeat=len(parts) - 1):
            names.append(parts[0] + "".join(j + p for j, p in zip(joins, parts[1:])))
    return names


def endpoint_id(node: Node, method: str) -> str:
    """The name the decision records for an endpoint (`method` as the catalog declares it: HEAD
    reaching a GET endpoint is that endpoint)."""
    return f"{node.name} {method}"


def _static_head(node: Node, case_insensitive: bool) -> str | None:
    """The node's first segment when it is literal text (lower-cased where case does not count)."""
    if not node.segments or "{" in node.segments[0]:
        return None
    return node.segments[0].lower() if case_insensitive else node.segments[0]


def _path_dispatch(catalog: Catalog, ordered: Sequence[Node], entries: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The node matchers, in priority order, behind a longest-prefix map on the raw path.

    A path that starts with `/text` (raw: unencoded characters decode to themselves) has a
    first segment beginning with `text`, so only the shapes whose literal first segment begins
    with `text`, and the shapes whose first segment is not literal, can match it: each key gets
    those, in the engine's order. Anything else (no key, an encoded or differently cased first
    character) goes to the whole list: the map only ever skips shapes that cannot match.
    """
    unknown = _action(UNKNOWN, False)

    def in_order(names: Sequence[str]) -> dict[str, Any]:
        return {"matcher_list": {"matchers": [entries[name] for name in names]}, "on_no_match": unknown}

    heads = {node.name: _static_head(node, catalog.case_insensitive) for node in ordered}
    by_prefix = {}
    for key in sorted({head for head in heads.values() if head is not None}):
        names = [n.name for n in ordered if heads[n.name] is None or heads[n.name].startswith(key)]
        by_prefix["/" + key] = {"matcher": in_order(names)}
    everything = in_order([node.name for node in ordered])
    if not by_prefix:
        return everything
    return {"matcher_tree": {"input": _header_input(":path"), "prefix_match_map": {"map": by_prefix}},
            "on_no_match": {"matcher": everything}}


def decision_matcher(catalog: Catalog, ordered: Sequence[Node], options: JwtOptions) -> dict[str, Any]:
    """What the engine decides, as one matcher: its first match is the engine's verdict and names it.

    In order, as `Engine.gateway_target` and `Engine.check` go: a rewrite header (deny `header`),
    a malformed path (deny `malformed`), then the template shape the engine picks (first match in
    priority order), the method on it (an exact map; none is an unknown endpoint), and whether the
    token satisfies that endpoint (allow or deny, both named by `endpoint_id`).
    """
    principals = _Principals(catalog, options)
    entries = {}
    for node in ordered:
        by_method = {}
        for method, endpoint in node.endpoints.items():
            name = endpoint_id(node, method)
            decided = {"matcher_list": {"matchers": [{"predicate": principals.for_endpoint(endpoint),
                                                      "on_match": _action(name, True)}]},
                       "on_no_match": _action(name, False)}
            for request_method in node.request_methods(method, catalog.head_as_get):
                by_method[request_method] = {"matcher": decided}
        pattern = regex.node_pattern(node.segments, catalog.strip_trailing_slash, catalog.case_insensitive)
        entries[node.name] = {"predicate": _header_matches(":path", pattern), "on_match": {"matcher": {
            "matcher_tree": {"input": _header_input(":method"), "exact_match_map": {"map": by_method}},
            "on_no_match": _action(UNKNOWN, False)}}}
    refused_first = [
        {"predicate": _any([_header_matches(name, regex.ANY) for name in rewrite_header_names()]),
         "on_match": _action(REWRITE, False)},
        {"predicate": _any([{"not_matcher": _header_matches(":path", regex.WELLFORMED)},
                            _header_matches(":path", regex.TOO_LONG)]),
         "on_match": _action(MALFORMED, False)},
    ]
    return {"matcher_list": {"matchers": refused_first},
            "on_no_match": {"matcher": _path_dispatch(catalog, ordered, entries)}}


def decide_filter(catalog: Catalog, ordered: Sequence[Node], options: JwtOptions) -> dict[str, Any]:
    """The decision as shadow rules: Envoy records its name and verdict for every request and
    never acts on it (the enforcer does), so a deny still says which answer to give."""
    return {
        "name": "scopesvc.decide",
        "typed_config": {"@type": _RBAC_TYPE, "shadow_matcher": decision_matcher(catalog, ordered, options),
                         "shadow_rules_stat_prefix": DECIDE_PREFIX},
    }


def enforce_filter() -> dict[str, Any]:
    """Denies (403) exactly the requests the decision denied: one metadata lookup."""
    denied = {"metadata": {"filter": RBAC_NAMESPACE, "path": [{"key": SHADOW_RESULT}],
                           "value": {"string_match": {"exact": "denied"}}}}
    return {
        "name": "scopesvc.enforce",
        "typed_config": {"@type": _RBAC_TYPE, "rules": {"action": "DENY", "policies": {
            "decided-deny": {"permissions": [denied], "principals": [{"any": True}]}}}},
    }


class _Principals:
    """Matcher predicates over the verified JWT payload in metadata, as the adapter reads it."""

    def __init__(self, catalog: Catalog, options: JwtOptions) -> None:
        self.catalog = catalog
        self.options = options
        self.bounds: IatBounds = iat_bounds(catalog.scopes_introduced_at)
        self._cache: dict[tuple[str, ...], dict[str, Any]] = {}

    def _metadata(self, claim: str, value: dict[str, Any]) -> dict[str, Any]:
        """An Envoy MetadataMatcher: the payload's `claim` matches `value`."""
        return {"filter": JWT_FILTER, "path": [{"key": self.options.payload_key}, {"key": claim}], "value": value}

    def _claim(self, claim: str, value: dict[str, Any]) -> dict[str, Any]:
        metadata = self._metadata(claim, value)
        return {"single_predicate": {
            "input": {"name": "jwt_payload", "typed_config": {
                "@type": _TYPE + "envoy.extensions.matching.common_inputs.network.v3.DynamicMetadataInput",
                "filter": metadata["filter"], "path": metadata["path"]}},
            "custom_match": {"name": "jwt_claim", "typed_config": {
                "@type": _TYPE + "envoy.extensions.matching.input_matchers.metadata.v3.Metadata",
                "value": metadata["value"]}}}}

    def _word_values(self, pattern: str) -> list[tuple[str, dict[str, Any]]]:
        """`scope` or `scp`, a string or a list of strings, holding a word `pattern` matches."""
        string = {"string_match": {"safe_regex": {"regex": pattern}}}
        value = {"or_match": {"value_matchers": [string, {"list_match": {"one_of": string}}]}}
        return [("scope", value), ("scp", value)]

    def _words(self, pattern: str) -> dict[str, Any]:
        return _any([self._claim(claim, value) for claim, value in self._word_values(pattern)])

    @staticmethod
    def _iat_in(start: float, end: float) -> dict[str, Any]:
        return {"double_match": {"range": {"start": start, "end": end}}}

    def _iat(self, start: float, end: float) -> dict[str, Any]:
        return self._claim("iat", self._iat_in(start, end))

    def _unreadable_iat(self) -> dict[str, Any]:
        """A numeric `iat` the adapter cannot convert to a time: the engine refuses such a token.
        One lookup of the claim, tried against each unreadable range. (Envoy 1.40's jwt_authn
        itself answers 401 to an `iat` that is negative or 2**64 or more; past year 9999 is
        what reaches this, the rest is kept for a jwt_authn that reads `iat` more loosely.)"""
        bounds = self.bounds
        return self._claim("iat", {"or_match": {"value_matchers": [
            self._iat_in(-_MAX_DOUBLE, bounds.valid_start), self._iat_in(bounds.valid_end, _MAX_DOUBLE),
            {"double_match": {"exact": _MAX_DOUBLE}}]}})

    def _legacy(self) -> list[dict[str, Any]]:
        marks = []
        if self.bounds.legacy_end is not None and self.bounds.legacy_end > self.bounds.valid_start:
            marks.append(self._iat(self.bounds.valid_start, self.bounds.legacy_end))
        if self.options.legacy_claim:
            # Exactly JSON true or the strings "true"/"legacy" (gateway.attributes._LEGACY_STRINGS).
            marks.append(self._claim(self.options.legacy_claim, {"or_match": {"value_matchers": [
                {"bool_match": True}, {"string_match": {"exact": "true"}}, {"string_match": {"exact": "legacy"}}]}}))
        return marks

    def for_endpoint(self, endpoint: Endpoint) -> dict[str, Any]:
        """Allowed: a public endpoint with any token or none, else one of the endpoint's alternatives.

        A token whose `iat` the adapter cannot read is denied even on a public endpoint, where
        the engine's adapters refuse it before deciding."""
        if endpoint.public:
            return {"not_matcher": self._unreadable_iat()}
        return _any([self.for_scopes(scopes) for scopes in endpoint.any_of])

    def grants_scope(self, name: str) -> dict[str, Any]:
        """A local-reply filter: the verified token's `scope` or `scp` grants `name`."""
        pattern = regex.has_word(granting(self.catalog, name))
        return {"or_filter": {"filters": [
            {"metadata_filter": {"matcher": self._metadata(claim, value), "match_if_key_not_found": False}}
            for claim, value in self._word_values(pattern)]}}

    def for_scopes(self, scopes: tuple[str, ...]) -> dict[str, Any]:
        """Allowed: a readable `iat`, and legacy or granting every scope in `scopes` (at least one scope)."""
        cached = self._cache.get(scopes)
        if cached is not None:
            return cached
        if scopes:
            grants = [self._words(regex.has_word(granting(self.catalog, scope))) for scope in scopes]
        else:  # a token with no scope the catalog knows has no access, even where none is required
            grants = [self._words(regex.has_word(self.catalog.universe.names))]
        decided = _any([*self._legacy(), _every(grants)])
        predicate = _every([{"not_matcher": self._unreadable_iat()}, decided])
        self._cache[scopes] = predicate
        return predicate


# -- the answers -------------------------------------------------------------------------------


def _status(op: str, code: int) -> dict[str, Any]:
    # Envoy requires a runtime key; nothing sets it, so the default is the value compared.
    return {"status_code_filter": {"comparison": {"op": op, "value": {
        "default_value": code, "runtime_key": "scopesvc.local_reply.status"}}}}


# The first mapper: a local reply that is not a 403 (a router 503, jwt_authn's 401, a direct
# response) stops here unchanged. Every decision reply is a 403, so the mappers after this one
# need not compare the status, and any other reply costs one mapper, not the whole list.
NOT_A_DENY = {"filter": {"or_filter": {"filters": [_status("LE", 402), _status("GE", 404)]}}}


def _all(*filters: dict[str, Any]) -> dict[str, Any]:
    """Every one of `filters` (Envoy's and_filter takes two or more)."""
    return filters[0] if len(filters) == 1 else {"and_filter": {"filters": list(filters)}}


def format_literal(text: str) -> str:
    """`text` inside an Envoy format string (header values, formatted bodies): '%' doubled."""
    return text.replace("%", "%%")


def _headers(*pairs: tuple[str, str]) -> list[dict[str, Any]]:
    return [{"header": {"key": k, "value": format_literal(v)}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}
            for k, v in pairs]


def _json_reply(body: str) -> dict[str, Any]:
    return {"body": {"inline_string": body},
            "body_format_override": {"text_format_source": {"inline_string": "%LOCAL_REPLY_BODY%"},
                                     "content_type": "application/json"}}


def closest_by_grants(catalog: Catalog, endpoint: Endpoint) -> list[tuple[tuple[str, ...], int]]:
    """The alternative the engine's deny names, as (scopes the token grants, alternative) in
    first-match order: every combination of the alternatives' scopes that meets none of them,
    larger combinations first, so the first whose scopes a token all grants is exactly the
    combination it grants (`closest` reads nothing else of the token). The empty combination is
    always there: a token granting nothing is denied even where an alternative is empty."""
    universe = catalog.universe
    mentioned = [name for name in universe.names if universe.bit(name) & _union(endpoint.alternatives)]
    out = []
    for size in range(len(mentioned), -1, -1):
        for names in itertools.combinations(mentioned, size):
            granted = universe.mask(names)
            if not names or not any(mask & ~granted == 0 for mask in endpoint.alternatives):
                out.append((names, closest(universe, endpoint.alternatives, granted)[0]))
    return out


def _union(masks: Sequence[int]) -> int:
    union = 0
    for mask in masks:
        union |= mask
    return union


def _decided(names: Sequence[str]) -> dict[str, Any]:
    """A local-reply filter: the decision was named one of `names`."""
    values = [{"string_match": {"exact": name}} for name in names]
    value = values[0] if len(values) == 1 else {"or_match": {"value_matchers": values}}
    # match_if_key_not_found defaults to true: a request the decision did not name must not match.
    return {"metadata_filter": {"matcher": {"filter": RBAC_NAMESPACE, "path": [{"key": SHADOW_POLICY}],
                                            "value": value}, "match_if_key_not_found": False}}


def _endpoint_mappers(catalog: Catalog, ordered: Sequence[Node], principals: _Principals) -> list[dict[str, Any]]:
    """Each endpoint's 403: the endpoints that answer alike share one reply (fewer filters for
    Envoy to try on every local reply). An endpoint with alternatives gets its own replies, one
    per combination of granted scopes in `closest_by_grants` order, before the shared ones."""
    own: list[dict[str, Any]] = []
    shared: dict[tuple[str, str], list[str]] = {}
    for node in ordered:
        for method, endpoint in node.endpoints.items():
            name = endpoint_id(node, method)
            if endpoint.public:
                continue
            if len(endpoint.alternatives) == 1:
                shared.setdefault(endpoint.answers[0], []).append(name)
                continue
            for granted, alternative in closest_by_grants(catalog, endpoint):
                challenge, body = endpoint.answers[alternative]
                own.append({
                    "filter": _all(_decided([name]), *map(principals.grants_scope, granted)),
                    "headers_to_add": _headers(("www-authenticate", challenge)),
                    **_json_reply(body),
                })
    return own + [{"filter": _decided(names),
                   "headers_to_add": _headers(("www-authenticate", challenge)), **_json_reply(body)}
                  for (challenge, body), names in shared.items()]


def _unknown_mappers(catalog: Catalog) -> list[dict[str, Any]]:
    """The unknown-endpoint answer, whose message names the request (Engine._unknown_endpoint_message)."""
    challenge = _headers(("www-authenticate", bearer_challenge("insufficient_scope", "Unknown endpoint")))
    lower_case = {"header_filter": {"header": {"name": ":method", "string_match": {"safe_regex": {
        "regex": f"{regex.ANY}[a-z]{regex.ANY}"}}}}}
    long_path = {"header_filter": {"header": {"name": ":path", "string_match": {"safe_regex": {
        "regex": regex.longer_than(200)}}}}}
    mappers = []
    for method_filter, tail in ((lower_case, " (HTTP methods are case-sensitive)"),
                                (None, f" in catalog {format_literal(catalog.name)}")):
        for path_filter, shown in ((long_path, "%REQ(:PATH):200%..."), (None, "%REQ(:PATH)%")):
            extra = [f for f in (method_filter, path_filter) if f is not None]
            mappers.append({  # the last one takes every 403 left (Envoy requires a filter: status 403 is one)
                "filter": _all(*extra) if extra else _status("EQ", 403),
                "headers_to_add": challenge,
                "body_format_override": {"json_format": {
                    "title": "Forbidden", "message": f"no endpoint %REQ(:METHOD)% {shown}{tail}"}},
            })
    return mappers


def local_reply_config(catalog: Catalog, ordered: Sequence[Node], options: JwtOptions) -> dict[str, Any]:
    no_payload = {"filter": JWT_FILTER, "path": [{"key": options.payload_key}], "value": {"null_match": {}}}
    classified = {"filter": RBAC_NAMESPACE, "path": [{"key": SHADOW_RESULT}], "value": {"present_match": True}}
    unclassified = {"filter": RBAC_NAMESPACE, "path": [{"key": SHADOW_RESULT}], "value": {"null_match": {}}}
    # The engine's answer to a request without a token, asked with a method no catalog declares
    # (they are upper case), so a public endpoint (`GET /` may be one) cannot answer it.
    anonymous = Engine(catalog).check(None, "get", "/")
    mappers: list[dict[str, Any]] = [
        {   # jwt_authn refused the token before RBAC ran (it says 403 for a wrong audience): 401
            "filter": {"metadata_filter": {"matcher": unclassified, "match_if_key_not_found": True}},
            "status_code": 401,
        },
        {   # a header that would rewrite the method or path: 400 before anything else (REWRITE_HEADER)
            "filter": _decided([REWRITE]),
            "status_code": 400,
            **_json_reply(REWRITE_BODY),
        },
        {   # a malformed path is 400 before anything else, a missing token included
            "filter": _decided([MALFORMED]),
            "status_code": 400,
            **_json_reply(MALFORMED_BODY),
        },
        {   # denied and no verified payload: the request carried no token (MISSING_TOKEN)
            "filter": _all({"metadata_filter": {"matcher": classified, "match_if_key_not_found": False}},
                           {"metadata_filter": {"matcher": no_payload, "match_if_key_not_found": True}}),
            "status_code": anonymous.http_status,
            "headers_to_add": _headers(("www-authenticate", anonymous.www_authenticate)),
            **_json_reply(anonymous.body),
        },
    ]
    mappers += _endpoint_mappers(catalog, ordered, _Principals(catalog, options))
    return {"mappers": [NOT_A_DENY, *mappers, *_unknown_mappers(catalog)]}


# -- documents -------------------------------------------------------------------------------


def _check(catalog: Catalog) -> None:
    reasons = unsupported(catalog, frozenset({ANY_OF, PUBLIC}))
    for endpoint in catalog.endpoints:
        mentioned = _union(endpoint.alternatives).bit_count()
        if len(endpoint.alternatives) > 1 and mentioned > MAX_ANY_OF_SCOPES:
            reasons.append(f"{endpoint.key}: any_of alternatives naming {mentioned} scopes (at most "
                           f"{MAX_ANY_OF_SCOPES}: the deny names the closest alternative, one local reply "
                           f"per combination of them)")
    if reasons:
        raise ExportRefused("Envoy", reasons)


def http_filters(catalog: Catalog, options: JwtOptions) -> list[dict[str, Any]]:
    """The decision filters, in order (the router goes after them); ExportRefused for what is not encoded."""
    _check(catalog)
    ordered = nodes(catalog)
    return [jwt_authn_filter(options), decide_filter(catalog, ordered, options), enforce_filter()]


def connection_manager_settings(catalog: Catalog, options: JwtOptions) -> dict[str, Any]:
    """What to set on the HttpConnectionManager: path handling, local replies, the filters."""
    _check(catalog)
    return {
        **PATH_SETTINGS,
        "local_reply_config": local_reply_config(catalog, nodes(catalog), options),
        "http_filters": http_filters(catalog, options),
    }


def _cluster(name: str, host: str, port: int, tls_sni: str = "") -> dict[str, Any]:
    try:
        ipaddress.ip_address(host)
        kind = "STATIC"
    except ValueError:
        kind = "STRICT_DNS"
    cluster: dict[str, Any] = {
        "name": name, "type": kind, "connect_timeout": "1s",
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": {"socket_address": {"address": host, "port_value": port}}}}]}]},
    }
    if tls_sni:
        cluster["transport_socket"] = {"name": "envoy.transport_sockets.tls", "typed_config": {
            "@type": _TYPE + "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext", "sni": tls_sni}}
    return cluster


def parse_host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--upstream must be HOST:PORT, not {text!r}")
    return host, int(port)


def listener(catalog: Catalog, options: JwtOptions, port: int, address: str = "127.0.0.1") -> dict[str, Any]:
    """The API listener: the decision filters, then a route of everything to the `upstream` cluster."""
    manager = {
        "@type": _TYPE + "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "api",
        **connection_manager_settings(catalog, options),
        "route_config": {"name": "api", "virtual_hosts": [
            {"name": "api", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "upstream"}}]}]},
    }
    manager["http_filters"] = manager["http_filters"] + [{"name": "envoy.filters.http.router", "typed_config": {
        "@type": _TYPE + "envoy.extensions.filters.http.router.v3.Router"}}]
    return {
        "name": "api",
        "address": {"socket_address": {"address": address, "port_value": port}},
        "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                        "typed_config": manager}]}],
    }


def clusters(options: JwtOptions, upstream: str) -> list[dict[str, Any]]:
    host, port = parse_host_port(upstream)
    out = [_cluster("upstream", host, port)]
    if options.jwks_uri:
        parts = urlsplit(options.jwks_uri)
        https = parts.scheme == "https"
        out.append(_cluster(options.jwks_cluster, parts.hostname or "", parts.port or (443 if https else 80),
                            parts.hostname or "" if https else ""))
    return out


def bootstrap(catalog: Catalog, options: JwtOptions, listen_port: int, upstream: str,
              listen_address: str = "127.0.0.1", lds_path: str = "") -> dict[str, Any]:
    """A complete Envoy configuration: one listener in front of `upstream` (HOST:PORT).

    With `lds_path` the listener is not in it: Envoy reads it from that file (an LDS resource,
    `scopesvc export envoy --lds`) and reloads it whenever the file is replaced by a rename.
    """
    config: dict[str, Any] = {"node": {"id": "scopesvc-export", "cluster": "api"},
                              "static_resources": {"clusters": clusters(options, upstream)}}
    if lds_path:
        config["dynamic_resources"] = {"lds_config": {"resource_api_version": "V3", "path_config_source": {
            "path": lds_path, "watched_directory": {"path": os.path.dirname(os.path.abspath(lds_path))}}}}
    else:
        config["static_resources"]["listeners"] = [listener(catalog, options, listen_port, listen_address)]
    config["layered_runtime"] = {"layers": [{"name": "scopesvc", "static_layer": dict(RUNTIME)}]}
    return config
