"""`scopesvc catalog ...`: validate and show catalogs."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .. import convert
from ..catalog import files as catalog_files
from ..policy import CatalogError
from . import catalog_diff, catalog_import, catalog_test
from .common import EXIT_ALLOW, EXIT_USAGE, add_catalog, emit
from .common import engine as engine_of


def cmd_catalog_validate(args: argparse.Namespace) -> int:
    if not args.json:
        catalog = catalog_files.load(args.catalog)
        print(f"{catalog.source}: valid catalog {catalog.name} revision {catalog.revision}: "
              f"{len(catalog.scopes)} scopes, {len(catalog.endpoints)} endpoints, "
              f"{len(catalog.events)} webhook events, {len(catalog.features)} features")
        return EXIT_ALLOW
    # There is no validation RPC, so no scopesvc.v1 message: the report is plain JSON, one object.
    try:
        catalog = catalog_files.load(args.catalog)
    except CatalogError as exc:
        report: dict[str, Any] = {"file": exc.source, "valid": False, "note": exc.note,
                                  "problems": [problem.as_dict() for problem in exc.problems]}
        print(json.dumps(report, indent=2))
        return EXIT_USAGE
    report = {"file": catalog.source, "valid": True, "name": catalog.name, "revision": catalog.revision,
              "scopes": len(catalog.scopes), "endpoints": len(catalog.endpoints), "webhook_events": len(catalog.events),
              "features": len(catalog.features), "problems": []}
    print(json.dumps(report, indent=2))
    return EXIT_ALLOW


def _requirement(public: bool, any_of: tuple[tuple[str, ...], ...]) -> str:
    """An endpoint's or event's requirement as `catalog show` prints it."""
    if public:
        return "public (no token)"
    if len(any_of) == 1:
        return " ".join(any_of[0]) or "(a token, no particular scope)"
    return " | ".join("[" + " ".join(scopes) + "]" for scopes in any_of)


def cmd_catalog_show(args: argparse.Namespace) -> int:
    engine = engine_of(args)
    catalog = engine.catalog
    lines = [f"{catalog.name} revision {catalog.revision} ({catalog.source})"]
    if catalog.scopes_introduced_at:
        lines.append(f"scopes introduced at {catalog.scopes_introduced_at.date()}: tokens issued earlier are legacy")
    lines.append("scopes:")
    for scope in catalog.scopes.values():
        implied = " ".join(catalog.universe.implied_by(scope.name))
        lines.append(f"  {scope.name:<32} {scope.category}" + (f" (implies {implied})" if implied else ""))
    lines.append("endpoints:")
    lines += [f"  {e.key:<56} {_requirement(e.public, e.any_of)}" for e in catalog.endpoints]
    if catalog.events:
        lines.append(f"webhook events (subscribing needs {catalog.subscribe_scope}):")
        lines += [f"  {e.name:<40} {_requirement(False, e.any_of):<28} at {'/'.join(e.subscription_scopes)}"
                  for e in catalog.events.values()]
    if catalog.features:
        lines.append("features:")
        lines += [f"  {f.name:<36} {f.description}" for f in catalog.features.values()]
    emit(args, convert.catalog_info(engine), "\n".join(lines))
    return EXIT_ALLOW



def register(commands: Any, json_flag: argparse.ArgumentParser) -> None:
    """Add `catalog` and its actions to the top-level subparsers."""
    catalog = commands.add_parser("catalog", help="validate or show a catalog")
    catalog_commands = catalog.add_subparsers(dest="catalog_command", required=True, metavar="ACTION")
    validate = catalog_commands.add_parser("validate", parents=[json_flag],
                                           help="check a catalog file (exit 2 when invalid)")
    validate.add_argument("catalog", nargs="?", default="", help="catalog file; default: the embedded one")
    validate.set_defaults(func=cmd_catalog_validate)
    show = catalog_commands.add_parser("show", parents=[json_flag],
                                       help="print a catalog's scopes, endpoints and features")
    add_catalog(show)
    show.set_defaults(func=cmd_catalog_show)
    catalog_import.register(catalog_commands, json_flag)
    catalog_test.register(catalog_commands, json_flag)
    catalog_diff.register(catalog_commands, json_flag)
