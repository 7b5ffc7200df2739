"""`scopesvc serve`: run the server (one process, or `--workers N`)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from ..ops import config as server_config
from ..ops import logs
from ..server import workers
from ..server.app import run
from .common import EXIT_ALLOW


def cmd_serve(args: argparse.Namespace) -> int:
    config = server_config.resolve(args)  # ConfigError here or at start (e.g. TLS files): exit 2
    logs.configure(config.log_level, config.log_format)
    if config.workers > 1:
        return workers.supervise(config)
    asyncio.run(run(config))
    return EXIT_ALLOW



def register(commands: Any, json_flag: argparse.ArgumentParser) -> None:
    """Add `serve` to the top-level subparsers."""
    serve = commands.add_parser(
        "serve", help="run the gRPC server",
        description="Run the gRPC server. Every option is also an environment variable (shown) and a key of "
                    "the --config YAML file; flags win over the environment, which wins over the file. "
                    "SIGTERM/SIGINT drain and stop; SIGHUP reloads the catalog.")
    server_config.add_arguments(serve)
    serve.set_defaults(func=cmd_serve)

