"""Bench section "forward-auth": the HTTP front end's throughput, the server choice, and the attack.

`./bench/run http` (bench/sections/http.py) measures, on this machine:

1. Throughput at 64 connections (h2load --h1, keep-alive) of `scopesvc serve --forward-auth-port`
   (aiohttp) directly, beside the same workload on uvicorn + httptools with a minimal ASGI app
   calling the same decider (the alternative the issue named: the choice is by this number), and
   beside the old ThreadingHTTPServer (bench/forward_auth_old_threading_server.py, baseline only).
2. The same through real NGINX (auth_request) and Traefik (ForwardAuth) with the shipped configs
   (docs/gateways/: an authentication service first, here a static NGINX answering the token's
   scopes), for the new server and the old one.
3. The attack of tests/test_hardening_http.py (bench/http_attack.py): normal requests' p50/p99,
   the server's peak memory and gRPC, during 2,000 slow-header and 100 large-header connections.

`python -m bench.forward_auth serve uvicorn|old --port P` runs one of the compared servers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import pwd
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from multidict import CIMultiDict, CIMultiDictProxy

from scopesvc.catalog import files as catalog_files
from scopesvc.gateway.forward_auth import BadForwardRequest, ForwardAuth, answer_response, original_request
from scopesvc.gateway.http import bad_request
from scopesvc.ops.config import ServerConfig
from scopesvc.policy import Engine, RequestError
from scopesvc.server.app import Server

from . import h2load, http_attack
from .rounds import rotated
from .servers import free_port, running

CONNECTIONS = 64
HEADERS = ("x-original-method: GET", "x-original-uri: /scheduled_events/AB12/invitees?count=5",
           "x-scopesvc-scopes: scheduled_events:read users:read")
GATEWAY_HEADERS = ("authorization: Bearer bench",)
GATEWAY_PATH = "/scheduled_events/AB12/invitees?count=5"
# The API behind the gateway, and the authentication service the shipped configs ask first (it
# verifies the token and answers its scopes): static NGINX servers, so the gateway and scopesvc
# are what is measured.
NGINX_STATIC = (
    "server {{ listen 127.0.0.1:{upstream}; location / {{ return 200 'upstream'; }} }}\n"
    "server {{ listen 127.0.0.1:{authenticator}; location / {{\n"
    "    add_header X-Scopesvc-Scopes 'scheduled_events:read users:read'; return 200; }} }}\n"
)


# -- the servers compared (each its own process) ----------------------------------------------


async def _serve_other(kind: str, port: int) -> None:
    """A scopesvc Server (gRPC on a free port, its decider) with `kind` as the forward-auth listener."""
    engine = Engine(catalog_files.load_default())
    server = Server(ServerConfig(host="127.0.0.1", port=0, metrics_port=0, grace=0.5), engine)
    await server.start()
    if kind == "old":
        from .forward_auth_old_threading_server import ForwardAuthServer

        old = ForwardAuthServer("127.0.0.1", port, server.decider, server.gateway, asyncio.get_running_loop())
        old.start()
        await asyncio.Event().wait()
    import uvicorn

    app = _asgi_app(ForwardAuth(server.decider, server.gateway))
    config = uvicorn.Config(app, host="127.0.0.1", port=port, loop="none", http="httptools", lifespan="off",
                            access_log=False, log_level="warning", backlog=4096)
    await uvicorn.Server(config).serve()


def _asgi_app(forward_auth: ForwardAuth) -> Any:
    """The forward-auth handler's work as a minimal ASGI app: the same helpers, decider and answer."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = CIMultiDictProxy(CIMultiDict((k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]))
        try:
            method, uri = original_request(headers)
            token = await forward_auth.token(SimpleNamespace(headers=headers))  # type: ignore[arg-type]
            response = answer_response(forward_auth.decide(token, method, uri, headers))
        except (BadForwardRequest, RequestError) as exc:
            response = bad_request(str(exc))
        await send({"type": "http.response.start", "status": response.status,
                    "headers": [(k.encode(), v.encode()) for k, v in response.headers.items()]
                    + [(b"content-length", str(len(response.body or b"")).encode())]})
        await send({"type": "http.response.body", "body": response.body or b""})

    return app


@contextlib.contextmanager
def _server(kind: str, tmp: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = free_port()
    if kind == "aiohttp":
        # h2load never reconnects: a connection that reaches scopesvc's keep-alive limit (1,000 requests,
        # then an answer that says close) is gone for the rest of the run, and only scopesvc has such a
        # limit, so a run long or fast enough would measure scopesvc on fewer connections than the others.
        cmd = [sys.executable, "-m", "scopesvc", "serve", "--port", "0", "--metrics-port", "0", "--log-level",
               "warning", "--forward-auth-port", str(port), "--http-keepalive-requests", "1000000000"]
    else:
        cmd = [sys.executable, "-m", "bench.forward_auth", "serve", kind, "--port", str(port)]
    with running(cmd, port, tmp / f"{kind}.log") as proc:
        yield proc, port


# -- measuring ----------------------------------------------------------------------------------


def direct(names: dict[str, str], tmp: Path, seconds: float, rounds: int,
           connections: int = CONNECTIONS) -> dict[str, h2load.Result]:
    """Each server (`names`: kind -> label) called directly, in interleaved rounds: all of them run
    at once and each round loads them one after the other, starting one later each round, so a
    change in the machine's other load hits them alike (single runs here vary by up to 1.5x)."""
    kinds = list(names)
    with contextlib.ExitStack() as stack:
        ports = {kind: stack.enter_context(_server(kind, tmp))[1] for kind in kinds}
        runs: dict[str, list[h2load.Result]] = {kind: [] for kind in kinds}
        for r in range(rounds):
            for kind in rotated(kinds, r):
                load = h2load.Load(f"http://127.0.0.1:{ports[kind]}/check", headers=HEADERS, status="2xx")
                runs[kind].append(h2load.run_h1(kind, load, connections=connections, seconds=seconds))
    return {names[kind]: h2load.merge(names[kind], results) for kind, results in runs.items()}


def _nginx(tmp: Path, forward_auth_port: int, port: int, upstream_port: int, authenticator_port: int) -> list[str]:
    """docs/gateways/nginx.conf as the e2e tests render it, with the static API and authenticator."""
    from tests.e2e.conftest import DOCS, nginx_binary, render

    sockets = Path(tempfile.mkdtemp(prefix="bench-nginx-", dir=tmp))  # the scope check's, for NGINX's workers
    if os.geteuid() == 0:
        os.chown(sockets, pwd.getpwnam("nobody").pw_uid, -1)
    (tmp / "api.conf").write_text(render(DOCS / "nginx.conf", {
        "NGINX_PORT": port, "SCOPESVC_FORWARD_AUTH_PORT": forward_auth_port, "UPSTREAM_PORT": upstream_port,
        "AUTHENTICATOR_PORT": authenticator_port, "SCOPE_CHECK_SOCKET": sockets / "scope-check.sock",
    }) + NGINX_STATIC.format(upstream=upstream_port, authenticator=authenticator_port))
    temp_paths = "".join(f"    {kind}_temp_path {tmp}/{kind};\n" for kind in ("client_body", "proxy", "fastcgi",
                                                                                 "uwsgi", "scgi"))
    (tmp / "nginx.conf").write_text(
        f"daemon off;\nworker_processes 1;\npid {tmp}/nginx.pid;\nerror_log {tmp}/error.log warn;\n"
        f"events {{ worker_connections 4096; }}\nhttp {{\n    access_log off;\n{temp_paths}"
        f"    include {tmp}/api.conf;\n}}\n")
    return [nginx_binary(), "-p", str(tmp), "-e", f"{tmp}/error.log", "-c", str(tmp / "nginx.conf")]


def through(gateway: str, kind: str, tmp: Path, seconds: float) -> h2load.Result:
    """Forward-auth throughput of server `kind` behind `gateway` (nginx or traefik), 64 client connections."""
    from tests.e2e.conftest import DOCS, render, traefik_binary

    where = tmp / f"{gateway}-{kind}"
    where.mkdir()
    where.chmod(0o755)
    with _server(kind, where) as (_proc, fa_port):
        nginx_port, upstream_port, authenticator_port, port = free_port(), free_port(), free_port(), free_port()
        nginx_cmd = _nginx(where, fa_port, nginx_port, upstream_port, authenticator_port)
        with running(nginx_cmd, nginx_port, where / "nginx.log"):
            if gateway == "nginx":
                port = nginx_port
                context: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
            else:
                dynamic = where / "dynamic.yaml"
                dynamic.write_text(render(DOCS / "traefik.yaml", {"SCOPESVC_FORWARD_AUTH_PORT": fa_port,
                                                                   "UPSTREAM_PORT": upstream_port,
                                                                   "AUTHENTICATOR_PORT": authenticator_port}))
                context = running([traefik_binary(), f"--entryPoints.web.address=127.0.0.1:{port}",
                                   f"--providers.file.filename={dynamic}", "--global.checkNewVersion=false",
                                   "--global.sendAnonymousUsage=false", "--log.level=ERROR"], port,
                                  where / "traefik.log")
            with context:
                load = h2load.Load(f"http://127.0.0.1:{port}{GATEWAY_PATH}", headers=GATEWAY_HEADERS, status="2xx")
                for _ in range(20):  # Traefik listens before it has read its file provider
                    if h2load.run_h1("probe", load, connections=1, seconds=1, warm_up=0).correct:
                        break
                return h2load.run_h1(f"{gateway} {kind}", load, connections=CONNECTIONS, seconds=seconds)


def attack(tmp: Path, seconds: float) -> dict[str, object]:
    http_attack.raise_fd_limit()
    port, grpc_port = free_port(), free_port()
    cmd = [sys.executable, "-m", "scopesvc", "serve", "--port", str(grpc_port), "--metrics-port", "0",
           "--log-level", "warning", "--forward-auth-port", str(port)]
    with running(cmd, port, tmp / "attack.log") as proc:
        return http_attack.under_attack(proc.pid, port, f"127.0.0.1:{grpc_port}", seconds=seconds)


def section(seconds: float, workdir: Path, rounds: int) -> dict[str, Any]:
    """Run all three measurements; the results bench/sections/http.py reports."""
    workdir.chmod(0o755)  # NGINX's workers may run as another user
    names = {"aiohttp": "scopesvc (aiohttp)", "uvicorn": "uvicorn + httptools, minimal ASGI app",
             "old": "old ThreadingHTTPServer (baseline)"}
    servers = direct(names, workdir, seconds, rounds)
    gateways = {f"{gateway.capitalize()} -> {names[kind]}": through(gateway, kind, workdir, seconds)
                for gateway in ("nginx", "traefik") for kind in ("aiohttp", "old")}
    return {"servers": servers, "gateways": gateways, "attack": attack(workdir, max(20.0, seconds * 2))}


def main() -> None:
    """`python -m bench.forward_auth serve KIND --port P`: a compared server, for section()'s runs."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("command", choices=("serve",))
    parser.add_argument("kind", choices=("uvicorn", "old"))
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(_serve_other(args.kind, args.port))


if __name__ == "__main__":
    main()
