"""`scopesvc catalog import openapi SPEC`: a catalog from an OpenAPI or Swagger document (docs/import.md)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..catalog import openapi
from .common import EXIT_ALLOW


def cmd_import_openapi(args: argparse.Namespace) -> int:
    options = openapi.ImportOptions(
        name=args.name, base_path=args.base_path, authorize_url=args.authorize_url,
        list_means_any_of=args.list_means == "any-of", scopes_extension=args.scopes_extension,
        ignore_scopes=tuple(args.ignore_scope or ()), scopes_from_description=args.scopes_from_description,
        write_implies_read=args.write_implies_read, case_insensitive=args.case_insensitive,
        error_title=args.error_title, error_message=args.error_message)
    text, report = openapi.import_file(args.spec, options)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)
    if args.json:
        print(json.dumps(report.to_json(), indent=2), file=sys.stdout if args.output else sys.stderr)
    else:
        print(report.human(), file=sys.stderr)
    return EXIT_ALLOW


def register(catalog_commands: Any, json_flag: argparse.ArgumentParser) -> None:
    """Add `catalog import openapi` to the `catalog` actions."""
    importer = catalog_commands.add_parser("import", help="make a catalog from an API description")
    kinds = importer.add_subparsers(dest="import_kind", required=True, metavar="KIND")
    parser = kinds.add_parser(
        "openapi", help="an OpenAPI 3.0/3.1 or Swagger 2.0 document (JSON or YAML)",
        description="Import the scopes of an OpenAPI 3.0/3.1 or Swagger 2.0 document as a catalog, validated "
                    "before it is written. The report of every operation goes to stderr (--json: as JSON, on "
                    "stdout when -o is given). Defaults follow the specification; see docs/import.md.")
    parser.add_argument("--json", action="store_true", help="the report as JSON (on stdout with -o, else stderr)")
    parser.add_argument("spec", metavar="SPEC", help="the OpenAPI / Swagger document")
    parser.add_argument("-o", "--output", metavar="FILE", default="", help="write the catalog here (default stdout)")
    parser.add_argument("--name", default="", help="catalog name (default: from info.title)")
    parser.add_argument("--base-path", default=None, metavar="PATH",
                        help="prefix of every path (default: servers[0].url's path, or Swagger's basePath); "
                             "'/' for none")
    parser.add_argument("--authorize-url", default="", metavar="URL",
                        help="OAuth authorize URL for Plan (default: the first OAuth2 flow's authorizationUrl)")
    parser.add_argument("--list-means", choices=("all-of", "any-of"), default="all-of",
                        help="what a requirement's list of scopes means: all needed (the specification) or any "
                             "one of them (Xero, Spotify, Slack write alternatives that way)")
    parser.add_argument("--scopes-extension", default="", metavar="FIELD",
                        help="an operation field naming its scopes, used instead of security when present "
                             "(PagerDuty: x-pd-requires-scope)")
    parser.add_argument("--ignore-scope", action="append", metavar="NAME",
                        help="a pseudo-scope to ignore wherever it is listed (Slack: none); repeatable")
    parser.add_argument("--scopes-from-description", default="", metavar="REGEX",
                        help="find each operation's scopes in its description: backquoted words in the match's "
                             "group 'scopes' (or group 1, or the match); used instead of security when found "
                             "(Calendly: see docs/import.md)")
    parser.add_argument("--write-implies-read", action="store_true",
                        help="let X:write grant X:read (off: an import adds no implication the document lacks)")
    parser.add_argument("--case-insensitive", action="store_true",
                        help="static path segments match in any case (Xero routes /Accounts and /accounts alike)")
    parser.add_argument("--error-title", default="", help="the 403 body's title (default: the catalog default)")
    parser.add_argument("--error-message", default="", help="the 403 body's message")
    parser.set_defaults(func=cmd_import_openapi)
