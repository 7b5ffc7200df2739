"""Starting and stopping the servers under test, each on a free loopback port."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port} after {timeout}s")


@contextlib.contextmanager
def running(cmd: list[str], port: int, log: Path, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen]:
    """Run `cmd` until the block ends; wait until `port` accepts connections."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        wait_for_port(port, proc)
        time.sleep(0.3)
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def free_ports(n: int) -> int:
    """The first of `n` consecutive free loopback ports."""
    for _ in range(100):
        base = free_port()
        if base + n > 65535:
            continue
        try:
            for port in range(base, base + n):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError(f"no {n} consecutive free ports")


def scopesvc_cmd(port: int, metrics_port: int, workers: int = 1, cache_size: int | None = None) -> list[str]:
    """`scopesvc serve` with its defaults, except the ports and, when given, the decision cache size."""
    cmd = [sys.executable, "-m", "scopesvc", "serve", "--port", str(port), "--metrics-port", str(metrics_port),
           "--log-level", "warning", "--workers", str(workers)]
    if cache_size is not None:
        cmd += ["--cache-size", str(cache_size)]
    return cmd


def raw_call(port: int, method: str, body: bytes) -> bytes:
    """One unary call with an already serialized request; returns the serialized response."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        return call(body, timeout=10)


def raw_calls(port: int, method: str, bodies: list[bytes]) -> list[bytes]:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        return [call(body, timeout=10) for body in bodies]


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) process `pid` has used so far: a server's own cost, which a
    busy machine does not blur as it blurs wall-clock throughput."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
