"""The decision commands: check, plan, migrate, webhook and diagnose (the gRPC API's RPCs, offline)."""

from __future__ import annotations

import argparse
from typing import Any

from .. import convert
from ..policy import TokenFormat
from ..policy.engine import invalid_token
from . import token as bearer
from .common import EXIT_ALLOW, EXIT_DENY, UsageError, add_catalog, add_token, emit, scopes, token
from .common import engine as engine_of


def cmd_check(args: argparse.Namespace) -> int:
    engine = engine_of(args)
    if args.no_token and (args.scope or args.issued_at or args.format != "auto"):
        raise UsageError("--no-token takes no token flags (-s, --format, --issued-at)")
    if args.bearer is not None:
        if args.no_token or args.scope or args.issued_at or args.format != "auto" or args.kind != "unspecified":
            raise UsageError("--bearer gives the token: no --no-token, --scope, --format, --issued-at or --kind")
        verification = bearer.verify(args, args.bearer)
        decision = (engine.check(verification.token, args.method, args.path) if verification.token is not None
                    else invalid_token(verification.description))
    else:
        decision = engine.check(None if args.no_token else token(args), args.method, args.path)
    response = convert.check_response(decision, engine.catalog.revision)
    verdict = "ALLOW" if decision.allowed else "DENY"
    lines = [f"{verdict} {decision.endpoint_key or f'{args.method} {args.path}'}: {decision.message}"]
    if decision.required_scopes:
        lines.append(f"  required scopes: {' '.join(decision.required_scopes)}")
    if decision.missing_scopes:
        lines.append(f"  missing scopes:  {' '.join(decision.missing_scopes)}")
    if decision.unknown_scopes:
        lines.append(f"  unknown scopes (grant nothing): {' '.join(decision.unknown_scopes)}")
    if not decision.allowed:
        lines.append(f"  gateway answer:  HTTP {decision.http_status}")
        if decision.www_authenticate:
            lines.append(f"  WWW-Authenticate: {decision.www_authenticate}")
        lines.append(f"  body: {decision.body}")
    emit(args, response, "\n".join(lines))
    return EXIT_ALLOW if decision.allowed else EXIT_DENY


def cmd_plan(args: argparse.Namespace) -> int:
    engine = engine_of(args)
    plan = engine.plan(args.features, scopes(args.existing), args.client_id, args.redirect_uri,
                       args.state, args.code_challenge)
    lines = [f"request these scopes: {' '.join(plan.scopes)}"]
    if plan.optional_scopes:
        lines.append(f"optional scopes:      {' '.join(plan.optional_scopes)}")
    lines += [f"  {u.scope:<32} {'(optional) ' if u.optional else ''}for {', '.join(u.needed_by)}" for u in plan.uses]
    lines += [f"over-broad: {o.scope}: {o.note}" for o in plan.over_broad]
    if plan.missing_from_existing:
        lines.append(f"missing from the existing request: {' '.join(plan.missing_from_existing)}")
    if plan.unknown_scopes:
        lines.append(f"unknown scopes in the existing request: {' '.join(plan.unknown_scopes)}")
    lines += [f"note: {n}" for n in plan.notes]
    if plan.authorize_url:
        lines.append(f"authorize URL: {plan.authorize_url}")
    emit(args, convert.plan_response(plan), "\n".join(lines))
    return EXIT_ALLOW


def cmd_migrate(args: argparse.Namespace) -> int:
    engine = engine_of(args)
    given = token(args)
    migrated = engine.migrate(given)
    was = engine.token_format(given)
    human = f"{'legacy' if was == TokenFormat.LEGACY else 'scoped'} token -> scoped token with scopes: " + (
        " ".join(migrated.scopes) or "(none)"
    )
    emit(args, convert.token_to_proto(migrated), human)
    return EXIT_ALLOW


def cmd_webhook(args: argparse.Namespace) -> int:
    engine = engine_of(args)
    if args.event and args.subscribe:
        raise UsageError("give either --event (delivery) or --subscribe EVENT... (subscription)")
    if args.subscribe:
        levels = engine.catalog.subscription_levels
        at = args.at or ("user" if "user" in levels else levels[0])
        decision = engine.check_subscription(token(args), args.subscribe, at)
    elif args.event:
        decision = engine.check_delivery(token(args), args.event)
    else:
        raise UsageError("give --event EVENT (delivery) or --subscribe EVENT... (subscription)")
    lines = [f"{'ALLOW' if decision.allowed else 'DENY'}: {decision.message}",
             f"  required scopes: {' '.join(decision.required_scopes)}"]
    if decision.missing_scopes:
        lines.append(f"  missing scopes:  {' '.join(decision.missing_scopes)}")
    emit(args, convert.webhook_response(decision), "\n".join(lines))
    return EXIT_ALLOW if decision.allowed else EXIT_DENY


def cmd_diagnose(args: argparse.Namespace) -> int:
    engine = engine_of(args)
    diagnosis = engine.diagnose(scopes(args.requested), scopes(args.granted), args.method or "",
                                args.path or "", args.event or "")
    lines = [diagnosis.summary]
    lines += [f"  {m.scope}: {m.cause.name.lower().replace('_', ' ')}: {m.action}" for m in diagnosis.missing]
    lines += [f"{i}. {step}" for i, step in enumerate(diagnosis.steps, 1)]
    emit(args, convert.diagnosis_response(diagnosis), "\n".join(lines))
    return EXIT_DENY if diagnosis.needs_reauthorization else EXIT_ALLOW



def register(commands: Any, json_flag: argparse.ArgumentParser) -> None:
    """Add the decision commands to the top-level subparsers."""
    check = commands.add_parser("check", parents=[json_flag], help="decide one request (exit 0 allow, 1 deny)")
    check.add_argument("method", help="HTTP method, e.g. GET")
    check.add_argument("path", help="request path as sent (ids, query) or the endpoint template")
    add_token(check)
    check.add_argument("--no-token", action="store_true", help="the request carries no credentials at all")
    check.add_argument("--bearer", metavar="TOKEN",
                       help="decide for this access token, verified with the configured issuers (the "
                            "`scopesvc serve` --jwt-* options, variables or --config file)")
    bearer.add_issuer_options(check)
    add_catalog(check)
    check.set_defaults(func=cmd_check)

    plan = commands.add_parser("plan", parents=[json_flag], help="minimum scopes for features, and the authorize URL")
    plan.add_argument("features", nargs="+",
                      help="named feature, 'METHOD /path', webhook event or scope name")
    plan.add_argument("--existing", action="append", metavar="SCOPES", help="scopes requested today")
    plan.add_argument("--client-id", default="")
    plan.add_argument("--redirect-uri", default="")
    plan.add_argument("--state", default="")
    plan.add_argument("--code-challenge", default="", help="PKCE S256 code challenge")
    add_catalog(plan)
    plan.set_defaults(func=cmd_plan)

    migrate = commands.add_parser("migrate", parents=[json_flag], help="what a token becomes when refreshed")
    add_token(migrate)
    add_catalog(migrate)
    migrate.set_defaults(func=cmd_migrate)

    webhook = commands.add_parser("webhook", parents=[json_flag], help="webhook subscription and delivery checks")
    webhook.add_argument("--event", help="may the app receive this event's payloads?")
    webhook.add_argument("--subscribe", nargs="+", metavar="EVENT", help="may the token subscribe to these events?")
    webhook.add_argument("--at", metavar="LEVEL",
                         help="subscription level, one the catalog declares (default: user, else its first)")
    add_token(webhook)
    add_catalog(webhook)
    webhook.set_defaults(func=cmd_webhook)

    diagnose = commands.add_parser("diagnose", parents=[json_flag],
                                   help="why an install gets 403: not requested, or declined "
                                        "(exit 1 when re-authorization is needed)")
    diagnose.add_argument("method", nargs="?")
    diagnose.add_argument("path", nargs="?")
    diagnose.add_argument("--event")
    diagnose.add_argument("--requested", action="append", metavar="SCOPES", help="scopes the app requested")
    diagnose.add_argument("--granted", action="append", metavar="SCOPES", help="scopes the user granted")
    add_catalog(diagnose)
    diagnose.set_defaults(func=cmd_diagnose)

