"""The `scopesvc` command line: one module per group of commands, each with a `register()`.

Exit codes: 0 allowed / success, 1 denied, 2 usage or input error (bad flags, invalid
catalog, unknown feature...). `--json` prints the same `scopesvc.v1` messages the gRPC API
returns, in proto3 JSON form with the proto's field names.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..ops import config as server_config
from ..policy import CatalogError, RequestError
from . import catalog, decide, serve
from .common import EXIT_USAGE, UsageError, json_parent

COMMANDS = (serve, decide, catalog)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scopesvc", description="OAuth scope authorization decisions.",
                                     epilog="exit codes: 0 allowed/ok, 1 denied, 2 usage or input error")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    json_flag = json_parent()
    for module in COMMANDS:
        module.register(commands, json_flag)
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
