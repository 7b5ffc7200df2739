"""The scope catalog: validated once from plain data, then compiled into lookup structures.

`compile_catalog(data)` takes the parsed YAML/JSON document (see docs/catalog.md for the
format) and either returns a `Catalog` or raises `CatalogError` listing every problem with
where it is (entry, and line when the reader knows it) and why; `validation.Validator` keeps the
list. Nothing is half-loaded: the catalog is built only when all of it is valid.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .paths import AmbiguousTemplates, MalformedPath, PathTrie, split_path, template_segments
from .scopes import ScopeUniverse
from .validation import TOP, Lines, Validator, Where, field, suggestion

FORMAT = "scopesvc.catalog/v1"
# The webhook subscription levels of a catalog that declares none (Calendly's).
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
    """One method + path template and what it requires, with its ready-made deny answers.

    The requirement is `any_of`: alternatives, any one of which suffices, each a set of scopes
    all needed (one alternative for `scopes: [...]`, none for a public endpoint). `scopes`,
    `mask`, `www_authenticate` and `deny_body` are those of the first alternative, which is the
    whole requirement of a single-set endpoint and one sufficient set of an any-of one.
    """

    method: str
    template: str
    key: str  # "METHOD /template"
    operation_id: str
    summary: str
    scopes: tuple[str, ...]
    mask: int
    www_authenticate: str
    deny_body: str
    any_of: tuple[tuple[str, ...], ...] = ()
    alternatives: tuple[int, ...] = ()  # the masks of `any_of`
    answers: tuple[tuple[str, str], ...] = ()  # (WWW-Authenticate, body) naming each alternative
    public: bool = False  # no token needed at all


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """A webhook event: receiving (and subscribing to) it needs one of `any_of`, at one of `subscription_scopes`.

    `scope` is the event's one scope when declared with `scope:` ("" with `any_of:`), `mask`
    the first alternative's mask.
    """

    name: str
    scope: str
    mask: int
    subscription_scopes: tuple[str, ...]
    any_of: tuple[tuple[str, ...], ...] = ()
    alternatives: tuple[int, ...] = ()


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
    """What one feature part (an endpoint, a webhook event or a scope) needs: any one of
    `alternatives` (scope masks); none for a public endpoint."""

    item: str
    kind: str  # "endpoint" | "event" | "scope"
    alternatives: tuple[int, ...]
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
    case_insensitive: bool = False  # static path text matches in any ASCII case
    subscription_levels: tuple[str, ...] = SUBSCRIPTION_SCOPES
    by_key: Mapping[str, Endpoint] = dataclasses.field(default_factory=dict)  # "METHOD /template" -> endpoint

    def find_endpoint(self, method: str, path: str) -> Endpoint | None:
        """The endpoint `METHOD path` names (concrete path or template); raises `MalformedPath`."""
        methods = self.trie.find(split_path(path, self.strip_trailing_slash))
        if methods is None:
            return None
        endpoint = methods.get(method)
        if endpoint is None and method == "HEAD" and self.head_as_get:
            endpoint = methods.get("GET")
        return endpoint

    def find_target(self, method: str, path: str) -> Endpoint | None:
        """The endpoint an operator names (Plan, Diagnose): its template exactly as written
        (`GET /files/{path=**}`), else the endpoint a request to `path` would match. Raises
        `LookupError` for a malformed path. Requests are matched by `find_endpoint` only."""
        named = self.by_key.get(f"{method} {path}")
        if named is not None:
            return named
        try:
            return self.find_endpoint(method, path)
        except MalformedPath as exc:
            raise LookupError(f"malformed path: {exc}") from None

    def resolve_part(self, item: str) -> Part:
        """What a feature part needs: `METHOD /path`, a webhook event, or a scope name.

        Raises `LookupError` with the reason when the item names nothing in the catalog.
        """
        match = _ENDPOINT_ITEM.fullmatch(item.strip())
        if match:
            method = match.group(1)
            if method != method.upper():
                raise LookupError(f"method {method!r} must be upper case")
            endpoint = self.find_target(method, match.group(2))
            if endpoint is None:
                raise LookupError(f"no endpoint {item!r} in the catalog")
            return Part(endpoint.key, "endpoint", endpoint.alternatives)
        event = self.events.get(item)
        if event is not None:
            # Receiving an event means subscribing to it first.
            return Part(item, "event", tuple(mask | self.subscribe_mask for mask in event.alternatives))
        if item in self.universe:
            return Part(item, "scope", (self.universe.bit(item),))
        pseudo = self.pseudo_scopes.get(item)
        if pseudo is not None:
            return Part(item, "scope", (self.universe.mask(pseudo.use),), pseudo.note())
        raise LookupError(f"{item!r} is not an endpoint ('METHOD /path'), a webhook event or a scope")


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


def compile_catalog(data: Any, source: str = "<catalog>", digest: str = "", lines: Lines | None = None) -> Catalog:
    """Validate `data` (a parsed catalog document) and compile it, or raise `CatalogError`.

    Every problem is reported in one pass: a section with problems is still read as far as it
    can be, so the sections after it are checked too. `lines` maps document paths to line
    numbers (given by the file reader when the format has them). `digest` (e.g. a hash of the
    file) is appended to the catalog's revision so two different documents with the same
    declared revision are still told apart.
    """
    check = Validator(source, lines)
    top = check.mapping(data, TOP, _TOP)
    if top is None:
        check.raise_if_any()
        raise AssertionError("unreachable: a non-mapping catalog is a problem")
    if top.get("format") != FORMAT:
        check.add(field("format"), f"must be {FORMAT!r}, not {top.get('format')!r}")
    name = check.string(top, "name", TOP)
    revision = check.string(top, "revision", TOP, required=False) or "0"
    description = check.string(top, "description", TOP, required=False)

    where = field("oauth")
    oauth = check.mapping(top.get("oauth", {}), where, ("authorize_url", "scopes_introduced_at")) or {}
    authorize_url = check.string(oauth, "authorize_url", where, required=False)
    if authorize_url and not re.fullmatch(r"https?://[^\s?#]+", authorize_url):
        check.add(where.item("authorize_url"), f"must be an http(s) URL without query, not {authorize_url!r}")
    introduced: dt.datetime | None = None
    if oauth.get("scopes_introduced_at") is not None:
        try:
            introduced = _parse_date(oauth["scopes_introduced_at"])
        except ValueError as exc:
            check.add(where.item("scopes_introduced_at"), str(exc))

    where = field("errors")
    errors = check.mapping(top.get("errors", {}), where, ("insufficient_scope",)) or {}
    where = where.item("insufficient_scope")
    body = check.mapping(errors.get("insufficient_scope", {}), where, ("title", "message")) or {}
    error_body = ErrorBody(
        title=check.string(body, "title", where, required=False) or "Insufficient scope",
        message=check.string(body, "message", where, required=False)
        or "This operation requires the scopes listed in the 'required_scopes' array.",
    )

    where = field("paths")
    paths = check.mapping(top.get("paths", {}), where, ("trailing_slash", "head_as_get", "case_insensitive")) or {}
    trailing = paths.get("trailing_slash", "strip")
    if trailing not in ("strip", "strict"):
        check.add(where.item("trailing_slash"), f"must be 'strip' or 'strict', not {trailing!r}")
    head_as_get = check.boolean(paths, "head_as_get", where, True)
    case_insensitive = check.boolean(paths, "case_insensitive", where, False)
    where = field("hierarchy")
    hierarchy = check.mapping(top.get("hierarchy", {}), where, ("write_implies_read",)) or {}
    write_implies_read = check.boolean(hierarchy, "write_implies_read", where, True)

    scopes = _scopes(check, top.get("scopes"))
    universe = ScopeUniverse(list(scopes), _implications(check, scopes, write_implies_read))
    pseudo = _pseudo_scopes(check, top.get("pseudo_scopes"), scopes)

    def scope_ref(name: str, where: Where) -> bool:
        """True when `name` is a catalog scope; else records why not (pseudo-scope, near miss)."""
        if name in scopes:
            return True
        if name in pseudo:
            check.add(where, pseudo[name].note())
        else:
            check.add(where, f"unknown scope {name!r}{suggestion(name, scopes)}")
        return False

    trie: PathTrie[Endpoint] = PathTrie(case_insensitive)
    endpoints = _endpoints(check, top.get("endpoints"), universe, scope_ref, error_body, trie)
    events, subscribe_scope, levels = _webhooks(check, top.get("webhooks"), universe, scope_ref)

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
        head_as_get=head_as_get,
        error_body=error_body,
        case_insensitive=case_insensitive,
        subscription_levels=levels,
        by_key={endpoint.key: endpoint for endpoint in endpoints},
    )
    features = _features(check, top.get("features"), catalog)
    check.raise_if_any()
    object.__setattr__(catalog, "features", features)
    return catalog


def _scopes(check: Validator, raw: Any) -> dict[str, Scope]:
    scopes: dict[str, Scope] = {}
    section = field("scopes")
    entries = check.entries(raw, section)
    if not entries:
        check.add(section, "at least one scope is required")
    for i, entry in enumerate(entries):
        where = section.item(i)
        item = check.mapping(entry, where, ("name", "category", "description", "implies"))
        if item is None:
            continue
        name = check.string(item, "name", where)
        if not name:
            continue
        where = where.named(name)
        if not _SCOPE_TOKEN.fullmatch(name):
            check.add(where / "name", "a scope name is 1-200 printable ASCII characters without space, '\"' or '\\'")
        elif name in scopes:
            check.add(where / "name", f"duplicate scope {name!r}")
        scopes[name] = Scope(
            name=name,
            category=check.string(item, "category", where, required=False),
            description=check.string(item, "description", where, required=False),
            implies=tuple(check.strings(item, "implies", where)),
        )
    return scopes


def _implications(check: Validator, scopes: Mapping[str, Scope], write_implies_read: bool) -> dict[str, list[str]]:
    """What each scope directly implies; with no implications at all when there is a cycle (already reported)."""
    implies: dict[str, list[str]] = {}
    section = field("scopes")
    for name, scope in scopes.items():
        direct: list[str] = []
        if write_implies_read and name.endswith(":write"):
            read = name[: -len(":write")] + ":read"
            if read in scopes:
                direct.append(read)
        where = Where(f"scopes ({name}).implies", section.path)
        for implied in scope.implies:
            if implied not in scopes:
                check.add(where, f"unknown scope {implied!r}{suggestion(implied, scopes)}")
            elif implied == name:
                check.add(where, "a scope cannot imply itself")
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
                    check.add(section, f"implication cycle: {' -> '.join(cycle)}")
                    return {}  # so the rest of the catalog can still be checked
                if not state.get(child):
                    state[child] = 1
                    stack.append((child, 0))
                    path.append(child)
            else:
                state[node] = 2
                stack.pop()
                path.pop()
    return implies


def _pseudo_scopes(check: Validator, raw: Any, scopes: Mapping[str, Scope]) -> dict[str, PseudoScope]:
    out: dict[str, PseudoScope] = {}
    section = field("pseudo_scopes")
    for i, entry in enumerate(check.entries(raw, section)):
        where = section.item(i)
        item = check.mapping(entry, where, ("name", "use", "reason"))
        if item is None:
            continue
        name = check.string(item, "name", where)
        use = check.strings(item, "use", where)
        if name in scopes:
            check.add(where / "name", f"{name!r} is a real scope and cannot also be a pseudo-scope")
        if not use:
            check.add(where, "'use' must name the real scopes to use instead")
        for scope in use:
            if scope not in scopes:
                check.add(where / "use", f"unknown scope {scope!r} in 'use'{suggestion(scope, scopes)}")
        reason = check.string(item, "reason", where, required=False) or "not a scope of this API"
        out[name] = PseudoScope(name, tuple(use), reason)
    return out


ScopeRef = Callable[[str, Where], bool]


def _any_of(check: Validator, item: Mapping[str, Any], where: Where, scope_ref: ScopeRef) -> list[tuple[str, ...]]:
    """The alternatives of `any_of: [[a], [b, c]]`: at least one, none repeated, known scopes only."""
    raw = item.get("any_of")
    where = where / "any_of"
    if not isinstance(raw, list) or not raw or not all(
            isinstance(alt, list) and all(isinstance(s, str) for s in alt) for alt in raw):
        check.add(where, "'any_of' must be a non-empty list of scope lists, e.g. [[a:read], [b:read, c:read]]")
        return []
    alternatives: list[tuple[str, ...]] = []
    seen: dict[frozenset[str], int] = {}
    for n, names in enumerate(raw):
        if len(set(names)) != len(names):
            check.add(where / n, f"alternative {n}: a scope is listed twice")
        if frozenset(names) in seen:
            check.add(where / n, f"alternative {n} repeats alternative {seen[frozenset(names)]}")
        seen.setdefault(frozenset(names), n)
        alternatives.append(tuple(name for k, name in enumerate(names) if scope_ref(name, where / n / k)))
    return alternatives


def _requirement(check: Validator, item: Mapping[str, Any], where: Where, scope_ref: ScopeRef,
                 single: str) -> tuple[bool, list[tuple[str, ...]]]:
    """(public, alternatives) of an endpoint (`single` = "scopes") or an event (`single` = "scope").

    Exactly one of `single`, `any_of` and (endpoints only) `public: true` is given.
    """
    public = single == "scopes" and check.boolean(item, "public", where, False)
    given = [key for key in (single, "any_of") if key in item]
    if public:
        if given:
            check.add(where, f"a public endpoint needs no token: give 'public: true' or '{given[0]}', not both")
        return True, []
    if len(given) == 2:
        check.add(where, f"give '{single}' or 'any_of' (alternatives, any one suffices), not both")
    if not given:
        if single == "scopes":
            check.add(where, "'scopes' is required (all needed; [] for a token with no particular scope), "
                             "or 'any_of' (any one set suffices), or 'public: true' (no token at all)")
        else:
            check.add(where, "'scope' is required (or 'any_of': alternatives, any one suffices)")
        return False, []
    if given[0] == "any_of":
        return False, _any_of(check, item, where, scope_ref)
    if single == "scope":
        name = check.string(item, "scope", where)
        return False, [(name,) if name and scope_ref(name, where / "scope") else ()]
    names = check.strings(item, "scopes", where)
    if len(set(names)) != len(names):
        check.add(where / "scopes", "a scope is listed twice")
    return False, [tuple(name for n, name in enumerate(names) if scope_ref(name, where / "scopes" / n))]


def _endpoints(check: Validator, raw: Any, universe: ScopeUniverse, scope_ref: ScopeRef, error_body: ErrorBody,
               trie: PathTrie[Endpoint]) -> tuple[Endpoint, ...]:
    endpoints: list[Endpoint] = []
    # (WWW-Authenticate, body) by required scopes: alternatives needing the same scopes share one.
    deny_answers: dict[tuple[str, ...], tuple[str, str]] = {}
    section = field("endpoints")
    for i, entry in enumerate(check.entries(raw, section)):
        where = section.item(i)
        item = check.mapping(entry, where, ("method", "path", "scopes", "any_of", "public", "operation_id", "summary"))
        if item is None:
            continue
        method = check.string(item, "method", where)
        template = check.string(item, "path", where)
        where = where.named(f"{method} {template}")
        valid = True
        if method and not _METHOD.fullmatch(method):
            check.add(where / "method", f"bad method {method!r}: an upper-case HTTP method token")
            valid = False
        try:
            segments = template_segments(template)
        except MalformedPath as exc:
            check.add(where / "path", f"bad path template: {exc}")
            valid = False
        public, any_of = _requirement(check, item, where, scope_ref, "scopes")
        if not valid:
            continue
        answers = []
        for scopes in any_of:
            answer = deny_answers.get(scopes)
            if answer is None:
                answer = deny_answers[scopes] = (
                    bearer_challenge("insufficient_scope", error_body.title, scopes),
                    json.dumps({"title": error_body.title, "message": error_body.message,
                                "required_scopes": list(scopes)}, separators=(",", ":")),
                )
            answers.append(answer)
        masks = tuple(universe.mask(scopes) for scopes in any_of)
        endpoint = Endpoint(
            method=method,
            template=template,
            key=f"{method} {template}",
            operation_id=check.string(item, "operation_id", where, required=False),
            summary=check.string(item, "summary", where, required=False),
            scopes=any_of[0] if any_of else (),
            mask=masks[0] if masks else 0,
            www_authenticate=answers[0][0] if answers else "",
            deny_body=answers[0][1] if answers else "",
            any_of=tuple(any_of),
            alternatives=masks,
            answers=tuple(answers),
            public=public,
        )
        try:
            clash = trie.add(segments, method, endpoint)
        except AmbiguousTemplates as exc:
            check.add(where / "path", f"cannot be told apart from {exc.other}: both have a parameter with as much "
                                      "literal text around it, and one segment can match both (docs/paths.md)")
            continue
        if clash is not None:
            what = "duplicate endpoint" if clash.template == template else "conflicts with"
            check.add(where, f"{what} {clash.key} (same method, same path shape)")
            continue
        endpoints.append(endpoint)
    return tuple(endpoints)


def _levels(check: Validator, hooks: Mapping[str, Any], where: Where) -> tuple[str, ...]:
    """`webhooks.subscription_levels`, or organization/user/group when the catalog declares none."""
    if "subscription_levels" not in hooks:
        return SUBSCRIPTION_SCOPES
    levels = check.strings(hooks, "subscription_levels", where)
    where = where.item("subscription_levels")
    if not levels:
        check.add(where, "list at least one subscription level (omit the field for organization, user, group)")
        return SUBSCRIPTION_SCOPES
    for n, level in enumerate(levels):
        if not _NAME.fullmatch(level):
            check.add(where / n, f"bad level {level!r}: lower-case letters, digits, '_', '.', '-'")
    if len(set(levels)) != len(levels):
        check.add(where, "a level is listed twice")
    return tuple(dict.fromkeys(levels))


def _webhooks(
    check: Validator, raw: Any, universe: ScopeUniverse, scope_ref: ScopeRef
) -> tuple[dict[str, WebhookEvent], str, tuple[str, ...]]:
    if raw is None:
        return {}, "", SUBSCRIPTION_SCOPES
    section = field("webhooks")
    hooks = check.mapping(raw, section, ("subscribe_scope", "subscription_levels", "events"))
    if hooks is None:
        return {}, "", SUBSCRIPTION_SCOPES
    levels = _levels(check, hooks, section)
    subscribe_scope = check.string(hooks, "subscribe_scope", section)
    if subscribe_scope:
        scope_ref(subscribe_scope, section.item("subscribe_scope"))
    events: dict[str, WebhookEvent] = {}
    section = section.item("events")
    for i, entry in enumerate(check.entries(hooks.get("events"), section)):
        where = section.item(i)
        item = check.mapping(entry, where, ("name", "scope", "any_of", "subscription_scopes"))
        if item is None:
            continue
        name = check.string(item, "name", where)
        where = where.named(name)
        if name and not _NAME.fullmatch(name):
            check.add(where / "name", "an event name is lower-case letters, digits, '_', '.', '-'")
        if name in events:
            check.add(where / "name", f"duplicate event {name!r}")
        _, any_of = _requirement(check, item, where, scope_ref, "scope")
        # Omitted (or empty): every level the catalog declares.
        subs = check.strings(item, "subscription_scopes", where) or list(levels)
        for sub in subs:
            if sub not in levels:
                check.add(where / "subscription_scopes",
                          f"subscription scope {sub!r} is not one of {', '.join(levels)}{suggestion(sub, levels)}")
        masks = tuple(universe.mask(scopes) for scopes in any_of)
        scope = any_of[0][0] if "scope" in item and any_of and any_of[0] else ""
        events[name] = WebhookEvent(name, scope, masks[0] if masks else 0, tuple(subs), tuple(any_of), masks)
    return events, subscribe_scope, levels


def _features(check: Validator, raw: Any, catalog: Catalog) -> dict[str, Feature]:
    features: dict[str, Feature] = {}
    section = field("features")
    # What a feature part may name, for "did you mean" on a near miss.
    names = [e.key for e in catalog.endpoints] + list(catalog.events) + list(catalog.universe.names)
    for i, entry in enumerate(check.entries(raw, section)):
        where = section.item(i)
        item = check.mapping(entry, where, ("name", "description", "requires", "optional"))
        if item is None:
            continue
        name = check.string(item, "name", where)
        where = where.named(name)
        if name and not _NAME.fullmatch(name):
            check.add(where / "name", "a feature name is lower-case letters, digits, '_', '.', '-'")
        if name in features or name in catalog.events:
            check.add(where / "name", f"duplicate name {name!r}")
        parts: dict[str, list[Part]] = {"requires": [], "optional": []}
        listed = {key: check.strings(item, key, where) for key in parts}
        for key, out in parts.items():
            for n, item_text in enumerate(listed[key]):
                part_where = where.item(key) / n
                try:
                    part = catalog.resolve_part(item_text)
                except LookupError as exc:
                    check.add(part_where, f"{exc}{suggestion(item_text, names)}")
                    continue
                if part.note:
                    check.add(part_where, part.note)
                out.append(part)
        if not listed["requires"]:  # not when all it lists are wrong: they are reported already
            check.add(where, "'requires' must list at least one endpoint, event or scope")
        description = check.string(item, "description", where, required=False)
        features[name] = Feature(name, description, tuple(parts["requires"]), tuple(parts["optional"]))
    return features
