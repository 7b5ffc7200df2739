"""Helpers for the operations tests: small catalogs, a `scopesvc serve` process, metric scrapes."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from scopesvc.server.app import ServerConfig
from scopesvc.v1 import scopesvc_pb2 as pb
from scopesvc.v1 import scopesvc_pb2_grpc as pb_grpc

from .conftest import RunningServer
from .helpers import token

# Two catalogs that answer visibly differently: GET /things/{id} needs a.read in A, b.read in B.
CATALOG = """\
format: scopesvc.catalog/v1
name: ops-test
revision: "{revision}"
scopes:
  - {{name: a.read}}
  - {{name: b.read}}
endpoints:
  - {{method: GET, path: "/things/{{id}}", scopes: [{scope}]}}
  - {{method: GET, path: "/other", scopes: [a.read, b.read]}}
"""
CATALOG_A = CATALOG.format(revision="A", scope="a.read")
CATALOG_B = CATALOG.format(revision="B", scope="b.read")
BAD_CATALOG = "format: scopesvc.catalog/v1\nname: broken\nscopes: []\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def check_a(path: str = "/things/42") -> pb.CheckRequest:
    """A token with a.read asking for a thing: allowed by catalog A, denied by catalog B."""
    return pb.CheckRequest(token=token("a.read"), method="GET", path=path)


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


def sample(text: str, name: str, /, **labels: str) -> float:
    """The value of the sample `name` with (at least) `labels`; 0 when there is none."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


def promtool() -> str | None:
    """promtool's path; in CI a missing promtool fails the test instead of skipping it."""
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("promtool not installed (scripts/install-test-tools installs it)")
        pytest.skip("promtool not installed")
    return found


class ServeProcess:
    """`scopesvc serve` in a subprocess on loopback ports, its output in a file."""

    def __init__(self, tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.metrics_port = free_port()
        self.output = tmp_path / f"serve-{self.port}.log"
        self._out = self.output.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "scopesvc", "serve", "--port", str(self.port),
             "--metrics-port", str(self.metrics_port), *args],
            stdout=self._out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
        )
        self.address = f"127.0.0.1:{self.port}"
        self.channel = grpc.insecure_channel(self.address)
        try:
            grpc.channel_ready_future(self.channel).result(timeout=30)
        except grpc.FutureTimeoutError:
            self.close()
            raise AssertionError(f"server did not start:\n{self.log()}") from None

    def health(self) -> int:
        stub = health_pb2_grpc.HealthStub(self.channel)
        return stub.Check(health_pb2.HealthCheckRequest(service="scopesvc.v1.ScopeService"), timeout=5).status

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def log(self) -> str:
        if not self._out.closed:
            self._out.flush()
        return self.output.read_text()

    def close(self) -> int:
        self.channel.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()
        return self.proc.returncode


@contextlib.contextmanager
def running(**options: object) -> Iterator[tuple[RunningServer, pb_grpc.ScopeServiceStub]]:
    """An in-process server on a loopback port with `options` (ServerConfig fields), and a stub."""
    config = ServerConfig(**{"host": "127.0.0.1", "port": 0, "grace": 1.0, **options})  # type: ignore[arg-type]
    server = RunningServer(config)
    try:
        with grpc.insecure_channel(server.address) as channel:
            yield server, pb_grpc.ScopeServiceStub(channel)
    finally:
        server.close()
