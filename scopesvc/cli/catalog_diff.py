"""`scopesvc catalog diff OLD NEW`: what changed in access, for review gates (docs/catalog.md)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..catalog import diff as catalog_diff
from ..catalog import files as catalog_files
from .common import EXIT_ALLOW, EXIT_DENY


def cmd_catalog_diff(args: argparse.Namespace) -> int:
    result = catalog_diff.diff(catalog_files.load(args.old), catalog_files.load(args.new))
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(result.human())
    failing = result.count(catalog_diff.LOOSENS) if args.fail_on == "loosens" else result.decisions_can_differ
    return EXIT_DENY if failing else EXIT_ALLOW


def register(catalog_commands: Any, json_flag: argparse.ArgumentParser) -> None:
    """Add `catalog diff` to the `catalog` actions."""
    parser = catalog_commands.add_parser(
        "diff", help="what changed in access between two catalogs",
        description="List every change in access from OLD to NEW, endpoint by endpoint, event by event and scope "
                    "by scope, each labelled loosens (some token gains access) or tightens (some token loses it). "
                    "Exit 0 when no decision can differ, 1 when some can (with --fail-on loosens: only when some "
                    "token gains access), 2 when a catalog is invalid.")
    parser.add_argument("old", metavar="OLD", help="the catalog before")
    parser.add_argument("new", metavar="NEW", help="the catalog after")
    parser.add_argument("--fail-on", choices=("any", "loosens"), default="any",
                        help="what makes the exit code 1: any change of a decision (default) or only loosening")
    parser.add_argument("--json", action="store_true", help="print the changes as JSON")
    parser.set_defaults(func=cmd_catalog_diff)
