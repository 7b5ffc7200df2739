"""The `scopesvc` command line.

Exit codes: 0 allowed / success, 1 denied, 2 usage or input error (bad flags, invalid
catalog, unknown feature...). `--json` prints the same `scopesvc.v1` messages the gRPC API
returns, in proto3 JSON form with the proto's field names.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from collections.abc import Sequence

from google.protobuf import json_format
from google.protobuf.message import Message

from . import convert
from .catalog import files as catalog_files
from .ops import config as server_config
from .ops import logs
from .policy import CatalogError, Engine, RequestError, Token, TokenFormat, TokenKind
from .policy.catalog import SUBSCRIPTION_SCOPES
from .server import workers
from .server.app import run

EXIT_ALLOW, EXIT_DENY, EXIT_USAGE = 0, 1, 2

_FORMATS = {"auto": TokenFormat.UNSPECIFIED, "scoped": TokenFormat.SCOPED, "legacy": TokenFormat.LEGACY}
_KINDS = {"oauth": TokenKind.OAUTH_APP, "pat": TokenKind.PERSONAL_ACCESS_TOKEN, "unspecified": TokenKind.UNSPECIFIED}


class UsageError(Exception):
    """Bad command-line input: exit code 2."""


def _scopes(values: Sequence[str] | None) -> list[str]:
    """Scopes given as repeated flags and/or space- or comma-separated lists."""
    out: list[str] = []
    for value in values or ():
        out.extend(part for part in value.replace(",", " ").split() if part)
    return out


def _timestamp(text: str) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date or timestamp: {text!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


def _token(args: argparse.Namespace) -> Token:
    return Token(tuple(_scopes(args.scope)), _FORMATS[args.format], args.issued_at, _KINDS[args.kind])


def _emit(args: argparse.Namespace, message: Message, human: str) -> None:
    if args.json:
        print(json_format.MessageToJson(message, preserving_proto_field_name=True, indent=2,
                                     always_print_fields_with_no_presence=True))
    else:
        print(human)


def _engine(args: argparse.Namespace) -> Engine:
    return Engine(catalog_files.load(args.catalog))


def cmd_check(args: argparse.Namespace) -> int:
    engine = _engine(args)
    decision = engine.check(_token(args), args.method, args.path)
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
    _emit(args, response, "\n".join(lines))
    return EXIT_ALLOW if decision.allowed else EXIT_DENY


def cmd_plan(args: argparse.Namespace) -> int:
    engine = _engine(args)
    plan = engine.plan(args.features, _scopes(args.existing), args.client_id, args.redirect_uri,
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
    _emit(args, convert.plan_response(plan), "\n".join(lines))
    return EXIT_ALLOW


def cmd_migrate(args: argparse.Namespace) -> int:
    engine = _engine(args)
    token = _token(args)
    migrated = engine.migrate(token)
    was = engine.token_format(token)
    human = f"{'legacy' if was == TokenFormat.LEGACY else 'scoped'} token -> scoped token with scopes: " + (
        " ".join(migrated.scopes) or "(none)"
    )
    _emit(args, convert.token_to_proto(migrated), human)
    return EXIT_ALLOW


def cmd_webhook(args: argparse.Namespace) -> int:
    engine = _engine(args)
    if args.event and args.subscribe:
        raise UsageError("give either --event (delivery) or --subscribe EVENT... (subscription)")
    if args.subscribe:
        decision = engine.check_subscription(_token(args), args.subscribe, args.at)
    elif args.event:
        decision = engine.check_delivery(_token(args), args.event)
    else:
        raise UsageError("give --event EVENT (delivery) or --subscribe EVENT... (subscription)")
    lines = [f"{'ALLOW' if decision.allowed else 'DENY'}: {decision.message}",
             f"  required scopes: {' '.join(decision.required_scopes)}"]
    if decision.missing_scopes:
        lines.append(f"  missing scopes:  {' '.join(decision.missing_scopes)}")
    _emit(args, convert.webhook_response(decision), "\n".join(lines))
    return EXIT_ALLOW if decision.allowed else EXIT_DENY


def cmd_diagnose(args: argparse.Namespace) -> int:
    engine = _engine(args)
    if bool(args.event) == bool(args.method):
        raise UsageError("give either METHOD PATH or --event EVENT")
    diagnosis = engine.diagnose(_scopes(args.requested), _scopes(args.granted), args.method or "",
                                args.path or "", args.event or "")
    lines = [diagnosis.summary]
    lines += [f"  {m.scope}: {m.cause.name.lower().replace('_', ' ')}: {m.action}" for m in diagnosis.missing]
    lines += [f"{i}. {step}" for i, step in enumerate(diagnosis.steps, 1)]
    _emit(args, convert.diagnosis_response(diagnosis), "\n".join(lines))
    return EXIT_DENY if diagnosis.needs_reauthorization else EXIT_ALLOW


def cmd_catalog_validate(args: argparse.Namespace) -> int:
    catalog = catalog_files.load(args.catalog)
    print(f"{catalog.source}: valid catalog {catalog.name} revision {catalog.revision}: "
          f"{len(catalog.scopes)} scopes, {len(catalog.endpoints)} endpoints, "
          f"{len(catalog.events)} webhook events, {len(catalog.features)} features")
    return EXIT_ALLOW


def cmd_catalog_show(args: argparse.Namespace) -> int:
    engine = _engine(args)
    catalog = engine.catalog
    lines = [f"{catalog.name} revision {catalog.revision} ({catalog.source})"]
    if catalog.scopes_introduced_at:
        lines.append(f"scopes introduced at {catalog.scopes_introduced_at.date()}: tokens issued earlier are legacy")
    lines.append("scopes:")
    for scope in catalog.scopes.values():
        implied = " ".join(catalog.universe.implied_by(scope.name))
        lines.append(f"  {scope.name:<32} {scope.category}" + (f" (implies {implied})" if implied else ""))
    lines.append("endpoints:")
    lines += [f"  {e.key:<56} {' '.join(e.scopes) or '(none)'}" for e in catalog.endpoints]
    if catalog.events:
        lines.append(f"webhook events (subscribing needs {catalog.subscribe_scope}):")
        lines += [f"  {e.name:<40} {e.scope:<28} at {'/'.join(e.subscription_scopes)}" for e in catalog.events.values()]
    if catalog.features:
        lines.append("features:")
        lines += [f"  {f.name:<36} {f.description}" for f in catalog.features.values()]
    _emit(args, convert.catalog_info(engine), "\n".join(lines))
    return EXIT_ALLOW


def cmd_serve(args: argparse.Namespace) -> int:
    config = server_config.resolve(args)  # ConfigError here or at start (e.g. TLS files): exit 2
    logs.configure(config.log_level, config.log_format)
    if config.workers > 1:
        return workers.supervise(config)
    asyncio.run(run(config))
    return EXIT_ALLOW


def _add_catalog(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--catalog", metavar="FILE", default="",
                        help="catalog file (YAML or JSON); default: the embedded Calendly API v2 catalog")


def _add_token(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-s", "--scope", action="append", metavar="SCOPES",
                        help="a scope the token has (repeat, or give a space/comma separated list)")
    parser.add_argument("--format", choices=list(_FORMATS), default="auto",
                        help="token format; auto decides by --issued-at against the catalog's cut-over")
    parser.add_argument("--issued-at", type=_timestamp, metavar="WHEN", help="when the token was issued (ISO 8601)")
    parser.add_argument("--kind", choices=list(_KINDS), default="unspecified",
                        help="OAuth app token or personal access token")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scopesvc", description="OAuth scope authorization decisions.",
                                     epilog="exit codes: 0 allowed/ok, 1 denied, 2 usage or input error")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve", help="run the gRPC server",
        description="Run the gRPC server. Every option is also an environment variable (shown) and a key of "
                    "the --config YAML file; flags win over the environment, which wins over the file. "
                    "SIGTERM/SIGINT drain and stop; SIGHUP reloads the catalog.")
    server_config.add_arguments(serve)
    serve.set_defaults(func=cmd_serve)

    json_flag = argparse.ArgumentParser(add_help=False)
    json_flag.add_argument("--json", action="store_true", help="print the scopesvc.v1 response as JSON")

    check = commands.add_parser("check", parents=[json_flag], help="decide one request (exit 0 allow, 1 deny)")
    check.add_argument("method", help="HTTP method, e.g. GET")
    check.add_argument("path", help="request path as sent (ids, query) or the endpoint template")
    _add_token(check)
    _add_catalog(check)
    check.set_defaults(func=cmd_check)

    plan = commands.add_parser("plan", parents=[json_flag], help="minimum scopes for features, and the authorize URL")
    plan.add_argument("features", nargs="+",
                      help="named feature, 'METHOD /path', webhook event or scope name")
    plan.add_argument("--existing", action="append", metavar="SCOPES", help="scopes requested today")
    plan.add_argument("--client-id", default="")
    plan.add_argument("--redirect-uri", default="")
    plan.add_argument("--state", default="")
    plan.add_argument("--code-challenge", default="", help="PKCE S256 code challenge")
    _add_catalog(plan)
    plan.set_defaults(func=cmd_plan)

    migrate = commands.add_parser("migrate", parents=[json_flag], help="what a token becomes when refreshed")
    _add_token(migrate)
    _add_catalog(migrate)
    migrate.set_defaults(func=cmd_migrate)

    webhook = commands.add_parser("webhook", parents=[json_flag], help="webhook subscription and delivery checks")
    webhook.add_argument("--event", help="may the app receive this event's payloads?")
    webhook.add_argument("--subscribe", nargs="+", metavar="EVENT", help="may the token subscribe to these events?")
    webhook.add_argument("--at", choices=SUBSCRIPTION_SCOPES, default="user", help="subscription scope")
    _add_token(webhook)
    _add_catalog(webhook)
    webhook.set_defaults(func=cmd_webhook)

    diagnose = commands.add_parser("diagnose", parents=[json_flag],
                                   help="why an install gets 403: not requested, or declined (exit 1 when re-authorization is needed)")
    diagnose.add_argument("method", nargs="?")
    diagnose.add_argument("path", nargs="?")
    diagnose.add_argument("--event")
    diagnose.add_argument("--requested", action="append", metavar="SCOPES", help="scopes the app requested")
    diagnose.add_argument("--granted", action="append", metavar="SCOPES", help="scopes the user granted")
    _add_catalog(diagnose)
    diagnose.set_defaults(func=cmd_diagnose)

    catalog = commands.add_parser("catalog", help="validate or show a catalog")
    catalog_commands = catalog.add_subparsers(dest="catalog_command", required=True, metavar="ACTION")
    validate = catalog_commands.add_parser("validate", help="check a catalog file (exit 2 when invalid)")
    validate.add_argument("catalog", nargs="?", default="", help="catalog file; default: the embedded one")
    validate.set_defaults(func=cmd_catalog_validate)
    show = catalog_commands.add_parser("show", parents=[json_flag], help="print a catalog's scopes, endpoints and features")
    _add_catalog(show)
    show.set_defaults(func=cmd_catalog_show)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except CatalogError as exc:
        print(f"scopesvc: {exc}", file=sys.stderr)
    except RequestError as exc:
        print(f"scopesvc: invalid input: {exc}", file=sys.stderr)
    except (UsageError, server_config.ConfigError) as exc:
        print(f"scopesvc {args.command}: {exc}", file=sys.stderr)
    except OSError as exc:
        print(f"scopesvc: {exc}", file=sys.stderr)
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
