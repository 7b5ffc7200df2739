"""`scopesvc serve --workers N`: processes sharing the port, each with health, metrics and reload."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from importlib import resources
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from scopesvc.catalog import files as catalog_files
from scopesvc.v1 import scopesvc_pb2 as pb
from scopesvc.v1 import scopesvc_pb2_grpc as pb_grpc

pytestmark = pytest.mark.slow


def _free_ports(n: int) -> list[int]:
    """`n` consecutive free loopback ports (the metrics ports are metrics_port + i)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + n > 65535:
            continue
        try:
            socks = []
            for port in range(base, base + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        return list(range(base, base + n))
    raise RuntimeError("no free port range")


def _check(port: int) -> pb.CheckResponse:
    """One Check on a new connection (so the kernel picks a worker for it)."""
    with grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
        request = pb.CheckRequest(token=pb.Token(scopes=["users:read"]), method="GET", path="/users/me")
        return pb_grpc.ScopeServiceStub(channel).Check(request, timeout=5)


def _decisions(metrics_port: int) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    return sum(float(m) for m in re.findall(r'^scopesvc_decisions_total\{[^}]*rpc="Check"[^}]*\} (\S+)$', text, re.MULTILINE))


def _wait_serving(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        try:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
        except grpc.RpcError:
            pass
        time.sleep(0.2)
    raise AssertionError("workers never reported SERVING")


def test_workers_share_the_port_and_each_serve_health_metrics_and_reload(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.yaml"
    text = resources.files("scopesvc.catalog.builtin").joinpath(catalog_files.DEFAULT_CATALOG).read_text()
    catalog.write_text(text)
    port, metrics = _free_ports(1)[0], _free_ports(2)[0]
    proc = subprocess.Popen(
        [sys.executable, "-m", "scopesvc", "serve", "--workers", "2", "--port", str(port), "--metrics-port",
         str(metrics), "--catalog", str(catalog), "--reload-interval", "0", "--cache-size", "0", "--grace", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_serving(port, proc)
        time.sleep(1.0)  # both workers up: each has its own metrics listener
        before = _decisions(metrics) + _decisions(metrics + 1)
        first = [_check(port) for _ in range(24)]
        assert all(r.allowed for r in first)
        per_worker = [_decisions(metrics), _decisions(metrics + 1)]
        assert sum(per_worker) - before == 24
        assert all(n > 0 for n in per_worker), f"one worker answered everything: {per_worker}"

        old_revision = first[0].catalog_revision
        catalog.write_text(text.replace('revision: "2026-11-19"', 'revision: "2026-11-20"'))
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            revisions = {_check(port).catalog_revision for _ in range(12)}
            if old_revision not in revisions:
                break
            time.sleep(0.3)
        assert old_revision not in revisions and len(revisions) == 1, revisions
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    with pytest.raises(grpc.RpcError):
        _check(port)


class _Supervisor:
    """`scopesvc serve --workers 2` in its own session, its output read as it comes."""

    def __init__(self) -> None:
        self.port = _free_ports(1)[0]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "scopesvc", "serve", "--workers", "2", "--port", str(self.port),
             "--metrics-port", "0", "--reload-interval", "0", "--grace", "1"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(iter(self.proc.stdout.readline, "")),  # type: ignore[union-attr]
                                       daemon=True)
        self.reader.start()

    def output(self) -> str:
        return "".join(self.lines)

    def wait_for_log(self, text: str, count: int) -> None:
        """Until `text` was logged `count` times; fails at once, with the output, if the supervisor exits."""
        deadline = time.monotonic() + 30
        while self.output().count(text) < count:
            assert self.proc.poll() is None and time.monotonic() < deadline, self.output()
            time.sleep(0.01)

    def stop(self) -> int:
        """SIGTERM (if still running), then its exit code; kills whatever of its session is left."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        finally:  # a worker left behind by a dead supervisor would keep the pipe open
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.reader.join(timeout=10)
        return self.proc.returncode


def test_a_sighup_while_the_workers_start_reloads_nothing_and_kills_none() -> None:
    """A SIGHUP as soon as the supervisor says it started its workers (it forwards SIGHUP to them at once)
    kills neither the supervisor nor a worker still importing: both ignore it until they can act on it."""
    supervisor = _Supervisor()
    try:
        supervisor.wait_for_log("started 2 workers", 1)  # spawned; the supervisor installs its forwarding right after
        for _ in range(5):  # while the workers import and load the catalog
            supervisor.proc.send_signal(signal.SIGHUP)
            time.sleep(0.1)
        supervisor.wait_for_log("serving catalog", 2)  # both workers alive and serving
        assert _check(supervisor.port).allowed
    finally:
        code = supervisor.stop()
    assert code == 0, supervisor.output()


def test_a_stop_while_the_workers_start_is_a_clean_stop() -> None:
    """SIGTERM just after the workers were spawned: the forwarded SIGTERM ends a worker still importing
    by its default action (it has nothing to drain yet), which is the stop that was asked for, so the
    supervisor exits 0, not 1 as for a worker that died on its own."""
    supervisor = _Supervisor()
    try:
        supervisor.wait_for_log("started 2 workers", 1)
        time.sleep(0.05)  # its handlers are in place right after that line; the workers take far longer to import
        supervisor.proc.send_signal(signal.SIGTERM)
        code = supervisor.proc.wait(timeout=30)
    finally:
        supervisor.stop()
    assert "serving catalog" not in supervisor.output()  # the stop came while they started
    assert code == 0, supervisor.output()


def test_workers_need_a_fixed_port() -> None:
    result = subprocess.run([sys.executable, "-m", "scopesvc", "serve", "--workers", "2", "--port", "0"],
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2
    assert "workers" in result.stderr and "--port" in result.stderr


def test_workers_write_a_decision_log_file_each(tmp_path: Path) -> None:
    log = tmp_path / "decisions.jsonl"
    port, metrics = _free_ports(1)[0], _free_ports(2)[0]
    proc = subprocess.Popen(
        [sys.executable, "-m", "scopesvc", "serve", "--workers", "2", "--port", str(port), "--metrics-port",
         str(metrics), "--decision-log", str(log), "--cache-size", "0", "--grace", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_serving(port, proc)
        time.sleep(1.0)
        for _ in range(24):
            assert _check(port).allowed
        per_worker = [_decisions(metrics), _decisions(metrics + 1)]
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    assert not log.exists()  # no file that several processes write and rotate
    lines = [len((tmp_path / f"decisions.jsonl.w{i}").read_text().splitlines()) for i in range(2)]
    # Each worker's file holds its own decisions (the health checks are not decisions).
    assert lines == [int(n) for n in per_worker] and sum(lines) == 24, (lines, per_worker)


def test_a_worker_resolves_exactly_the_supervisor_configuration() -> None:
    """Every option, lists of issuers included, survives the trip through the worker's environment."""
    import argparse
    import dataclasses

    from scopesvc.ops.config import ServerConfig, resolve
    from scopesvc.server.workers import worker_environment

    issuers = ({"issuer": "https://a.example", "audience": "api"}, {"issuer": "https://b.example"})
    config = dataclasses.replace(ServerConfig(), port=50051, workers=2, jwt_issuers=issuers, dry_run=True)
    worker = resolve(argparse.Namespace(), worker_environment(config, 0))
    assert worker == dataclasses.replace(config, workers=1, reuse_port=True)
