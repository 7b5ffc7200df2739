"""The OpenID AuthZEN Authorization API 1.0, as scope decisions: parsed JSON in, Decider calls, JSON out.

No HTTP here (authzen_http.py serves it). The profile (docs/gateways.md, "AuthZEN"):

- `subject` (`type` e.g. `token`) carries the token: either its scopes, `properties.scopes` (a list
  of strings or one space-separated string), optionally `properties.token_format` (`scoped`,
  `legacy`), `properties.issued_at` (seconds since the epoch, or RFC 3339) and
  `properties.token_kind` (`oauth_app`, `personal_access_token`); or, when the server verifies
  tokens (`--jwt-issuer`), the bearer access token itself, `properties.token`, verified by the same
  (cached) Verifier as the gateways' `Authorization: Bearer`. Both at once is a 400; a token on a
  server without verification is a 400 too. An invalid token (expired, wrong audience, bad
  signature...) is a decision, false, with reason `INVALID_TOKEN` and what the 401 answer says;
  no usable keys is the server's own failure, HTTP 503, never a decision (for `evaluations`, the
  whole request). `subject.id` reaches the decision log only as a keyed hash; with a token it may
  be left out, and the verified `sub` is logged (hashed) instead.
- `action.name` is the HTTP method.
- `resource.type` is `endpoint`; `resource.id` the request path or an endpoint template
  (`/users/{uuid}`); `resource.properties.path` may give the path instead of the id, and
  `resource.properties.method`, when given, must agree with `action.name`.
- the answer is `{"decision": bool, "context": {...}}` with the reason, the matched endpoint and,
  on a deny, what the gateway's 401/403 answer holds already: the missing scopes, the status and
  the `WWW-Authenticate` challenge.

Every evaluation goes through the Decider (cached, counted as `rpc="authzen"`, logged, dry-run
aware, traced). A request the profile cannot read raises `RequestError(field, reason)`, which the
HTTP binding answers 400; inside `evaluations`, one unreadable item is that item's error (decision
false, `context.error`), as the specification's "errors in individual evaluations" says.

Searches are answered from the catalog with the engine's policy verdicts (not counted or logged
as decisions; an invalid token finds nothing, with `context.reason` `INVALID_TOKEN`): resource
search lists the endpoint templates the token may call with the method, action search the methods
it may use on the path; each result fed back into an evaluation is allowed. Subject search has no meaning here (scopesvc knows tokens, not who holds them).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from ..decider import Decider, Outcome
from ..limits import MAX_BATCH, MAX_ITEM_LENGTH, MAX_METHOD_LENGTH, MAX_SCOPE_LENGTH, MAX_SCOPES, check_strings
from ..policy import Engine, Reason, RequestError, Token, TokenFormat, TokenKind
from ..policy.engine import invalid_token
from ..tokens import Verification, Verifier

RPC = "authzen"
RESOURCE_TYPE = "endpoint"
SEMANTICS = ("execute_all", "deny_on_first_deny", "permit_on_first_permit")
ENDPOINTS = {  # PDP metadata parameter -> path on this server
    "access_evaluation_endpoint": "/access/v1/evaluation",
    "access_evaluations_endpoint": "/access/v1/evaluations",
    "search_resource_endpoint": "/access/v1/search/resource",
    "search_action_endpoint": "/access/v1/search/action",
}
METADATA_PATH = "/.well-known/authzen-configuration"
MAX_SEARCH_PAGE = 1000
_FORMATS = {"scoped": TokenFormat.SCOPED, "legacy": TokenFormat.LEGACY, "unspecified": TokenFormat.UNSPECIFIED}
_KINDS = {"oauth_app": TokenKind.OAUTH_APP, "personal_access_token": TokenKind.PERSONAL_ACCESS_TOKEN,
          "unspecified": TokenKind.UNSPECIFIED}
_TUPLE = ("subject", "action", "resource", "context")


class Question(NamedTuple):
    """One evaluation as the Decider takes it: the token's scopes, or a bearer credential to verify."""

    token: Token | str
    method: str
    path: str
    subject: str


def _object(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RequestError(field, f"must be a JSON object, not {_kind(value)}")
    return value


def _optional_object(container: Mapping[str, Any], key: str, field: str) -> dict[str, Any]:
    value = container.get(key)
    return {} if value is None else _object(value, field)


def _string(container: Mapping[str, Any], key: str, field: str, limit: int = MAX_ITEM_LENGTH,
            required: bool = True) -> str:
    value = container.get(key)
    if value is None:
        if required:
            raise RequestError(field, "required")
        return ""
    if not isinstance(value, str):
        raise RequestError(field, f"must be a string, not {_kind(value)}")
    if required and not value:
        raise RequestError(field, "must not be empty")
    if len(value) > limit:
        raise RequestError(field, f"longer than {limit} characters")
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array",
            dict: "an object"}.get(type(value), type(value).__name__)


def _scopes(value: Any, field: str) -> tuple[str, ...]:
    if isinstance(value, str):
        scopes = value.split()
    elif isinstance(value, list) and all(isinstance(item, str) for item in value):
        scopes = value
    else:
        raise RequestError(field, "must be a list of strings or one space-separated string")
    check_strings(scopes, field, MAX_SCOPES, MAX_SCOPE_LENGTH)
    return tuple(dict.fromkeys(scopes))


def _issued_at(value: Any, field: str) -> dt.datetime:
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return dt.datetime.fromtimestamp(value, dt.UTC)
        if isinstance(value, str):
            when = dt.datetime.fromisoformat(value)
            if when.tzinfo is None:
                raise ValueError("an RFC 3339 time needs its offset (Z or +hh:mm)")
            return when
    except (OverflowError, OSError, ValueError) as exc:
        raise RequestError(field, f"not a valid time: {exc}") from None
    raise RequestError(field, "must be seconds since the epoch or an RFC 3339 time")


def _choice(properties: Mapping[str, Any], key: str, field: str, choices: Mapping[str, int]) -> int:
    word = _string(properties, key, field, 64, required=False)
    if not word:
        return 0
    if word not in choices:
        raise RequestError(field, f"must be one of {', '.join(choices)}, not {word!r}")
    return choices[word]


def subject_token(subject: Mapping[str, Any], field: str = "subject", verifies: bool = False) -> Token | str:
    """The token a subject carries in its properties: its scopes as a Token, or (when this server
    `verifies` tokens) the bearer credential to verify (see the module docstring)."""
    properties = _optional_object(subject, "properties", f"{field}.properties")
    if "token" in properties:
        if "scopes" in properties:
            raise RequestError(f"{field}.properties.token", "give the token's scopes or the token, not both")
        if not verifies:
            raise RequestError(f"{field}.properties.token", "bearer token verification is not configured "
                               "on this server: send the token's scopes as properties.scopes")
        credential = properties["token"]
        if not isinstance(credential, str) or not credential:
            raise RequestError(f"{field}.properties.token", "must be the bearer access token, a non-empty string")
        return credential  # its length is the verifier's to judge (--jwt-max-bytes), like a gateway's
    if "scopes" not in properties:
        raise RequestError(f"{field}.properties.scopes", "required: the token's scopes")
    scopes = _scopes(properties["scopes"], f"{field}.properties.scopes")
    fmt = _choice(properties, "token_format", f"{field}.properties.token_format", _FORMATS)
    kind = _choice(properties, "token_kind", f"{field}.properties.token_kind", _KINDS)
    issued = properties.get("issued_at")
    issued_at = None if issued is None else _issued_at(issued, f"{field}.properties.issued_at")
    return Token(scopes, fmt, issued_at, kind)


def _method(action: Mapping[str, Any], field: str) -> str:
    method = _string(action, "name", f"{field}.name", MAX_METHOD_LENGTH)
    if not method.isascii() or not method.isalpha():
        raise RequestError(f"{field}.name", f"must be an HTTP method (letters only), not {method!r}")
    return method.upper()


def _resource_type(resource: Mapping[str, Any], field: str) -> None:
    kind = _string(resource, "type", f"{field}.type", 64)
    if kind != RESOURCE_TYPE:
        raise RequestError(f"{field}.type", f"must be {RESOURCE_TYPE!r} (this PDP decides on API endpoints), "
                           f"not {kind!r}")


def question(request: Mapping[str, Any], prefix: str = "", verifies: bool = False) -> Question:
    """An Access Evaluation request (a 4-tuple, defaults already merged) as the Decider's question."""
    subject = _object(request.get("subject"), f"{prefix}subject")
    _string(subject, "type", f"{prefix}subject.type", 64)
    token = subject_token(subject, f"{prefix}subject", verifies)
    subject_id = _string(subject, "id", f"{prefix}subject.id", required=isinstance(token, Token))
    action = _object(request.get("action"), f"{prefix}action")
    method = _method(action, f"{prefix}action")
    resource = _object(request.get("resource"), f"{prefix}resource")
    _resource_type(resource, f"{prefix}resource")
    resource_id = _string(resource, "id", f"{prefix}resource.id")
    properties = _optional_object(resource, "properties", f"{prefix}resource.properties")
    path = _string(properties, "path", f"{prefix}resource.properties.path", required=False) or resource_id
    named = _string(properties, "method", f"{prefix}resource.properties.method", MAX_METHOD_LENGTH, required=False)
    if named and named.upper() != method:
        raise RequestError(f"{prefix}resource.properties.method", f"{named!r} disagrees with action.name {method!r}")
    if "context" in request and request["context"] is not None:
        _object(request["context"], f"{prefix}context")
    return Question(token, method, path, subject_id)


def answer(outcome: Outcome) -> dict[str, Any]:
    """The Access Evaluation response for a decision: no more than the gateway's own answer says."""
    decision = outcome.decision
    context: dict[str, Any] = {"reason": decision.reason.name, "catalog_revision": outcome.revision}
    if decision.endpoint_key:
        context["endpoint"] = decision.endpoint_key
    if not decision.allowed:
        context["missing_scopes"] = list(decision.missing_scopes)
        context["message"] = decision.message
    if outcome.dry_run:
        context["dry_run"] = True  # the policy denies; dry-run mode lets it through
    elif not outcome.allowed:
        context["status"] = decision.http_status
        if decision.www_authenticate:
            context["www_authenticate"] = decision.www_authenticate
    return {"decision": outcome.allowed, "context": context}


def item_error(error: RequestError) -> dict[str, Any]:
    """An evaluation of a batch that could not be read: closed, with the error in its context."""
    return {"decision": False, "context": {"error": {"status": 400, "message": str(error)}}}


def _page(request: Mapping[str, Any], total: int) -> tuple[int, int]:
    """(start, limit) from the request's `page` (`token` is an offset this server issued, `limit` a size)."""
    page = _optional_object(request, "page", "page")
    token = _string(page, "token", "page.token", 32, required=False)
    start = 0
    if token:
        if not token.isdigit() or int(token) > total:
            raise RequestError("page.token", "not a token this server issued (take page.next_token as given)")
        start = int(token)
    limit = page.get("limit", MAX_SEARCH_PAGE)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        raise RequestError("page.limit", "must be a non-negative integer")
    return start, min(limit, MAX_SEARCH_PAGE) or MAX_SEARCH_PAGE


def _paged(results: list[dict[str, Any]], request: Mapping[str, Any]) -> dict[str, Any]:
    start, limit = _page(request, len(results))
    shown = results[start:start + limit]
    end = start + len(shown)
    return {"results": shown,
            "page": {"next_token": str(end) if end < len(results) else "", "count": len(shown),
                     "total": len(results)}}


def _nothing_found(verification: Verification, request: Mapping[str, Any]) -> dict[str, Any]:
    """A search for an invalid token: no results, and why (no more than the 401 answer says)."""
    found = _paged([], request)
    found["context"] = {"reason": Reason.INVALID_TOKEN.name, "message": invalid_token(verification.description).message}
    return found


class Authzen:
    """The AuthZEN API over `decider` (and `verifier`, when the server verifies bearer tokens): each
    method takes the parsed JSON body and returns the response object. Raises `RequestError` (400)
    and `TokensUnavailable` (503)."""

    def __init__(self, decider: Decider, verifier: Verifier | None = None) -> None:
        self.decider = decider
        self.verifier = verifier

    async def _verified(self, token: Token | str) -> Token | Verification:
        """The scopes as given, or the bearer credential's verification (cached by the verifier)."""
        if isinstance(token, Token):
            return token
        assert self.verifier is not None  # subject_token returns a credential only when it verifies
        return await self.verifier.resolve(token)

    def _decide(self, asked: Question, token: Token | Verification, engine: Engine,
                attributes: Mapping[str, str] | None) -> Outcome:
        return self.decider.decide_item(token, asked.method, asked.path, rpc=RPC, engine=engine,
                                        subject=asked.subject, attributes=attributes)

    async def evaluation(self, body: Any, attributes: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Access Evaluation API: one decision."""
        asked = question(_object(body, "request"), verifies=self.verifier is not None)
        token = await self._verified(asked.token)
        if isinstance(token, Verification):
            return answer(self.decider.decide_verified(token, asked.method, asked.path, rpc=RPC,
                                                       subject=asked.subject, attributes=attributes))
        return answer(self.decider.decide(token, asked.method, asked.path, rpc=RPC, subject=asked.subject,
                                          attributes=attributes))

    async def evaluations(self, body: Any, attributes: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Access Evaluations API: defaults plus `evaluations[]`, under `options.evaluations_semantic`.

        Without `evaluations` it is the single evaluation (the specification's backwards-compatible form).
        Every bearer token of the batch is verified before anything is decided, so a key outage
        (`TokensUnavailable`) fails the whole request and no half of it is logged as decided.
        """
        request = _object(body, "request")
        items = request.get("evaluations")
        if items is None:
            return await self.evaluation(request, attributes)
        if not isinstance(items, list):
            raise RequestError("evaluations", f"must be an array, not {_kind(items)}")
        if len(items) > MAX_BATCH:
            raise RequestError("evaluations", f"at most {MAX_BATCH} evaluations, got {len(items)}")
        options = _optional_object(request, "options", "options")
        semantic = _string(options, "evaluations_semantic", "options.evaluations_semantic", 64,
                           required=False) or "execute_all"
        if semantic not in SEMANTICS:
            raise RequestError("options.evaluations_semantic", f"must be one of {', '.join(SEMANTICS)}, "
                               f"not {semantic!r}")
        defaults = {key: request[key] for key in _TUPLE if request.get(key) is not None}
        asked: list[tuple[Question, Token | Verification] | RequestError] = []
        for i, item in enumerate(items):
            try:
                one = question({**defaults, **_object(item, f"evaluations[{i}]")}, f"evaluations[{i}].",
                               self.verifier is not None)
            except RequestError as exc:
                asked.append(exc)
            else:
                asked.append((one, await self._verified(one.token)))
        engine: Engine = self.decider.ref.engine  # one catalog for the whole batch
        results: list[dict[str, Any]] = []
        for each in asked:
            if isinstance(each, RequestError):
                results.append(item_error(each))
                allowed = False
            else:
                outcome = self._decide(*each, engine, attributes)
                results.append(answer(outcome))
                allowed = outcome.allowed
            if (semantic == "deny_on_first_deny" and not allowed) or (semantic == "permit_on_first_permit"
                                                                      and allowed):
                break
        return {"evaluations": results}

    async def _search(self, request: Mapping[str, Any],
                      found: Callable[[Engine, Token], list[dict[str, Any]]]) -> dict[str, Any]:
        """The page of what `found` finds for the subject's token; nothing for an invalid bearer token."""
        token = await self._verified(subject_token(_object(request.get("subject"), "subject"), "subject",
                                                   self.verifier is not None))
        if isinstance(token, Verification):
            if token.token is None:
                return _nothing_found(token, request)
            token = token.token
        return _paged(found(self.decider.ref.engine, token), request)

    async def search_resource(self, body: Any) -> dict[str, Any]:
        """Resource Search API: the endpoint templates the subject's token may call with `action.name`."""
        request = _object(body, "request")
        method = _method(_object(request.get("action"), "action"), "action")
        _resource_type(_object(request.get("resource"), "resource"), "resource")

        def found(engine: Engine, token: Token) -> list[dict[str, Any]]:
            templates = dict.fromkeys(endpoint.template for endpoint in engine.catalog.endpoints)
            return [{"type": RESOURCE_TYPE, "id": template} for template in templates
                    if engine.check(token, method, template).allowed]

        return await self._search(request, found)

    async def search_action(self, body: Any) -> dict[str, Any]:
        """Action Search API: the methods the subject's token may use on `resource.id` (path or template)."""
        request = _object(body, "request")
        resource = _object(request.get("resource"), "resource")
        _resource_type(resource, "resource")
        properties = _optional_object(resource, "properties", "resource.properties")
        path = _string(properties, "path", "resource.properties.path", required=False) or _string(
            resource, "id", "resource.id")

        def found(engine: Engine, token: Token) -> list[dict[str, Any]]:
            methods = sorted({endpoint.method for endpoint in engine.catalog.endpoints} | {"HEAD"})
            return [{"name": method} for method in methods if engine.check(token, method, path).allowed]

        return await self._search(request, found)

    @staticmethod
    def metadata(base_url: str) -> dict[str, str]:
        """The PDP metadata document for a PDP reached at `base_url` (scheme://host[:port], no path)."""
        base = base_url.rstrip("/")
        return {"policy_decision_point": base, **{name: base + path for name, path in ENDPOINTS.items()}}
