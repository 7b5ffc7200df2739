"""The decision engine: a compiled catalog in, decisions out. No I/O, no clock, no globals.

Rules (docs/policy.md explains each):
- a request with no credentials at all (token None) is MISSING_TOKEN, answered 401 without an error code;
- a token's scopes grant themselves and all they imply (`X:write` grants `X:read`), never the reverse;
- an endpoint is allowed when the token grants every scope it lists;
- a legacy token (format LEGACY, or format unset and issued before the catalog's cut-over)
  has full access to every endpoint; a token of unknown format is denied;
- a scoped token with no scopes has no access at all, and scope names the catalog does not know
  grant nothing (they are reported back): a token with only such names is a token with no scopes;
- a path that is malformed or names no endpoint is denied with its own reason;
- a gateway request is decided as the upstream will receive it: a route's endpoint name never
  changes its method, and a header that would change it after the decision denies it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection, Iterable, Sequence
from urllib.parse import quote, urlsplit

from .catalog import Catalog, Endpoint, Part, bearer_challenge
from .cover import closest, minimum_cover
from .errors import RequestError
from .model import (
    REWRITE_HEADERS,
    Cause,
    Decision,
    Diagnosis,
    MissingScope,
    OverBroad,
    Plan,
    Reason,
    ScopeUse,
    Token,
    TokenFormat,
    TokenKind,
    WebhookDecision,
)
from .paths import MalformedPath

_FORMATS = {int(f): f for f in TokenFormat}
_REWRITE_HEADERS = frozenset(REWRITE_HEADERS)
_REWRITE_LENGTHS = frozenset(map(len, REWRITE_HEADERS))  # a cheap first test: most names fail it
_MAX_ANSWERS = 100_000
_MAX_SHARED_UNKNOWN = 4
_MAX_SHARED_UNKNOWN_CHARS = 128
_NO_SCOPES_MESSAGE: dict[int, str] = {
    TokenKind.PERSONAL_ACCESS_TOKEN: (
        "this personal access token has no scopes: create a new token with the scopes it needs"
    ),
}
_NO_SCOPES_DEFAULT = (
    "this token has no scopes: the app must request the scopes it needs and the user must approve them"
)


_MISSING_TOKEN_MESSAGE = "this request carries no access token"


def _body(title: str, message: str) -> str:
    return json.dumps({"title": title, "message": message}, separators=(",", ":"))


def invalid_token(description: str) -> Decision:
    """The deny for a credential that is not a valid access token (RFC 6750 section 3: 401, invalid_token).

    `description` goes into the challenge and the body, so callers pass fixed text, never token content.
    """
    message = f"invalid access token: {description}"
    return Decision(False, Reason.INVALID_TOKEN, message, None, (), (), TokenFormat.UNSPECIFIED, 401,
                    bearer_challenge("invalid_token", description), _body("Unauthorized", message))


class Engine:
    """Answers every scope question against one compiled catalog."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        universe = catalog.universe
        # What a legacy token could do, as the fewest scopes that do exactly that: one alternative
        # of every endpoint and event (with the subscription scope). With nothing required
        # anywhere that is no scope, and a token without scopes has no access at all: the
        # catalog's first scope then stands in (any scope opens every endpoint that needs none).
        everything = [endpoint.alternatives for endpoint in catalog.endpoints]
        everything += [self._event_alternatives(event.name) for event in catalog.events.values()]
        legacy = minimum_cover(universe, everything)
        self.legacy_scopes: tuple[str, ...] = tuple(universe.to_names(legacy.mask)) or universe.names[:1]
        # RFC 6750 section 3.1: a request with no credentials gets a challenge with no error code.
        self._missing_token_challenge = bearer_challenge("", "", realm=catalog.name)
        self._unknown_endpoint_challenge = bearer_challenge("insufficient_scope", "Unknown endpoint")
        self._invalid_token_challenge = bearer_challenge("invalid_token", "Unknown token format")
        # Reusable answers by (endpoint key, format, alternative, missing mask, unknown scopes); see `_answer`.
        self._answers: dict[tuple[str, TokenFormat, int, int, tuple[str, ...]], Decision] = {}

    # -- tokens ---------------------------------------------------------------------------

    def token_format(self, token: Token) -> TokenFormat | None:
        """The token's effective format; None when its format value is unknown."""
        fmt = _FORMATS.get(token.format)
        if fmt is None:
            return None
        if fmt != TokenFormat.UNSPECIFIED:
            return fmt
        cutover = self.catalog.scopes_introduced_at
        issued_at = token.issued_at
        if issued_at is not None and cutover is not None:
            if issued_at.tzinfo is None:  # a naive time is taken as UTC, as the catalog's dates are
                issued_at = issued_at.replace(tzinfo=dt.UTC)
            if issued_at < cutover:
                return TokenFormat.LEGACY
        # No proof of legacy: treat as scoped, the form with less access.
        return TokenFormat.SCOPED

    def migrate(self, token: Token) -> Token:
        """Refresh a token into the scoped format, keeping exactly the access it had."""
        fmt = self.token_format(token)
        if fmt is None:
            raise RequestError("format", f"unknown token format {token.format}")
        if fmt == TokenFormat.SCOPED:
            return Token(token.scopes, TokenFormat.SCOPED, token.issued_at, token.kind)
        return Token(self.legacy_scopes, TokenFormat.SCOPED, token.issued_at, token.kind)

    # -- Check ----------------------------------------------------------------------------

    def check(self, token: Token | None, method: str, path: str) -> Decision:
        """Decide whether `token` may call `method path` (a concrete path or a template).

        `token` None is a request that carries no credentials at all: after a malformed path (400),
        it is MISSING_TOKEN (401), whether or not the endpoint exists, so an anonymous client
        learns nothing about the catalog.
        """
        catalog = self.catalog
        try:
            endpoint = catalog.find_endpoint(method, path)
        except MalformedPath as exc:
            return self._deny(Reason.MALFORMED_PATH, f"malformed path: {exc}", None, token, 400,
                              "", _body("Bad request", f"malformed path: {exc}"))
        if endpoint is not None and endpoint.public:
            return self._public(endpoint, token)
        if token is None:
            return self._deny(Reason.MISSING_TOKEN, _MISSING_TOKEN_MESSAGE, endpoint, None, 401,
                              self._missing_token_challenge, _body("Unauthorized", _MISSING_TOKEN_MESSAGE))
        if endpoint is None:
            message = self._unknown_endpoint_message(method, path)
            return self._deny(Reason.UNKNOWN_ENDPOINT, message, None, token, 403,
                              self._unknown_endpoint_challenge, _body("Forbidden", message))
        fmt = _FORMATS.get(token.format)
        if fmt is TokenFormat.UNSPECIFIED or fmt is None:  # the rest are explicit: skip the call
            fmt = self.token_format(token)
        if fmt is None:
            message = f"unknown token format {token.format}"
            return self._deny(Reason.UNKNOWN_TOKEN_FORMAT, message, endpoint, token, 401,
                              self._invalid_token_challenge, _body("Unauthorized", message))
        granted, unknown = catalog.universe.grant(token.scopes)
        alternative = 0
        if fmt is TokenFormat.LEGACY:
            missing = 0
        elif not granted:
            if len(endpoint.alternatives) > 1:
                alternative = closest(catalog.universe, endpoint.alternatives, 0)[0]
            deny = endpoint.answers[alternative]
            return Decision(False, Reason.NO_SCOPES, _NO_SCOPES_MESSAGE.get(token.kind, _NO_SCOPES_DEFAULT),
                            endpoint, endpoint.any_of[alternative], unknown, fmt, 403, deny[0], deny[1],
                            alternative=alternative)
        elif len(endpoint.alternatives) == 1:
            missing = endpoint.mask & ~granted
        else:  # any one of several: the one the token comes closest to (see `closest`)
            alternative, missing = closest(catalog.universe, endpoint.alternatives, granted)
        # Most checks end here: a path match, a scope lookup and this one.
        decision = self._answers.get((endpoint.key, fmt, alternative, missing, unknown))
        return decision if decision is not None else self._answer(endpoint, fmt, alternative, missing, unknown)

    def _public(self, endpoint: Endpoint, token: Token | None) -> Decision:
        """A public endpoint needs no token: whatever is sent (or nothing), it is allowed."""
        message = "public endpoint: no token needed"
        if token is None:
            return Decision(True, Reason.ALLOWED_PUBLIC, message, endpoint, (), (), TokenFormat.UNSPECIFIED, 200, "", "")
        unknown = tuple(self.catalog.universe.unknown(token.scopes))
        fmt = self.token_format(token) or TokenFormat.UNSPECIFIED
        return Decision(True, Reason.ALLOWED_PUBLIC, message, endpoint, (), unknown, fmt, 200, "", "")

    def gateway_target(self, token: Token | None, method: str, path: str, route: str = "",
                       headers: Collection[str] = ()) -> str | Decision:
        """The path to decide for a request a gateway forwards, or the deny when it cannot be decided as sent.

        `route` is the endpoint the gateway's route names for it (Envoy `context_extensions`), as
        "/template" (decided with the request's own method) or "METHOD /template" (honoured only
        for that method, or HEAD for GET where the catalog allows HEAD as GET: any other method is
        denied with ROUTE_METHOD_MISMATCH, because the upstream will receive the request's method;
        a request with no token is left to `check`, which answers it MISSING_TOKEN).
        `headers` are the request's header names: one that is one of REWRITE_HEADERS (in any case,
        with `_` for `-`, as CGI-style servers read them) would let the upstream serve another
        method or path than the one decided, so the request is denied with REWRITE_HEADER.
        """
        found = [name for name in headers
                 if len(name) in _REWRITE_LENGTHS and name.lower().replace("_", "-") in _REWRITE_HEADERS]
        if found:
            names = ", ".join(dict.fromkeys(name[:64] for name in found))
            message = (f"the request carries {names}, which would change its method or path after this "
                       "decision: send the request as it is meant, without that header")
            return self._deny(Reason.REWRITE_HEADER, message, None, token, 400, "", _body("Bad request", message))
        if not route:
            return path
        named_method, _, named_path = route.strip().rpartition(" ")
        named_method = named_method.strip()
        if named_method and token is not None and method != named_method and not (
                method == "HEAD" and named_method == "GET" and self.catalog.head_as_get):
            message = (f"this route is the endpoint {named_method} {named_path}: "
                       f"a {method[:32]} request cannot be decided as it")
            return self._deny(Reason.ROUTE_METHOD_MISMATCH, message, None, token, 403, "", _body("Forbidden", message))
        return named_path

    def _answer(self, endpoint: Endpoint, fmt: TokenFormat, alternative: int, missing: int,
                unknown: tuple[str, ...]) -> Decision:
        """Build the decision for a legacy token, or a scoped one lacking the scopes in `missing`
        of the endpoint's `alternative` (0 for a single-set endpoint).

        It depends on (endpoint, format, alternative, missing, unknown) alone, so each is built once and kept
        in `_answers` (at most _MAX_ANSWERS of them, and only for a few short unknown names,
        which a token controls).
        """
        shared = len(self._answers) < _MAX_ANSWERS and (not unknown or (
            len(unknown) <= _MAX_SHARED_UNKNOWN and sum(map(len, unknown)) <= _MAX_SHARED_UNKNOWN_CHARS))
        if fmt == TokenFormat.LEGACY:
            decision = Decision(True, Reason.ALLOWED_LEGACY_TOKEN, "legacy token: full access", endpoint,
                                (), unknown, fmt, 200, "", "", shared, alternative)
        elif not missing:
            decision = Decision(True, Reason.ALLOWED, "the token grants every required scope", endpoint,
                                (), unknown, fmt, 200, "", "", shared, alternative)
        else:
            universe = self.catalog.universe
            names = tuple(universe.iter_names(universe.minimal(missing)))
            challenge, body = endpoint.answers[alternative]
            decision = Decision(False, Reason.INSUFFICIENT_SCOPE, f"missing scope(s): {' '.join(names)}",
                                endpoint, names, unknown, fmt, 403, challenge, body, shared, alternative)
        if shared:
            self._answers[endpoint.key, fmt, alternative, missing, unknown] = decision
        return decision

    def _deny(self, reason: Reason, message: str, endpoint: Endpoint | None, token: Token | None,
              status: int, challenge: str, body: str) -> Decision:
        if token is None:
            return Decision(False, reason, message, endpoint, (), (), TokenFormat.UNSPECIFIED, status, challenge, body)
        fmt = self.token_format(token) or TokenFormat.UNSPECIFIED
        unknown = tuple(self.catalog.universe.unknown(token.scopes))
        return Decision(False, reason, message, endpoint, (), unknown, fmt, status, challenge, body)

    def _unknown_endpoint_message(self, method: str, path: str) -> str:
        shown = path if len(path) <= 200 else path[:200] + "..."
        if method != method.upper():
            return f"no endpoint {method} {shown} (HTTP methods are case-sensitive)"
        return f"no endpoint {method} {shown} in catalog {self.catalog.name}"

    # -- webhooks -------------------------------------------------------------------------

    def check_subscription(self, token: Token, events: Sequence[str], subscription_scope: str) -> WebhookDecision:
        """May `token` create a subscription to `events` at `subscription_scope` (a level the catalog declares)?"""
        if not events:
            raise RequestError("events", "at least one event is required")
        catalog = self.catalog
        if subscription_scope not in catalog.subscription_levels:
            raise RequestError("subscription_scope", f"must be one of {', '.join(catalog.subscription_levels)}")
        unknown_events = tuple(e for e in dict.fromkeys(events) if e not in catalog.events)
        known = list(dict.fromkeys(catalog.events[e] for e in events if e in catalog.events))
        required = [(catalog.subscribe_mask,)] + [event.alternatives for event in known]
        disallowed = tuple(
            (e.name, e.subscription_scopes) for e in known if subscription_scope not in e.subscription_scopes
        )
        if unknown_events:
            return self._webhook_deny(token, required, Reason.UNKNOWN_EVENT,
                                      f"unknown webhook event(s): {', '.join(unknown_events)}", unknown_events=unknown_events)
        if disallowed:
            names = ", ".join(f"{name} (allows {'/'.join(subs)})" for name, subs in disallowed)
            return self._webhook_deny(token, required, Reason.SUBSCRIPTION_SCOPE_NOT_ALLOWED,
                                      f"not subscribable at {subscription_scope} scope: {names}; use separate subscriptions",
                                      disallowed=disallowed)
        return self._webhook_decide(token, required)

    def check_delivery(self, token: Token, event: str) -> WebhookDecision:
        """Does the app holding `token` receive `event` payloads?"""
        if not event:
            raise RequestError("event", "an event name is required")
        found = self.catalog.events.get(event)
        if found is None:
            return self._webhook_deny(token, [], Reason.UNKNOWN_EVENT, f"unknown webhook event {event!r}",
                                      unknown_events=(event,))
        return self._webhook_decide(token, [found.alternatives])

    def _event_alternatives(self, name: str) -> tuple[int, ...]:
        """What receiving (and so subscribing to) an event needs: one of its alternatives and the subscription scope."""
        return tuple(mask | self.catalog.subscribe_mask for mask in self.catalog.events[name].alternatives)

    def _webhook_decide(self, token: Token, required: Sequence[Sequence[int]]) -> WebhookDecision:
        """Decide on `required` (any-of requirements, all to be met); the required scopes named are
        those of the alternatives the token comes closest to (see `cover.minimum_cover`)."""
        universe = self.catalog.universe
        fmt = self.token_format(token)
        granted = universe.effective(token.scopes) if fmt == TokenFormat.SCOPED else 0
        cover = minimum_cover(universe, required, granted)
        required_names = tuple(universe.iter_names(cover.chosen))
        unknown = tuple(universe.unknown(token.scopes))
        if fmt is None:
            return WebhookDecision(False, Reason.UNKNOWN_TOKEN_FORMAT, f"unknown token format {token.format}",
                                   required_names, (), unknown, TokenFormat.UNSPECIFIED)
        if fmt == TokenFormat.LEGACY:
            return WebhookDecision(True, Reason.ALLOWED_LEGACY_TOKEN, "legacy token: full access",
                                   required_names, (), unknown, fmt)
        if not granted:
            return WebhookDecision(False, Reason.NO_SCOPES, _NO_SCOPES_MESSAGE.get(token.kind, _NO_SCOPES_DEFAULT),
                                   required_names, required_names, unknown, fmt)
        if not cover.mask:
            return WebhookDecision(True, Reason.ALLOWED, "the token grants every required scope",
                                   required_names, (), unknown, fmt)
        names = tuple(universe.iter_names(cover.mask))
        return WebhookDecision(False, Reason.INSUFFICIENT_SCOPE, f"missing scope(s): {' '.join(names)}",
                               required_names, names, unknown, fmt)

    def _webhook_deny(self, token: Token, required: Sequence[Sequence[int]], reason: Reason, message: str,
                      unknown_events: tuple[str, ...] = (),
                      disallowed: tuple[tuple[str, tuple[str, ...]], ...] = ()) -> WebhookDecision:
        universe = self.catalog.universe
        chosen = minimum_cover(universe, required).chosen
        return WebhookDecision(False, reason, message, tuple(universe.iter_names(chosen)), (),
                               tuple(universe.unknown(token.scopes)),
                               self.token_format(token) or TokenFormat.UNSPECIFIED, unknown_events, disallowed)

    # -- diagnosis ------------------------------------------------------------------------

    def diagnose(self, requested: Sequence[str], granted: Sequence[str], method: str = "", path: str = "",
                 event: str = "") -> Diagnosis:
        """Why does an install get 403 on an endpoint (or miss a webhook event)?

        Each missing scope was either never requested by the app (add it to the app's scope
        request, then have the user re-authorize) or requested and declined by the user (ask
        the user to grant it when re-authorizing).
        """
        catalog = self.catalog
        universe = catalog.universe
        if event and (method or path):
            raise RequestError("event", "give either an event or a method and path, not both")
        if event:
            if event not in catalog.events:
                raise RequestError("event", f"unknown webhook event {event!r}")
            target = event
            alternatives = self._event_alternatives(event)
            public = False
        else:
            if not method or not path:
                raise RequestError("target", "give either an event or both method and path")
            try:
                endpoint = catalog.find_target(method, path)
            except LookupError as exc:
                raise RequestError("path", str(exc)) from None
            if endpoint is None:
                raise RequestError("path", self._unknown_endpoint_message(method, path))
            target = endpoint.key
            alternatives = endpoint.alternatives or (0,)  # a public endpoint needs nothing
            public = endpoint.public
        # Check's rule: a token with no scope the catalog knows has no access, even where an
        # endpoint requires none (only a public endpoint takes any token).
        no_scopes = not public and not universe.effective(granted)
        # Of several alternatives, the one the granted scopes come closest to.
        required = alternatives[closest(universe, alternatives, universe.effective(granted))[0]]
        missing_mask = universe.minimal(required & ~universe.effective(granted))
        requested_known = universe.minimal(universe.mask(requested))
        missing: list[MissingScope] = []
        for scope in universe.iter_names(missing_mask):
            bit = universe.bit(scope)
            # The requested scopes that grant it (scheduled_events:write for a missing :read) are
            # what the user declined, and what they must approve.
            asked = tuple(r for r in universe.iter_names(requested_known) if universe.effective((r,)) & bit)
            if asked:
                which = " ".join(asked) if asked == (scope,) else f"{' '.join(asked)} (which grants {scope})"
                missing.append(MissingScope(scope, Cause.DECLINED,
                                            f"the app requests {which} but the user did not grant it: "
                                            "ask the user to approve it when re-authorizing", asked))
            else:
                missing.append(MissingScope(scope, Cause.NOT_REQUESTED,
                                            f"the app never requested {scope}: add it to the app's scope "
                                            "request, then have the user re-authorize"))
        steps = self._diagnosis_steps(missing, event)
        if missing:
            summary = f"{target} needs {' '.join(m.scope for m in missing)}, which the install lacks"
        elif no_scopes:  # nothing is missing, yet Check answers NO_SCOPES: the steps are its own
            summary = (f"{target} requires no particular scope, but the install was granted no scope the catalog "
                       "knows, and a token with no scopes has no access")
            steps = ("add at least one scope the catalog knows to the app's requested scopes (the ones its "
                     "features need: see Plan)", "send the user through the authorize URL again (re-authorization)")
        else:
            summary = f"the granted scopes cover {target}"
        granted_known = universe.mask(granted)
        extra = tuple(universe.iter_names(granted_known & ~universe.mask(requested)))
        unknown = tuple(universe.unknown(list(requested) + list(granted)))
        return Diagnosis(target, tuple(universe.iter_names(required)), tuple(missing), bool(missing) or no_scopes,
                         summary, steps, unknown, extra)

    def _diagnosis_steps(self, missing: Sequence[MissingScope], event: str) -> tuple[str, ...]:
        if not missing:
            steps = ["the install already has what it needs: make sure the call uses the re-authorized token "
                     "(refresh it) and the method and path are the ones intended"]
            if event:
                steps.append(f"check that the webhook subscription includes {event} and is active")
            return tuple(steps)
        steps = []
        not_requested = [m.scope for m in missing if m.cause == Cause.NOT_REQUESTED]
        declined = list(dict.fromkeys(r for m in missing if m.cause == Cause.DECLINED for r in m.requested_as))
        if not_requested:
            steps.append(f"add {' '.join(not_requested)} to the app's requested scopes")
        if declined:
            steps.append(f"ask the user to approve {' '.join(declined)}")
        steps.append("send the user through the authorize URL again (re-authorization); "
                     "scopes are never added to an existing install silently")
        if event:
            steps.append(f"after re-authorizing, re-create the webhook subscription so it includes {event}")
        return tuple(steps)

    # -- Plan -----------------------------------------------------------------------------

    def plan(self, features: Sequence[str], existing_scopes: Sequence[str] = (), client_id: str = "",
             redirect_uri: str = "", state: str = "", code_challenge: str = "") -> Plan:
        """The fewest scopes an integration must request for `features`, and its authorize URL.

        A feature is a named catalog feature, an endpoint (`METHOD /path`), a webhook event
        (which also needs the subscription scope) or a scope name.
        """
        if not features:
            raise RequestError("features", "at least one feature is required")
        catalog = self.catalog
        universe = catalog.universe
        notes: list[str] = []
        needs: list[tuple[str, tuple[int, ...], bool]] = []  # (who, alternatives, optional)
        for i, item in enumerate(features):
            named = catalog.features.get(item)
            parts: Iterable[tuple[Part, bool]]
            if named is not None:
                parts = [(p, False) for p in named.requires] + [(p, True) for p in named.optional]
            else:
                try:
                    parts = [(catalog.resolve_part(item), False)]
                except LookupError as exc:
                    raise RequestError(f"features[{i}]", f"{exc}; nor a named feature") from None
            for part, optional in parts:
                if part.note:
                    notes.append(part.note)
                needs.append((item, part.alternatives, optional))
        required = [alternatives for _, alternatives, optional in needs if not optional]
        cover = minimum_cover(universe, required)
        scopes_mask = cover.mask
        granted_by_required = universe.closure_of(scopes_mask)
        optional_cover = minimum_cover(universe, [a for _, a, optional in needs if optional], granted_by_required)
        optional_mask = optional_cover.mask
        if not (cover.exact and optional_cover.exact):
            notes.append("the search for the fewest scopes stopped early: these scopes cover every feature, "
                         "but fewer might")
        planned = scopes_mask | optional_mask
        planned_grants = universe.closure_of(planned)
        # Each need as the plan meets it: the first of its alternatives the planned scopes grant.
        met_by = [(name, alternatives[closest(universe, alternatives, planned_grants)[0]] if alternatives else 0,
                   optional) for name, alternatives, optional in needs]
        uses = []
        for mask, optional in ((scopes_mask, False), (optional_mask, True)):
            for scope in universe.iter_names(mask):
                grants = universe.effective((scope,))
                who = tuple(dict.fromkeys(name for name, need, opt in met_by if need & grants and opt == optional))
                uses.append(ScopeUse(scope, who, optional))
        over_broad: list[OverBroad] = []
        needed_grants = 0
        for _, need, _ in met_by:
            needed_grants |= need
        for scope in dict.fromkeys(existing_scopes):
            grants = universe.effective((scope,)) if scope in universe else 0
            if grants & ~planned_grants == 0:
                continue  # unknown, planned, or narrower than a planned scope: never broader than needed
            covers = grants & needed_grants
            if covers:
                narrower = " ".join(universe.iter_names(universe.minimal(covers)))
                over_broad.append(OverBroad(scope, f"broader than needed: {narrower} suffices"))
            else:
                over_broad.append(OverBroad(scope, "no requested feature needs it"))
        unknown = tuple(universe.unknown(existing_scopes))
        for name in unknown:
            pseudo = catalog.pseudo_scopes.get(name)
            if pseudo is not None:
                notes.append(pseudo.note())
        missing = minimum_cover(universe, required, universe.effective(existing_scopes)).mask if existing_scopes else 0
        scope_names = tuple(universe.iter_names(scopes_mask))
        url = self.authorize_url(scope_names, client_id, redirect_uri, state, code_challenge)
        return Plan(scope_names, tuple(universe.iter_names(optional_mask)), tuple(uses), tuple(over_broad),
                    tuple(universe.iter_names(missing)), unknown, tuple(dict.fromkeys(notes)), url)

    def authorize_url(self, scopes: Sequence[str], client_id: str, redirect_uri: str = "", state: str = "",
                      code_challenge: str = "") -> str:
        """The OAuth authorize URL; empty when no client id is given."""
        if not client_id:
            if redirect_uri:
                raise RequestError("client_id", "required when redirect_uri is given")
            return ""
        base = self.catalog.authorize_url
        if not base:
            raise RequestError("client_id", f"catalog {self.catalog.name} has no oauth.authorize_url")
        if redirect_uri:
            parts = urlsplit(redirect_uri)
            if parts.scheme not in ("https", "http") or not parts.netloc or parts.fragment:
                raise RequestError("redirect_uri", "must be an absolute http(s) URI without a fragment")
        params = [("client_id", client_id)]
        if redirect_uri:
            params.append(("redirect_uri", redirect_uri))
        params += [("response_type", "code"), ("scope", " ".join(scopes))]
        if state:
            params.append(("state", state))
        if code_challenge:
            params += [("code_challenge", code_challenge), ("code_challenge_method", "S256")]
        query = "&".join(f"{k}={quote(v, safe=':' if k == 'scope' else '')}" for k, v in params)
        return f"{base}?{query}"

