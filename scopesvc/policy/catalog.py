"""The scope catalog: validated once from plain data, then compiled into lookup structures.

`compile_catalog(data)` takes the parsed YAML/JSON document (see docs/catalog.md for the
format) and either returns a `Catalog` or raises `CatalogError` listing every problem with
where it is and why. Nothing is half-loaded: the catalog is built only when all of it is valid.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import CatalogError
from .paths import MalformedPath, PathTrie, split_path, template_segments
from .scopes import ScopeUniverse

FORMAT = "scopesvc.catalog/v1"
SUBSCRIPTION_SCOPES = ("organization", "user", "group")

# RFC 6749 scope-token: printable ASCII except space, '"' and '\'.
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,200}")
_METHOD = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Z]{1,20}")
_NAME = re.compile(r"[a-z0-9][a-z0-9_.\-]{0,99}")
_ENDPOINT_ITEM = re.compile(r"([A-Za-z]+) +(\S+)")


@dataclass(frozen=True, slots=True)
class Scope:
    name: str
    category: str
    description: str
    implies: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One method + path template and what it requires, with its ready-made deny answer."""

    method: str
    template: str
    key: str  # "METHOD /template"
    operation_id: str
    summary: str
    scopes: tuple[str, ...]
    mask: int
    www_authenticate: str
    deny_body: str


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    name: str
    scope: str
    mask: int
    subscription_scopes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PseudoScope:
    """A scope name that people use but the API does not have (e.g. `invitees:read`)."""

    name: str
    use: tuple[str, ...]
    reason: str

    def note(self) -> str:
        return f"{self.name} is not a real scope: {self.reason}; use {' '.join(self.use)} instead"


@dataclass(frozen=True, slots=True)
class Part:
    """What one feature part (an endpoint, a webhook event or a scope) needs."""

    item: str
    kind: str  # "endpoint" | "event" | "scope"
    mask: int
    note: str = ""


@dataclass(frozen=True, slots=True)
class Feature:
    name: str
    description: str
    requires: tuple[Part, ...]
    optional: tuple[Part, ...]


@dataclass(frozen=True, slots=True)
class ErrorBody:
    title: str
    message: str


@dataclass(frozen=True)
class Catalog:
    """A compiled catalog. Immutable: a reload builds a new one and swaps the reference."""

    name: str
    revision: str
    description: str
    source: str
    authorize_url: str
    scopes_introduced_at: dt.datetime | None
    universe: ScopeUniverse
    scopes: Mapping[str, Scope]
    endpoints: tuple[Endpoint, ...]
    trie: PathTrie[Endpoint]
    events: Mapping[str, WebhookEvent]
    subscribe_scope: str
    subscribe_mask: int
    features: Mapping[str, Feature]
    pseudo_scopes: Mapping[str, PseudoScope]
    strip_trailing_slash: bool
    head_as_get: bool
    error_body: ErrorBody

    def find_endpoint(self, method: str, path: str) -> Endpoint | None:
        """The endpoint `METHOD path` names (concrete path or template); raises `MalformedPath`."""
        methods = self.trie.find(split_path(path, self.strip_trailing_slash))
        if methods is None:
            return None
        endpoint = methods.get(method)
        if endpoint is None and method == "HEAD" and self.head_as_get:
            endpoint = methods.get("GET")
        return endpoint

    def resolve_part(self, item: str) -> Part:
        """What a feature part needs: `METHOD /path`, a webhook event, or a scope name.

        Raises `LookupError` with the reason when the item names nothing in the catalog.
        """
        match = _ENDPOINT_ITEM.fullmatch(item.strip())
        if match:
            method = match.group(1)
            if method != method.upper():
                raise LookupError(f"method {method!r} must be upper case")
            try:
                endpoint = self.find_endpoint(method, match.group(2))
            except MalformedPath as exc:
                raise LookupError(str(exc)) from None
            if endpoint is None:
                raise LookupError(f"no endpoint {item!r} in the catalog")
            return Part(endpoint.key, "endpoint", endpoint.mask)
        event = self.events.get(item)
        if event is not None:
            # Receiving an event means subscribing to it first.
            return Part(item, "event", event.mask | self.subscribe_mask)
        if item in self.universe:
            return Part(item, "scope", self.universe.bit(item))
        pseudo = self.pseudo_scopes.get(item)
        if pseudo is not None:
            return Part(item, "scope", self.universe.mask(pseudo.use), pseudo.note())
        raise LookupError(f"{item!r} is not an endpoint ('METHOD /path'), a webhook event or a scope")


class _Issues:
    """Collects validation problems so one load reports all of them."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, where: str, reason: str) -> None:
        self.items.append(f"{where}: {reason}")

    def string(self, obj: Mapping[str, Any], key: str, where: str, required: bool = True) -> str:
        value = obj.get(key)
        if value is None:
            if required:
                self.add(where, f"'{key}' is required")
            return ""
        if not isinstance(value, str):
            self.add(where, f"'{key}' must be a string, not {type(value).__name__}")
            return ""
        return value

    def strings(self, obj: Mapping[str, Any], key: str, where: str) -> list[str]:
        value = obj.get(key, [])
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.add(where, f"'{key}' must be a list of strings")
            return []
        return value

    def mapping(self, value: Any, where: str, allowed: Sequence[str]) -> Mapping[str, Any] | None:
        if not isinstance(value, Mapping):
            self.add(where, f"must be a mapping, not {type(value).__name__}")
            return None
        for key in value:
            if key not in allowed:
                self.add(where, f"unknown field {key!r} (expected one of: {', '.join(allowed)})")
        return value

    def entries(self, value: Any, where: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.add(where, f"must be a list, not {type(value).__name__}")
            return []
        return value


def bearer_challenge(error: str, description: str, scopes: Sequence[str] = (), realm: str = "") -> str:
    """An RFC 6750 `WWW-Authenticate` value; quoted strings are escaped.

    With no `error` it is the challenge for a request without credentials (section 3.1): the
    realm alone, no error code.
    """

    def quoted(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    params = [f"realm={quoted(realm)}"] if realm else []
    if error:
        params += [f"error={quoted(error)}", f"error_description={quoted(description)}"]
        if scopes:
            params.append(f"scope={quoted(' '.join(scopes))}")
    return "Bearer " + ", ".join(params) if params else "Bearer"


def _parse_date(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc)
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                return _parse_date(dt.date.fromisoformat(text))
            return _parse_date(dt.datetime.fromisoformat(text.replace("Z", "+00:00")))
        except ValueError:
            pass
    raise ValueError(f"bad date {value!r}: expected YYYY-MM-DD or an ISO 8601 timestamp")


_TOP = (
    "format", "name", "revision", "description", "oauth", "errors", "paths", "hierarchy",
    "scopes", "pseudo_scopes", "endpoints", "webhooks", "features",
)  # fmt: skip


def compile_catalog(data: Any, source: str = "<catalog>", digest: str = "") -> Catalog:
    """Validate `data` (a parsed catalog document) and compile it, or raise `CatalogError`.

    `digest` (e.g. a hash of the file) is appended to the catalog's revision so two different
    documents with the same declared revision are still told apart.
    """
    issues = _Issues()
    top = issues.mapping(data, "catalog", _TOP)
    if top is None:
        raise CatalogError(source, issues.items)
    if top.get("format") != FORMAT:
        issues.add("format", f"must be {FORMAT!r}, not {top.get('format')!r}")
    name = issues.string(top, "name", "catalog")
    revision = issues.string(top, "revision", "catalog", required=False) or "0"
    description = issues.string(top, "description", "catalog", required=False)

    oauth = issues.mapping(top.get("oauth", {}), "oauth", ("authorize_url", "scopes_introduced_at")) or {}
    authorize_url = issues.string(oauth, "authorize_url", "oauth", required=False)
    if authorize_url and not re.fullmatch(r"https?://[^\s?#]+", authorize_url):
        issues.add("oauth.authorize_url", f"must be an http(s) URL without query, not {authorize_url!r}")
    introduced: dt.datetime | None = None
    if oauth.get("scopes_introduced_at") is not None:
        try:
            introduced = _parse_date(oauth["scopes_introduced_at"])
        except ValueError as exc:
            issues.add("oauth.scopes_introduced_at", str(exc))

    errors = issues.mapping(top.get("errors", {}), "errors", ("insufficient_scope",)) or {}
    body = issues.mapping(errors.get("insufficient_scope", {}), "errors.insufficient_scope", ("title", "message")) or {}
    error_body = ErrorBody(
        title=issues.string(body, "title", "errors.insufficient_scope", required=False) or "Insufficient scope",
        message=issues.string(body, "message", "errors.insufficient_scope", required=False)
        or "This operation requires the scopes listed in the 'required_scopes' array.",
    )

    paths = issues.mapping(top.get("paths", {}), "paths", ("trailing_slash", "head_as_get")) or {}
    trailing = paths.get("trailing_slash", "strip")
    if trailing not in ("strip", "strict"):
        issues.add("paths.trailing_slash", f"must be 'strip' or 'strict', not {trailing!r}")
    head_as_get = paths.get("head_as_get", True)
    if not isinstance(head_as_get, bool):
        issues.add("paths.head_as_get", "must be true or false")
    hierarchy = issues.mapping(top.get("hierarchy", {}), "hierarchy", ("write_implies_read",)) or {}
    write_implies_read = hierarchy.get("write_implies_read", True)
    if not isinstance(write_implies_read, bool):
        issues.add("hierarchy.write_implies_read", "must be true or false")

    scopes = _scopes(issues, top.get("scopes"))
    implies = _implications(issues, scopes, write_implies_read is True)
    pseudo = _pseudo_scopes(issues, top.get("pseudo_scopes"), scopes)

    def scope_ref(name: str, where: str) -> bool:
        if name in scopes:
            return True
        if name in pseudo:
            issues.add(where, pseudo[name].note())
        else:
            issues.add(where, f"unknown scope {name!r}")
        return False

    if issues.items:  # scope problems make everything after them noise
        raise CatalogError(source, issues.items)
    universe = ScopeUniverse(list(scopes), implies)
    endpoints, trie = _endpoints(issues, top.get("endpoints"), universe, scope_ref, error_body)
    events, subscribe_scope = _webhooks(issues, top.get("webhooks"), universe, scope_ref)

    catalog = Catalog(
        name=name,
        revision=f"{revision}+{digest}" if digest else revision,
        description=description,
        source=source,
        authorize_url=authorize_url,
        scopes_introduced_at=introduced,
        universe=universe,
        scopes=scopes,
        endpoints=endpoints,
        trie=trie,
        events=events,
        subscribe_scope=subscribe_scope,
        subscribe_mask=universe.bit(subscribe_scope) if subscribe_scope in universe else 0,
        features={},
        pseudo_scopes=pseudo,
        strip_trailing_slash=trailing != "strict",
        head_as_get=head_as_get is True,
        error_body=error_body,
    )
    features = _features(issues, top.get("features"), catalog)
    if issues.items:
        raise CatalogError(source, issues.items)
    object.__setattr__(catalog, "features", features)
    return catalog


def _scopes(issues: _Issues, raw: Any) -> dict[str, Scope]:
    scopes: dict[str, Scope] = {}
    entries = issues.entries(raw, "scopes")
    if not entries:
        issues.add("scopes", "at least one scope is required")
    for i, entry in enumerate(entries):
        where = f"scopes[{i}]"
        item = issues.mapping(entry, where, ("name", "category", "description", "implies"))
        if item is None:
            continue
        name = issues.string(item, "name", where)
        if not name:
            continue
        where = f"scopes[{i}] ({name})"
        if not _SCOPE_TOKEN.fullmatch(name):
            issues.add(where, "a scope name is 1-200 printable ASCII characters without space, '\"' or '\\'")
        elif name in scopes:
            issues.add(where, f"duplicate scope {name!r}")
        scopes[name] = Scope(
            name=name,
            category=issues.string(item, "category", where, required=False),
            description=issues.string(item, "description", where, required=False),
            implies=tuple(issues.strings(item, "implies", where)),
        )
    return scopes


def _implications(issues: _Issues, scopes: Mapping[str, Scope], write_implies_read: bool) -> dict[str, list[str]]:
    implies: dict[str, list[str]] = {}
    for name, scope in scopes.items():
        direct: list[str] = []
        if write_implies_read and name.endswith(":write"):
            read = name[: -len(":write")] + ":read"
            if read in scopes:
                direct.append(read)
        for implied in scope.implies:
            if implied not in scopes:
                issues.add(f"scopes ({name}).implies", f"unknown scope {implied!r}")
            elif implied == name:
                issues.add(f"scopes ({name}).implies", "a scope cannot imply itself")
            elif implied not in direct:
                direct.append(implied)
        implies[name] = direct
    # Cycle check (iterative DFS, colours: 1 = on stack, 2 = done).
    state: dict[str, int] = {}
    for root in implies:
        if state.get(root):
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        path: list[str] = [root]
        state[root] = 1
        while stack:
            node, index = stack[-1]
            children = implies.get(node, [])
            if index < len(children):
                stack[-1] = (node, index + 1)
                child = children[index]
                if state.get(child) == 1:
                    cycle = path[path.index(child) :] + [child]
                    issues.add("scopes", f"implication cycle: {' -> '.join(cycle)}")
                    return implies
                if not state.get(child):
                    state[child] = 1
                    stack.append((child, 0))
                    path.append(child)
            else:
                state[node] = 2
                stack.pop()
                path.pop()
    return implies


def _pseudo_scopes(issues: _Issues, raw: Any, scopes: Mapping[str, Scope]) -> dict[str, PseudoScope]:
    out: dict[str, PseudoScope] = {}
    for i, entry in enumerate(issues.entries(raw, "pseudo_scopes")):
        where = f"pseudo_scopes[{i}]"
        item = issues.mapping(entry, where, ("name", "use", "reason"))
        if item is None:
            continue
        name = issues.string(item, "name", where)
        use = issues.strings(item, "use", where)
        if name in scopes:
            issues.add(where, f"{name!r} is a real scope and cannot also be a pseudo-scope")
        if not use:
            issues.add(where, "'use' must name the real scopes to use instead")
        for scope in use:
            if scope not in scopes:
                issues.add(where, f"unknown scope {scope!r} in 'use'")
        out[name] = PseudoScope(name, tuple(use), issues.string(item, "reason", where, required=False) or "not a scope of this API")
    return out


def _endpoints(issues: _Issues, raw: Any, universe: ScopeUniverse, scope_ref: Any, error_body: ErrorBody) -> tuple[tuple[Endpoint, ...], PathTrie[Endpoint]]:
    trie: PathTrie[Endpoint] = PathTrie()
    endpoints: list[Endpoint] = []
    # (WWW-Authenticate, body) by required scopes: endpoints needing the same scopes share one.
    deny_answers: dict[tuple[str, ...], tuple[str, str]] = {}
    for i, entry in enumerate(issues.entries(raw, "endpoints")):
        where = f"endpoints[{i}]"
        item = issues.mapping(entry, where, ("method", "path", "scopes", "operation_id", "summary"))
        if item is None:
            continue
        method = issues.string(item, "method", where)
        template = issues.string(item, "path", where)
        where = f"endpoints[{i}] ({method} {template})"
        valid = True
        if method and not _METHOD.fullmatch(method):
            issues.add(where, f"bad method {method!r}: an upper-case HTTP method token")
            valid = False
        try:
            segments = template_segments(template)
        except MalformedPath as exc:
            issues.add(where, f"bad path template: {exc}")
            valid = False
        names = issues.strings(item, "scopes", where)
        if "scopes" not in item:
            issues.add(where, "'scopes' is required (use [] for an endpoint that needs no scope)")
        known = [name for name in names if scope_ref(name, where)]
        if len(set(names)) != len(names):
            issues.add(where, "a scope is listed twice")
        if not valid:
            continue
        key = f"{method} {template}"
        scopes = tuple(known)
        answer = deny_answers.get(scopes)
        if answer is None:
            answer = deny_answers[scopes] = (
                bearer_challenge("insufficient_scope", error_body.title, known),
                json.dumps({"title": error_body.title, "message": error_body.message, "required_scopes": known},
                           separators=(",", ":")),
            )
        endpoint = Endpoint(
            method=method,
            template=template,
            key=key,
            operation_id=issues.string(item, "operation_id", where, required=False),
            summary=issues.string(item, "summary", where, required=False),
            scopes=scopes,
            mask=universe.mask(known),
            www_authenticate=answer[0],
            deny_body=answer[1],
        )
        clash = trie.add(segments, method, endpoint)
        if clash is not None:
            what = "duplicate endpoint" if clash.template == template else "conflicts with"
            issues.add(where, f"{what} {clash.key} (same method, same path shape)")
            continue
        endpoints.append(endpoint)
    return tuple(endpoints), trie


def _webhooks(issues: _Issues, raw: Any, universe: ScopeUniverse, scope_ref: Any) -> tuple[dict[str, WebhookEvent], str]:
    if raw is None:
        return {}, ""
    hooks = issues.mapping(raw, "webhooks", ("subscribe_scope", "events"))
    if hooks is None:
        return {}, ""
    subscribe_scope = issues.string(hooks, "subscribe_scope", "webhooks")
    if subscribe_scope:
        scope_ref(subscribe_scope, "webhooks.subscribe_scope")
    events: dict[str, WebhookEvent] = {}
    for i, entry in enumerate(issues.entries(hooks.get("events"), "webhooks.events")):
        where = f"webhooks.events[{i}]"
        item = issues.mapping(entry, where, ("name", "scope", "subscription_scopes"))
        if item is None:
            continue
        name = issues.string(item, "name", where)
        where = f"webhooks.events[{i}] ({name})"
        if name and not _NAME.fullmatch(name):
            issues.add(where, "an event name is lower-case letters, digits, '_', '.', '-'")
        if name in events:
            issues.add(where, f"duplicate event {name!r}")
        scope = issues.string(item, "scope", where)
        ok = bool(scope) and scope_ref(scope, where)
        subs = issues.strings(item, "subscription_scopes", where) or list(SUBSCRIPTION_SCOPES)
        for sub in subs:
            if sub not in SUBSCRIPTION_SCOPES:
                issues.add(where, f"subscription scope {sub!r} is not one of {', '.join(SUBSCRIPTION_SCOPES)}")
        events[name] = WebhookEvent(name, scope, universe.bit(scope) if ok else 0, tuple(subs))
    return events, subscribe_scope


def _features(issues: _Issues, raw: Any, catalog: Catalog) -> dict[str, Feature]:
    features: dict[str, Feature] = {}
    for i, entry in enumerate(issues.entries(raw, "features")):
        where = f"features[{i}]"
        item = issues.mapping(entry, where, ("name", "description", "requires", "optional"))
        if item is None:
            continue
        name = issues.string(item, "name", where)
        where = f"features[{i}] ({name})"
        if name and not _NAME.fullmatch(name):
            issues.add(where, "a feature name is lower-case letters, digits, '_', '.', '-'")
        if name in features or name in catalog.events:
            issues.add(where, f"duplicate name {name!r}")
        parts: dict[str, list[Part]] = {"requires": [], "optional": []}
        for key, out in parts.items():
            for item_text in issues.strings(item, key, where):
                try:
                    part = catalog.resolve_part(item_text)
                except LookupError as exc:
                    issues.add(f"{where}.{key}", str(exc))
                    continue
                if part.note:
                    issues.add(f"{where}.{key}", part.note)
                out.append(part)
        if not parts["requires"]:
            issues.add(where, "'requires' must list at least one endpoint, event or scope")
        features[name] = Feature(name, issues.string(item, "description", where, required=False), tuple(parts["requires"]), tuple(parts["optional"]))
    return features
