"""`scopesvc serve --workers N`: N server processes sharing one port, so every core serves.

The workers bind with SO_REUSEPORT (`reuse_port`), so N processes listening on the same
host:port share its connections (the kernel spreads new connections over them). The supervisor
first checks that no other process holds the port: a second server never joins the set. Each worker is a
complete server - its own engine, cache, health service and catalog reloader - started as
`scopesvc serve` with the resolved configuration passed in SCOPESVC_* environment variables.

- Health: every worker answers for itself; a worker reports NOT_SERVING while it drains.
- Reload: the supervisor forwards SIGHUP to every worker; each also watches the catalog file.
- Metrics: each worker serves its own registry on `metrics_port + i` (i = 0..N-1), so every
  worker is one Prometheus target and counters need no cross-process aggregation.
- Decision log: a file target is per worker, `FILE.w0` .. `FILE.w{N-1}`, each rotated on its own
  (N processes rotating one file would rename it under each other and lose records); `-`
  (stdout) stays shared, a JSON line per write.
- Stop: SIGTERM/SIGINT are forwarded; the supervisor waits for the workers to drain. If a worker
  exits on its own, the others are stopped and the supervisor exits non-zero (fail loudly; the
  process manager restarts the whole set).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
import time

from ..ops.config import ConfigError, ServerConfig, env_name
from ..ops.listen import bind_tcp

log = logging.getLogger(__name__)


def check(config: ServerConfig) -> None:
    """Raise `ConfigError` for options that cannot be shared by several processes, `ListenError` for a
    port in use."""
    if config.port == 0:
        raise ConfigError("workers: give a fixed --port; with port 0 each worker would pick its own")
    if config.uds:
        raise ConfigError("workers: a Unix socket path cannot be shared by several processes; drop --uds")
    if config.forward_auth_port:
        raise ConfigError("workers: the forward-auth listener is per process; run it without --workers")
    bind_tcp("gRPC", config.host, config.port).close()  # ListenError when another process holds it


def _env_text(value: object) -> str:
    """One resolved option as the worker's environment spells it (lists as JSON, which YAML reads back)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return json.dumps(list(value))
    return str(value)


def worker_environment(config: ServerConfig, index: int) -> dict[str, str]:
    """The environment that makes `scopesvc serve` run worker `index` of `config`."""
    env = dict(os.environ)
    env.pop(env_name("config"), None)
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        env[env_name(f.name)] = _env_text(value)
    env[env_name("workers")] = "1"
    env[env_name("reuse_port")] = "true"
    if config.metrics_port:
        env[env_name("metrics_port")] = str(config.metrics_port + index)
    if config.decision_log and config.decision_log != "-":
        env[env_name("decision_log")] = worker_log(config.decision_log, index)
    return env


def worker_log(path: str, index: int) -> str:
    """Worker `index`'s own decision log file."""
    return f"{path}.w{index}"


def supervise(config: ServerConfig) -> int:
    """Run `config.workers` workers until SIGTERM/SIGINT; return the exit code."""
    check(config)
    cmd = [sys.executable, "-m", "scopesvc", "serve"]
    # Workers start with SIGHUP ignored (exec keeps an ignored signal ignored, not a handler) until
    # their server installs its reload handler, before it reads the catalog: a SIGHUP forwarded
    # while they import, which Python's default action makes fatal, then costs nothing.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    children = [subprocess.Popen(cmd, env=worker_environment(config, i)) for i in range(config.workers)]
    log.info("started %d workers on %s:%d: pids %s", len(children), config.host, config.port,
             " ".join(str(c.pid) for c in children))
    requested: set[int] = set()  # the stop signals the supervisor was sent (and forwarded)
    failed = False  # a worker exited on its own

    def send(signum: int) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    def forward(signum: int, _frame: object) -> None:
        if signum != signal.SIGHUP:
            requested.add(signum)
        send(signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    while True:
        exited = [c for c in children if c.poll() is not None]
        if len(exited) == len(children):
            break
        if exited and not requested and not failed:
            log.error("worker %d exited with %s; stopping the others", exited[0].pid, exited[0].returncode)
            failed = True
            send(signal.SIGTERM)
        time.sleep(0.2)
    # A worker the stop reached while it was still importing ends by that signal's default action
    # (it had nothing to drain): that is the stop that was asked for, not a failure.
    stopped = all(c.returncode == 0 or -c.returncode in requested for c in children)
    return 0 if requested and not failed and stopped else 1
