"""The command line's entry point: `python -m scopesvc` and the `scopesvc` command.

It is apart from `scopesvc.cli` so that it runs before the command line's imports (gRPC,
protobuf, the HTTP servers: most of a second). To `scopesvc serve`, SIGHUP means "reload the
catalog", and its server installs that handler before it reads the catalog; until then Python's
default action for SIGHUP ends the process, so a reload sent while it starts (by an operator, a
configuration reloader, or the `--workers` supervisor forwarding one) would kill it. `serve`
ignores SIGHUP from here on, which leaves only the interpreter's own start exposed. Nothing is
missed: the catalog is read after the handler replaces the ignore.
"""

from __future__ import annotations

import signal
import sys


def main() -> int:
    if sys.argv[1:2] == ["serve"]:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    from .cli import main as command_line  # after the line above, on purpose

    return command_line()


if __name__ == "__main__":
    sys.exit(main())
