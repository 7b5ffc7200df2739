"""`scopesvc catalog test TESTS`: run a file of expected decisions against a catalog (docs/catalog.md)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..catalog import casefile
from ..catalog import files as catalog_files
from ..policy import Engine
from .common import EXIT_ALLOW, EXIT_DENY, UsageError


def cmd_catalog_test(args: argparse.Namespace) -> int:
    try:
        tests = casefile.load(args.tests)
        catalog = catalog_files.load(args.catalog or tests.catalog)
        results = casefile.run(Engine(catalog), tests)
    except casefile.CaseFileError as exc:
        raise UsageError(str(exc)) from None
    failed = [r for r in results if not r.passed]
    if args.junit:
        with open(args.junit, "wb") as handle:
            handle.write(casefile.junit(results, args.tests, catalog.name))
    if args.json:
        print(json.dumps({"catalog": catalog.source, "passed": len(results) - len(failed), "failed": len(failed),
                          "cases": [{"name": r.case.name, "line": r.case.line, "question": r.case.question,
                                     "passed": r.passed, "allowed": r.allowed, "reason": r.reason.name,
                                     "missing_scopes": list(r.missing_scopes), "failures": r.failures}
                                    for r in results]}, indent=2))
    else:
        for result in results:
            if result.passed and not args.verbose:
                continue
            status = "PASS" if result.passed else "FAIL"
            print(f"{status} {args.tests}:{result.case.line} {result.case.name} ({result.case.question})")
            for failure in result.failures:
                print(f"     {failure}")
        print(f"{args.tests}: {len(results)} case(s) against {catalog.name} ({catalog.source}): "
              f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return EXIT_DENY if failed else EXIT_ALLOW


def register(catalog_commands: Any, json_flag: argparse.ArgumentParser) -> None:
    """Add `catalog test` to the `catalog` actions."""
    parser = catalog_commands.add_parser(
        "test", help="check a catalog against a file of expected decisions",
        description="Run the cases of a YAML test file against a catalog. Exit 0 when all pass, 1 when any "
                    "fails, 2 when the file or the catalog is unusable (the message names the file and line).")
    parser.add_argument("--json", action="store_true", help="print every case's result as JSON")
    parser.add_argument("tests", metavar="TESTS", help="the YAML test file (format: docs/catalog.md)")
    parser.add_argument("--catalog", metavar="FILE", default="",
                        help="the catalog to test (default: the file's own 'catalog', else the embedded one)")
    parser.add_argument("--junit", metavar="FILE", default="", help="also write a JUnit XML report here")
    parser.add_argument("-v", "--verbose", action="store_true", help="list passing cases too")
    parser.set_defaults(func=cmd_catalog_test)
