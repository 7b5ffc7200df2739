"""Converting between `scopesvc.v1` messages and the policy core's values.

Request conversion validates bounds and raises `RequestError(field, reason)`; response
conversion never fails. The CLI prints these same messages with `--json`, so there is one
schema for programs whichever way they call scopesvc.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from google.protobuf.timestamp_pb2 import Timestamp

from .limits import MAX_ITEM_LENGTH, MAX_METHOD_LENGTH, MAX_SCOPE_LENGTH, MAX_SCOPES, check_strings, subfield
from .policy import Catalog, Decision, Diagnosis, Engine, Plan, RequestError, Token, WebhookDecision
from .policy.catalog import SUBSCRIPTION_SCOPES
from .v1 import scopesvc_pb2 as pb

# SubscriptionScope enum number <-> catalog word.
SUBSCRIPTION_SCOPE_NUMBERS = {name: i + 1 for i, name in enumerate(SUBSCRIPTION_SCOPES)}
SUBSCRIPTION_SCOPE_NAMES = {number: name for name, number in SUBSCRIPTION_SCOPE_NUMBERS.items()}


def token_from_proto(message: pb.Token, field: str = "token") -> Token:
    """The policy core's Token; raises RequestError naming `field`'s sub-field that is out of bounds."""
    scopes = tuple(message.scopes[:])  # a slice copies in C; iterating the container costs twice as much
    check_strings(scopes, "scopes", MAX_SCOPES, MAX_SCOPE_LENGTH, field)
    issued_at = None
    if message.HasField("issued_at"):
        try:
            issued_at = message.issued_at.ToDatetime(tzinfo=dt.timezone.utc)
        except (ValueError, OverflowError) as exc:
            raise RequestError(subfield(field, "issued_at"), f"not a valid timestamp: {exc}") from None
    return Token(scopes, message.format, issued_at, message.kind)


def token_to_proto(token: Token) -> pb.Token:
    message = pb.Token(scopes=token.scopes, format=token.format, kind=token.kind)  # type: ignore[arg-type]
    if token.issued_at is not None:
        message.issued_at.FromDatetime(token.issued_at)
    return message


def check_args(request: pb.CheckRequest, prefix: str = "") -> tuple[Token | str, str, str]:
    """Validate a CheckRequest; return (token, method, path), the token being the raw `bearer_token` when given."""
    token: Token | str
    if request.bearer_token:
        if request.HasField("token"):
            raise RequestError(f"{prefix}bearer_token", "give either token or bearer_token, not both")
        token = request.bearer_token
    elif not request.HasField("token"):
        raise RequestError(f"{prefix}token", "required (an empty Token is a scoped token with no scopes), "
                           "or give bearer_token")
    else:
        token = token_from_proto(request.token, prefix + "token")
    method, path = request.method, request.path
    if not method:
        raise RequestError(f"{prefix}method", "required")
    if len(method) > MAX_METHOD_LENGTH:
        raise RequestError(f"{prefix}method", f"longer than {MAX_METHOD_LENGTH} characters")
    if not path:
        raise RequestError(f"{prefix}path", "required")
    return token, method, path


def check_response(decision: Decision, revision: str) -> pb.CheckResponse:
    endpoint = decision.endpoint
    response = pb.CheckResponse(
        allowed=decision.allowed,
        missing_scopes=decision.missing_scopes,
        endpoint=endpoint.key if endpoint else "",
        reason=decision.reason,  # type: ignore[arg-type]
        message=decision.message,
        required_scopes=decision.required_scopes,
        unknown_scopes=decision.unknown_scopes,
        token_format=decision.token_format,  # type: ignore[arg-type]
        operation_id=endpoint.operation_id if endpoint else "",
        catalog_revision=revision,
        required_any_of=_scope_sets(endpoint.any_of) if endpoint else (),
    )
    if not decision.allowed:
        response.deny.http_status = decision.http_status
        response.deny.www_authenticate = decision.www_authenticate
        response.deny.body = decision.body
    return response


def _scope_sets(any_of: Sequence[Sequence[str]]) -> list[pb.ScopeSet]:
    return [pb.ScopeSet(scopes=scopes) for scopes in any_of]


def subscription_level(request: pb.WebhookSubscriptionRequest) -> str:
    """The level a subscription request names: `subscription_level`, or the `subscription_scope` enum."""
    named = SUBSCRIPTION_SCOPE_NAMES.get(request.subscription_scope)
    if request.subscription_scope and named is None:
        raise RequestError("subscription_scope", f"unknown value {request.subscription_scope}")
    level = request.subscription_level
    if len(level) > MAX_ITEM_LENGTH:
        raise RequestError("subscription_level", f"longer than {MAX_ITEM_LENGTH} characters")
    if level and named and level != named:
        raise RequestError("subscription_level", f"names {level!r} but subscription_scope names {named!r}")
    if not level and not named:
        raise RequestError("subscription_scope", "required: ORGANIZATION, USER or GROUP (or subscription_level by name)")
    return level or str(named)


def plan_response(plan: Plan) -> pb.PlanResponse:
    return pb.PlanResponse(
        scopes=plan.scopes,
        optional_scopes=plan.optional_scopes,
        authorize_url=plan.authorize_url,
        uses=[pb.ScopeUse(scope=u.scope, needed_by=u.needed_by, optional=u.optional) for u in plan.uses],
        over_broad=[pb.OverBroadScope(scope=o.scope, note=o.note) for o in plan.over_broad],
        missing_from_existing=plan.missing_from_existing,
        unknown_scopes=plan.unknown_scopes,
        notes=plan.notes,
    )


def webhook_response(decision: WebhookDecision) -> pb.WebhookDecision:
    return pb.WebhookDecision(
        allowed=decision.allowed,
        reason=decision.reason,  # type: ignore[arg-type]
        message=decision.message,
        required_scopes=decision.required_scopes,
        missing_scopes=decision.missing_scopes,
        unknown_scopes=decision.unknown_scopes,
        token_format=decision.token_format,  # type: ignore[arg-type]
        unknown_events=decision.unknown_events,
        disallowed_events=[
            pb.EventScopes(event=event, allowed=_level_numbers(subs), allowed_levels=subs)  # type: ignore[arg-type]
            for event, subs in decision.disallowed_events
        ],
    )


def diagnosis_response(diagnosis: Diagnosis) -> pb.DiagnoseResponse:
    return pb.DiagnoseResponse(
        target=diagnosis.target,
        required_scopes=diagnosis.required_scopes,
        missing=[pb.MissingScope(scope=m.scope, cause=m.cause, action=m.action) for m in diagnosis.missing],  # type: ignore[arg-type]
        needs_reauthorization=diagnosis.needs_reauthorization,
        summary=diagnosis.summary,
        steps=diagnosis.steps,
        unknown_scopes=diagnosis.unknown_scopes,
        granted_not_requested=diagnosis.granted_not_requested,
    )


def _level_numbers(levels: Sequence[str]) -> list[int]:
    """The SubscriptionScope numbers of the default levels among `levels` (others have none)."""
    return [SUBSCRIPTION_SCOPE_NUMBERS[level] for level in levels if level in SUBSCRIPTION_SCOPE_NUMBERS]


def catalog_info(engine: Engine) -> pb.CatalogInfo:
    catalog: Catalog = engine.catalog
    universe = catalog.universe
    info = pb.CatalogInfo(
        name=catalog.name,
        revision=catalog.revision,
        description=catalog.description,
        source=catalog.source,
        authorize_url=catalog.authorize_url,
        scopes=[
            pb.ScopeInfo(name=s.name, category=s.category, description=s.description, implies=universe.implied_by(s.name))
            for s in catalog.scopes.values()
        ],
        endpoints=[
            pb.EndpointInfo(method=e.method, path=e.template, scopes=e.scopes, operation_id=e.operation_id,
                            summary=e.summary, required_any_of=_scope_sets(e.any_of), public=e.public)
            for e in catalog.endpoints
        ],
        events=[
            pb.EventInfo(name=e.name, scope=e.scope, subscription_scopes=_level_numbers(e.subscription_scopes),  # type: ignore[arg-type]
                         required_any_of=_scope_sets(e.any_of), subscription_levels=e.subscription_scopes)
            for e in catalog.events.values()
        ],
        features=[
            pb.FeatureInfo(name=f.name, description=f.description, requires=[p.item for p in f.requires], optional=[p.item for p in f.optional])
            for f in catalog.features.values()
        ],
        subscribe_scope=catalog.subscribe_scope,
        legacy_equivalent_scopes=engine.legacy_scopes,
        subscription_levels=catalog.subscription_levels,
    )
    if catalog.scopes_introduced_at is not None:
        stamp = Timestamp()
        stamp.FromDatetime(catalog.scopes_introduced_at)
        info.scopes_introduced_at.CopyFrom(stamp)
    return info
