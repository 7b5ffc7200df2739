"""Life cycle and transport: SIGTERM drain, readiness, Unix socket, TLS and mTLS, limits, JSON logs."""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc

from scopesvc.v1 import scopesvc_pb2 as pb
from scopesvc.v1 import scopesvc_pb2_grpc as pb_grpc

from .helpers import token
from .ops_helpers import CATALOG_A, CATALOG_B, ServeProcess, free_port, running, wait_for

USERS_ME = pb.CheckRequest(token=token("users:read"), method="GET", path="/users/me")
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def test_sigterm_reports_not_serving_then_drains_in_flight(tmp_path):
    server = ServeProcess(tmp_path, "--grace", "3", "--cache-size", "0")
    statuses: list[int] = []
    assert server.health() == SERVING
    watch = health_pb2_grpc.HealthStub(server.channel).Watch(
        health_pb2.HealthCheckRequest(service="scopesvc.v1.ScopeService"), timeout=20)

    def follow() -> None:
        try:
            for update in watch:
                statuses.append(update.status)
        except grpc.RpcError:
            pass  # cancelled when the grace period ends

    follower = threading.Thread(target=follow)
    follower.start()
    wait_for(lambda: statuses == [SERVING])
    stub = pb_grpc.ScopeServiceStub(server.channel)
    batch = pb.CheckBatchRequest(checks=[pb.CheckRequest(token=token("users:read"), method="GET",
                                                         path=f"/scheduled_events/{i}") for i in range(1000)])
    calls = [stub.CheckBatch.future(batch, timeout=20) for _ in range(6)]
    time.sleep(0.1)
    stopped_at = time.monotonic()
    server.signal(signal.SIGTERM)
    try:
        results = [call.result() for call in calls]
        assert all(len(r.results) == 1000 for r in results)
        wait_for(lambda: NOT_SERVING in statuses)
        assert server.proc.wait(timeout=15) == 0
        assert time.monotonic() - stopped_at < 10
    finally:
        watch.cancel()
        follower.join(timeout=5)
        server.close()
    assert statuses[:2] == [SERVING, NOT_SERVING]
    log = server.log()
    assert "stopping" in log and "stopped" in log
    # gRPC itself may log the Watch stream's cancellation at the end of the grace period.
    assert not [line for line in log.splitlines() if " ERROR scopesvc" in line]


def test_unix_domain_socket_only(tmp_path):
    sock = tmp_path / "scopesvc.sock"
    with running(host="", uds=str(sock)) as (server, _):
        assert server.server.port == 0
        with grpc.insecure_channel(f"unix:{sock}") as channel:
            assert pb_grpc.ScopeServiceStub(channel).Check(USERS_ME, timeout=5).allowed
            health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert health.status == SERVING


def test_tcp_and_unix_socket_together(tmp_path):
    sock = tmp_path / "s.sock"
    with running(uds=str(sock)) as (_, stub), grpc.insecure_channel(f"unix:{sock}") as channel:
        assert stub.Check(USERS_ME).allowed
        assert pb_grpc.ScopeServiceStub(channel).Check(USERS_ME, timeout=5).allowed


# -- TLS ----------------------------------------------------------------------------------------


def _cert(subject: str, key, issuer_key=None, issuer=None, ca=False, server=False):  # type: ignore[no-untyped-def]
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer.subject if issuer else name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


def _make_pki(root):  # type: ignore[no-untyped-def]
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files in `root`."""
    pem = serialization.Encoding.PEM
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("scopesvc test CA", ca_key, ca=True)
    files = {"ca": ca.public_bytes(pem)}
    for role in ("server", "client"):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _cert(f"scopesvc test {role}", key, ca_key, ca, server=role == "server")
        files[f"{role}.crt"] = cert.public_bytes(pem)
        files[f"{role}.key"] = key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption())
    paths = {}
    for name, data in files.items():
        (root / name).write_bytes(data)
        paths[name] = str(root / name)
    return paths, files


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return _make_pki(tmp_path_factory.mktemp("pki"))


def _check(address: str, credentials: grpc.ChannelCredentials | None) -> pb.CheckResponse:
    channel = grpc.secure_channel(address, credentials) if credentials else grpc.insecure_channel(address)
    with channel:
        return pb_grpc.ScopeServiceStub(channel).Check(USERS_ME, timeout=5)


def test_tls(pki):
    paths, files = pki
    with running(tls_cert=paths["server.crt"], tls_key=paths["server.key"]) as (server, _):
        assert _check(server.address, grpc.ssl_channel_credentials(files["ca"])).allowed
        with pytest.raises(grpc.RpcError) as info:
            _check(server.address, None)  # plaintext to a TLS port
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE


def test_mutual_tls(pki):
    paths, files = pki
    with running(tls_cert=paths["server.crt"], tls_key=paths["server.key"], tls_client_ca=paths["ca"]) as (server, _):
        with_client_cert = grpc.ssl_channel_credentials(files["ca"], files["client.key"], files["client.crt"])
        assert _check(server.address, with_client_cert).allowed
        with pytest.raises(grpc.RpcError) as info:
            _check(server.address, grpc.ssl_channel_credentials(files["ca"]))
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE


def _check_code(address: str, credentials: grpc.ChannelCredentials) -> grpc.StatusCode:
    try:
        _check(address, credentials)
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def test_rotated_certificates_are_picked_up(tmp_path):
    (tmp_path / "live").mkdir()
    first, first_files = _make_pki(tmp_path / "live")
    with running(tls_cert=first["server.crt"], tls_key=first["server.key"], reload_interval=0.05) as (server, _):
        assert _check(server.address, grpc.ssl_channel_credentials(first_files["ca"])).allowed
        (tmp_path / "next").mkdir()
        _second, second_files = _make_pki(tmp_path / "next")
        for name in ("server.crt", "server.key"):  # rotate in place, as a mounted secret is updated
            (tmp_path / "live" / name).write_bytes(second_files[name])
        new_ca = grpc.ssl_channel_credentials(second_files["ca"])
        wait_for(lambda: _check_code(server.address, new_ca) == grpc.StatusCode.OK)
        old_ca = grpc.ssl_channel_credentials(first_files["ca"])
        assert _check_code(server.address, old_ca) == grpc.StatusCode.UNAVAILABLE


# -- limits -------------------------------------------------------------------------------------


def test_max_message_bytes():
    with running(max_message_bytes=4096) as (_, stub):
        assert stub.Check(USERS_ME).allowed
        big = pb.CheckRequest(token=token(*[f"scope:{i}" for i in range(600)]), method="GET", path="/users/me")
        with pytest.raises(grpc.RpcError) as info:
            stub.Check(big)
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_max_concurrent_rpcs():
    """Concurrent slow batches against a limit of one: the excess is refused, nothing else fails."""
    batch = pb.CheckBatchRequest(checks=[pb.CheckRequest(token=token("users:read"), method="GET",
                                                         path=f"/scheduled_events/{i}") for i in range(1000)])
    codes: set[grpc.StatusCode] = set()
    health: list[int] = []
    with running(max_concurrent_rpcs=1, cache_size=0) as (server, stub), futures.ThreadPoolExecutor(9) as pool:
        with grpc.insecure_channel(server.address) as channel:
            health_stub = health_pb2_grpc.HealthStub(channel)
            watch = health_stub.Watch(health_pb2.HealthCheckRequest())  # an open stream is not a call held
            assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
            for _round in range(5):
                probe = pool.submit(lambda: [health_stub.Check(health_pb2.HealthCheckRequest(), timeout=30).status
                                             for _ in range(10)])
                codes.update(pool.map(lambda _: _code(stub, batch), range(16)))
                health += probe.result()  # health checks are never refused, however busy
                if {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED} <= codes:
                    break  # on a loaded machine one round may see only refusals: the next admits one
            watch.cancel()
    assert codes == {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}
    assert health and set(health) == {health_pb2.HealthCheckResponse.SERVING}


def _code(stub: pb_grpc.ScopeServiceStub, batch: pb.CheckBatchRequest) -> grpc.StatusCode:
    try:
        stub.CheckBatch(batch, timeout=30)
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


# -- structured logs ----------------------------------------------------------------------------


def test_json_logs(tmp_path):
    server = ServeProcess(tmp_path, "--log-format", "json")
    assert server.close() == 0
    records = [json.loads(line) for line in server.log().splitlines() if line.strip()]
    messages = [r["message"] for r in records]
    assert any(m.startswith("serving catalog calendly-api-v2") for m in messages), messages
    assert all({"ts", "level", "logger", "message"} <= set(r) for r in records)


def _serve_until_the_port_answers(tmp_path, catalog, port: int):  # type: ignore[no-untyped-def]
    out = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "scopesvc", "serve", "--port", str(port), "--metrics-port", "0",
                             "--catalog", str(catalog), "--reload-interval", "0", "--grace", "0.5"],
                            stdout=out, stderr=subprocess.STDOUT)
    out.close()
    deadline = time.monotonic() + 30
    while True:  # the first moment the port accepts a connection
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError((tmp_path / "serve.log").read_text())
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return proc
        time.sleep(0.001)


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM])
def test_a_signal_sent_as_soon_as_the_port_answers_is_handled(tmp_path, sig):
    """The handlers are in place before the server listens: a supervisor's SIGTERM or an operator's
    SIGHUP sent the moment the port answers never meets Python's default action, which kills it."""
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(CATALOG_A)
    proc = _serve_until_the_port_answers(tmp_path, catalog, free_port())
    try:
        if sig == signal.SIGHUP:
            catalog.write_text(CATALOG_B)
        proc.send_signal(sig)
        if sig == signal.SIGHUP:
            wait_for(lambda: "catalog reloaded (SIGHUP)" in (tmp_path / "serve.log").read_text())
            assert proc.poll() is None
            proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, (tmp_path / "serve.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()



# Runs the `scopesvc` command's entry point as installed, noting SIGHUP's disposition at the moment
# the command line's modules start to import (they take most of a second).
_ENTRY_PROBE = """
import signal, sys
from importlib.metadata import entry_points
seen = []
class Probe:
    def find_spec(self, name, path=None, target=None):
        if name == "scopesvc.cli" and not seen:
            seen.append(signal.getsignal(signal.SIGHUP).name)
sys.meta_path.insert(0, Probe())
sys.argv = ["scopesvc", *sys.argv[1:]]
try:
    entry_points(group="console_scripts", name="scopesvc")[0].load()()
except SystemExit:
    pass
print("SIGHUP:", seen)
"""


@pytest.mark.parametrize(("command", "disposition"), [("serve", "SIG_IGN"), ("decide", "SIG_DFL")])
def test_serve_ignores_sighup_before_it_imports_the_command_line(command, disposition):
    """`serve` (whose SIGHUP is a reload) ignores it before any of the command line loads; other
    commands keep the default and end with their terminal."""
    done = subprocess.run([sys.executable, "-c", _ENTRY_PROBE, command, "--help"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.stdout.splitlines()[-1] == f"SIGHUP: ['{disposition}']", done.stdout + done.stderr


def _sighup_ignored(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status").read_text()
    ignored = int(next(line for line in status.splitlines() if line.startswith("SigIgn:")).split()[1], 16)
    return bool(ignored & 1 << (signal.SIGHUP - 1))


def test_sighups_while_serve_imports_and_starts_kill_nothing(tmp_path):
    """SIGHUPs from the moment `scopesvc serve` ignores them (its first line) until its port answers:
    without that line, the first one ends the process while it imports."""
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "scopesvc", "serve", "--port", str(port), "--metrics-port", "0",
                                 "--grace", "0.5"], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not _sighup_ignored(proc.pid):
            assert proc.poll() is None and time.monotonic() < deadline, f"SIGHUP never ignored:\n{log.read_text()}"
            time.sleep(0.001)
        sent = 0
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            proc.send_signal(signal.SIGHUP)
            sent += 1
            time.sleep(0.01)
            assert proc.poll() is None, f"killed by SIGHUP number {sent} ({proc.returncode}):\n{log.read_text()}"
            assert time.monotonic() < deadline, log.read_text()
        assert sent >= 3, "the port answered before the SIGHUPs could test the start"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
