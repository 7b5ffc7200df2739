"""The `scopesvc` command line: one module per group of commands, each with a `register()`.

Exit codes: 0 allowed / success, 1 denied, 2 usage or input error (bad flags, invalid
catalog, unknown feature, an argument that is not UTF-8...), 141 when whoever reads the output
closed it early (`| head -1`: quietly, as a command killed by SIGPIPE would; never 1, which
scripts read as "denied"). `--json` prints the same `scopesvc.v1` messages the gRPC API
returns, in proto3 JSON form with the proto's field names (`serve` prints none: it is a server).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from importlib import metadata

from ..export import ExportRefused
from ..ops import config as server_config
from ..policy import CatalogError, RequestError
from . import catalog, decide, export, serve, token
from .common import EXIT_USAGE, UsageError, json_parent

COMMANDS = (serve, decide, catalog, token, export)
EXIT_CLOSED_PIPE = 128 + 13  # what a shell reports for a command killed by SIGPIPE


class _CommandParser(argparse.ArgumentParser):
    """A subcommand's parser: a flag it does not know is an error shown with its own usage.

    (argparse leaves unknown arguments to the top-level parser, whose usage line says nothing
    about the subcommand's flags.)
    """

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[no-untyped-def, override]
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


def _not_utf8(argv: Sequence[str]) -> str:
    """The first argument that is not valid UTF-8 (Python keeps its bytes as surrogates), described; else ''."""
    for position, arg in enumerate(argv, 1):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            shown = os.fsencode(arg) if isinstance(arg, str) else arg
            return f"argument {position} ({shown!r}) is not valid UTF-8"
    return ""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scopesvc", description="OAuth scope authorization decisions.",
                                     epilog="exit codes: 0 allowed/ok, 1 denied, 2 usage or input error")
    parser.add_argument("--version", action="version", version=f"%(prog)s {metadata.version('scopesvc')}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_CommandParser)
    json_flag = json_parent()
    for module in COMMANDS:
        module.register(commands, json_flag)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    problem = _not_utf8(arguments)
    if problem:
        print(f"scopesvc: {problem}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return _run(build_parser(), arguments)
    except BrokenPipeError:
        # The reader went away: say nothing, and keep the interpreter's final flush from failing too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_CLOSED_PIPE


def _run(parser: argparse.ArgumentParser, arguments: list[str]) -> int:
    args = parser.parse_args(arguments)
    try:
        return int(args.func(args))
    except CatalogError as exc:
        print(f"scopesvc: {exc}", file=sys.stderr)
    except ExportRefused as exc:
        print(f"scopesvc export: {exc}", file=sys.stderr)
    except RequestError as exc:
        print(f"scopesvc: invalid input: {exc}", file=sys.stderr)
    except (UsageError, server_config.ConfigError) as exc:
        print(f"scopesvc {args.command}: {exc}", file=sys.stderr)
    except BrokenPipeError:
        raise  # not a failure of the command: main() ends quietly
    except OSError as exc:
        print(f"scopesvc: {exc}", file=sys.stderr)
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
