"""The server process: health, reflection, INVALID_ARGUMENT details, and graceful SIGTERM."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys

import grpc
import grpc.aio._server
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from scopesvc.ops.config import ServerConfig
from scopesvc.v1 import scopesvc_pb2 as pb
from scopesvc.v1 import scopesvc_pb2_grpc as pb_grpc

from .conftest import RunningServer
from .helpers import bad_request_field, token


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_health_reports_serving(channel):
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "scopesvc.v1.ScopeService"):
        assert health.Check(health_pb2.HealthCheckRequest(service=service)).status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_services(channel):
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    responses = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    names = {s.name for r in responses for s in r.list_services_response.service}
    assert {"scopesvc.v1.ScopeService", "grpc.health.v1.Health"} <= names


def test_no_method_is_registered(monkeypatch):
    """Every service is added as generic handlers only: grpc.aio waits again on one pending
    request per registered method for each call it accepts (see handlers.GenericOnly)."""
    registered: list[str] = []
    monkeypatch.setattr(grpc.aio._server.Server, "add_registered_method_handlers",
                        lambda self, service, handlers: registered.append(service))
    running = RunningServer(ServerConfig(host="127.0.0.1", port=0, grace=0.5, drain_delay=0))
    try:
        with grpc.insecure_channel(running.address) as channel:
            stub = reflection_pb2_grpc.ServerReflectionStub(channel)
            replies = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
            listed = {s.name for r in replies for s in r.list_services_response.service}
            answer = pb_grpc.ScopeServiceStub(channel).Check(
                pb.CheckRequest(token=token("event_types:read"), method="GET", path="/event_types"))
    finally:
        running.close()
    assert registered == []
    assert "scopesvc.v1.ScopeService" in listed and "grpc.reflection.v1alpha.ServerReflection" in listed
    assert answer.allowed


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.CheckRequest(method="GET", path="/users/me"), "token"),
        (pb.CheckRequest(token=token("users:read"), path="/users/me"), "method"),
        (pb.CheckRequest(token=token("users:read"), method="GET"), "path"),
        (pb.CheckRequest(token=token("users:read"), method="G" * 100, path="/x"), "method"),
        (pb.CheckRequest(token=pb.Token(scopes=["s"] * 1001), method="GET", path="/x"), "token.scopes"),
        (pb.CheckRequest(token=pb.Token(scopes=["s" * 2000]), method="GET", path="/x"), "token.scopes[0]"),
    ],
)
def test_check_bad_input_is_invalid_argument_with_field(stub, request_, field):
    with pytest.raises(grpc.RpcError) as info:
        stub.Check(request_)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_field(info.value) == field


def test_malformed_timestamp_is_invalid_argument(stub):
    bad = token("users:read")
    bad.issued_at.seconds = 10**15  # far beyond year 9999
    with pytest.raises(grpc.RpcError) as info:
        stub.Check(pb.CheckRequest(token=bad, method="GET", path="/users/me"))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_field(info.value) == "token.issued_at"


def test_batch_errors_name_the_item(stub):
    checks = [pb.CheckRequest(token=token(), method="GET", path="/users/me"), pb.CheckRequest(token=token(), method="GET")]
    with pytest.raises(grpc.RpcError) as info:
        stub.CheckBatch(pb.CheckBatchRequest(checks=checks))
    assert bad_request_field(info.value) == "checks[1].path"
    with pytest.raises(grpc.RpcError) as info:
        stub.CheckBatch(pb.CheckBatchRequest(checks=checks[:1] * 1001))
    assert bad_request_field(info.value) == "checks"


def test_serve_process_sigterm_graceful(tmp_path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "scopesvc", "serve", "--port", str(port), "--grace", "5"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
            stub = pb_grpc.ScopeServiceStub(channel)
            assert stub.Check(pb.CheckRequest(token=token("users:read"), method="GET", path="/users/me")).allowed
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    output = proc.stdout.read() if proc.stdout else ""
    assert "stopping" in output and "Traceback" not in output


def test_serve_bad_catalog_exits_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("format: nope\n")
    result = subprocess.run([sys.executable, "-m", "scopesvc", "serve", "--port", "0", "--catalog", str(bad)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "invalid catalog" in result.stderr
