"""Ports that cannot be bound: `scopesvc serve` exits 2 with one line naming the listener and its port.

gRPC's default SO_REUSEPORT let a second server start on a port a running one held and take
half its connections; only the workers of one `--workers` server share their port now.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from .ops_helpers import ServeProcess, free_port


@pytest.fixture
def held_port() -> Iterator[int]:
    """A loopback port another program listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "scopesvc", "serve", "--metrics-port", "0", "--drain-delay", "0",
                           *args], capture_output=True, text=True, timeout=60, check=False)


def assert_refused(result: subprocess.CompletedProcess[str], listener: str, port: int) -> None:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert f":{port} ({listener})" in lines[0] and "in use" in lines[0], lines[0]
    assert "Traceback" not in result.stderr + result.stdout and "Event loop is closed" not in result.stderr


def test_grpc_port_held_by_another_program(held_port: int) -> None:
    assert_refused(serve("--port", str(held_port)), "gRPC", held_port)


def test_grpc_port_held_by_a_running_scopesvc(tmp_path) -> None:
    first = ServeProcess(tmp_path)
    try:
        assert_refused(serve("--port", str(first.port)), "gRPC", first.port)
        assert first.proc.poll() is None  # the first one keeps serving, alone
    finally:
        assert first.close() == 0


def test_metrics_port_held(held_port: int) -> None:
    assert_refused(serve("--port", "0", "--metrics-port", str(held_port)), "metrics", held_port)


def test_forward_auth_port_held(held_port: int) -> None:
    assert_refused(serve("--port", "0", "--forward-auth-port", str(held_port)), "forward-auth", held_port)


def test_forward_auth_port_held_by_a_running_scopesvc(tmp_path) -> None:
    port = free_port()
    first = ServeProcess(tmp_path, "--forward-auth-port", str(port))
    try:
        assert_refused(serve("--port", "0", "--forward-auth-port", str(port)), "forward-auth", port)
    finally:
        assert first.close() == 0


def test_workers_refuse_a_port_in_use(held_port: int) -> None:
    assert_refused(serve("--port", str(held_port), "--workers", "2"), "gRPC", held_port)


def test_an_address_that_does_not_resolve_is_one_line() -> None:
    result = serve("--port", "0", "--forward-auth-port", str(free_port()), "--forward-auth-host", "no-such-host.invalid")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and "(forward-auth)" in lines[0], result.stderr
