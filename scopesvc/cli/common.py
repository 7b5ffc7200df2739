"""What every `scopesvc` command shares: exit codes, scope and token flags, JSON output."""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Sequence

from google.protobuf import json_format
from google.protobuf.message import Message

from ..catalog import files as catalog_files
from ..policy import Engine, Token, TokenFormat, TokenKind

EXIT_ALLOW, EXIT_DENY, EXIT_USAGE = 0, 1, 2

FORMATS = {"auto": TokenFormat.UNSPECIFIED, "scoped": TokenFormat.SCOPED, "legacy": TokenFormat.LEGACY}
KINDS = {"oauth": TokenKind.OAUTH_APP, "pat": TokenKind.PERSONAL_ACCESS_TOKEN, "unspecified": TokenKind.UNSPECIFIED}


class UsageError(Exception):
    """Bad command-line input: exit code 2."""


def scopes(values: Sequence[str] | None) -> list[str]:
    """Scopes given as repeated flags and/or space- or comma-separated lists."""
    out: list[str] = []
    for value in values or ():
        out.extend(part for part in value.replace(",", " ").split() if part)
    return out


def timestamp(text: str) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date or timestamp: {text!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


def token(args: argparse.Namespace) -> Token:
    return Token(tuple(scopes(args.scope)), FORMATS[args.format], args.issued_at, KINDS[args.kind])


def emit(args: argparse.Namespace, message: Message, human: str) -> None:
    if args.json:
        print(json_format.MessageToJson(message, preserving_proto_field_name=True, indent=2,
                                     always_print_fields_with_no_presence=True))
    else:
        print(human)


def engine(args: argparse.Namespace) -> Engine:
    return Engine(catalog_files.load(args.catalog))


def add_catalog(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--catalog", metavar="FILE", default="",
                        help="catalog file (YAML or JSON); default: the embedded Calendly API v2 catalog")


def add_token(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-s", "--scope", action="append", metavar="SCOPES",
                        help="a scope the token has (repeat, or give a space/comma separated list)")
    parser.add_argument("--format", choices=list(FORMATS), default="auto",
                        help="token format; auto decides by --issued-at against the catalog's cut-over")
    parser.add_argument("--issued-at", type=timestamp, metavar="WHEN", help="when the token was issued (ISO 8601)")
    parser.add_argument("--kind", choices=list(KINDS), default="unspecified",
                        help="OAuth app token or personal access token")




def json_parent() -> argparse.ArgumentParser:
    """The `--json` flag, as a parent parser for commands that print a scopesvc.v1 message."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--json", action="store_true", help="print the scopesvc.v1 response as JSON")
    return parent
