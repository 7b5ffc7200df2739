"""OpenTelemetry tracing: spans from a real `scopesvc serve --tracing` reach a real OTLP/gRPC receiver.

Each test starts the server as a process, configured only by `--tracing` and the standard
OTEL_* variables, and looks at what the receiver got: one SERVER span per call, the child of the
caller's `traceparent`, describing the decision and nothing secret; the decision log line names
the trace. Off (the default), the SDK is never imported.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from scopesvc.v1 import scopesvc_pb2 as pb
from scopesvc.v1 import scopesvc_pb2_grpc as pb_grpc

from .helpers import decision_records, token
from .ops_helpers import CATALOG_A, CATALOG_B, ServeProcess, free_port
from .otlp_receiver import ReceivedSpan, Receiver

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_ID = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
SECRET_SCOPES = ("scheduled_events:read", "users:read")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.stop()


def otel_env(receiver: Receiver, **extra: str) -> dict[str, str]:
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "50",
            "OTEL_SERVICE_NAME": "scopesvc-test", **extra}


@pytest.fixture
def serve(tmp_path: Path, receiver: Receiver) -> Iterator[ServeProcess]:
    fa_port = free_port()
    process = ServeProcess(tmp_path, "--tracing", "--forward-auth-port", str(fa_port), "--authzen", "--decision-log",
                           str(tmp_path / "decisions.log"), env=otel_env(receiver))
    process.forward_auth_port = fa_port  # type: ignore[attr-defined]
    yield process
    assert process.close() == 0, process.log()


def in_trace(span: ReceivedSpan) -> bool:
    return span.trace_id == TRACE_ID


def assert_nothing_secret(span: ReceivedSpan) -> None:
    text = json.dumps([span.attributes, span.events])
    for scope in SECRET_SCOPES:
        assert scope not in text
    assert "user-1" not in text


def test_check_is_a_child_span_describing_the_decision(serve: ServeProcess, receiver: Receiver,
                                                       tmp_path: Path) -> None:
    stub = pb_grpc.ScopeServiceStub(serve.channel)
    request = pb.CheckRequest(token=token(*SECRET_SCOPES), method="GET", path="/scheduled_events/AB12")
    metadata = (("traceparent", TRACEPARENT),)
    assert stub.Check(request, metadata=metadata, timeout=5).allowed
    assert stub.Check(request, metadata=metadata, timeout=5).allowed  # the second from the cache
    spans = receiver.wait_for(lambda s: in_trace(s) and s.name == "scopesvc.v1.ScopeService/Check", count=2)
    by_cache = {span.events[0][0]: span for span in spans}
    first, second = by_cache["scopesvc.cache.miss"], by_cache["scopesvc.cache.hit"]
    assert first.service == "scopesvc-test"
    assert first.parent_span_id == PARENT_ID and first.kind == 2  # SPAN_KIND_SERVER
    assert first.attributes | {"scopesvc.catalog.revision": "?"} == {
        "rpc.system": "grpc", "rpc.service": "scopesvc.v1.ScopeService", "rpc.method": "Check",
        "rpc.grpc.status_code": 0, "scopesvc.front_end": "Check", "scopesvc.decision": "allow",
        "scopesvc.reason": "ALLOWED", "scopesvc.endpoint": "GET /scheduled_events/{uuid}",
        "scopesvc.catalog.revision": "?", "scopesvc.dry_run": False, "scopesvc.missing_scope_count": 0,
    }
    assert first.attributes["scopesvc.catalog.revision"]
    assert first.events == (("scopesvc.cache.miss", {}),) and second.events == (("scopesvc.cache.hit", {}),)
    for span in spans:
        assert_nothing_secret(span)
    # The decision log line names the trace.
    records = decision_records(tmp_path / "decisions.log")
    assert records and all(record["trace_id"] == TRACE_ID for record in records)


def test_a_denial_and_a_bad_request(serve: ServeProcess, receiver: Receiver) -> None:
    stub = pb_grpc.ScopeServiceStub(serve.channel)
    metadata = (("traceparent", TRACEPARENT),)
    denied = stub.Check(pb.CheckRequest(token=token("users:read"), method="POST", path="/scheduling_links"),
                        metadata=metadata, timeout=5)
    assert not denied.allowed
    with pytest.raises(grpc.RpcError) as error:
        stub.Check(pb.CheckRequest(token=token("users:read"), method="", path="/users/me"), metadata=metadata,
                   timeout=5)
    assert error.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    spans = receiver.wait_for(lambda s: in_trace(s) and s.name.endswith("/Check"), count=2)
    by_code = {span.attributes["rpc.grpc.status_code"]: span for span in spans}
    assert by_code[0].attributes["scopesvc.decision"] == "deny"
    assert by_code[0].attributes["scopesvc.reason"] == "INSUFFICIENT_SCOPE"
    assert by_code[0].attributes["scopesvc.missing_scope_count"] == 1
    assert "scopesvc.decision" not in by_code[3].attributes  # no decision was made
    assert by_code[3].status_code == 0  # the caller's mistake is no error of the server's


def test_batch_has_a_child_span_per_decision_and_other_rpcs_a_span(serve: ServeProcess, receiver: Receiver) -> None:
    stub = pb_grpc.ScopeServiceStub(serve.channel)
    metadata = (("traceparent", TRACEPARENT),)
    checks = [pb.CheckRequest(token=token("users:read"), method="GET", path="/users/me"),
              pb.CheckRequest(token=token("users:read"), method="DELETE", path="/users/me")]
    stub.CheckBatch(pb.CheckBatchRequest(checks=checks), metadata=metadata, timeout=5)
    stub.GetCatalog(pb.GetCatalogRequest(), metadata=metadata, timeout=5)
    (batch,) = receiver.wait_for(lambda s: in_trace(s) and s.name.endswith("/CheckBatch"))
    children = receiver.wait_for(lambda s: s.parent_span_id == batch.span_id, count=2)
    assert {c.name for c in children} == {"scopesvc.decision"}
    assert sorted(c.attributes["scopesvc.decision"] for c in children) == ["allow", "deny"]
    (catalog,) = receiver.wait_for(lambda s: in_trace(s) and s.name.endswith("/GetCatalog"))
    assert catalog.parent_span_id == PARENT_ID and catalog.attributes["rpc.method"] == "GetCatalog"


def test_forward_auth_continues_the_http_trace(serve: ServeProcess, receiver: Receiver) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", serve.forward_auth_port, timeout=10)  # type: ignore[attr-defined]
    connection.request("GET", "/", headers={"X-Original-Method": "GET", "X-Original-URI": "/users/me",
                                            "X-Scopesvc-Scopes": "users:read", "traceparent": TRACEPARENT})
    assert connection.getresponse().status == 200
    connection.close()
    (span,) = receiver.wait_for(lambda s: in_trace(s) and s.name == "forward_auth")
    assert span.parent_span_id == PARENT_ID and span.kind == 2
    assert span.attributes["scopesvc.decision"] == "allow"
    assert span.attributes["scopesvc.endpoint"] == "GET /users/me"
    assert span.attributes["http.response.status_code"] == 200
    assert_nothing_secret(span)


def test_sampler_from_the_environment_follows_the_parent(tmp_path: Path, receiver: Receiver) -> None:
    """parentbased_traceidratio at 0: a new trace is not sampled, a sampled caller's trace is."""
    env = otel_env(receiver, OTEL_TRACES_SAMPLER="parentbased_traceidratio", OTEL_TRACES_SAMPLER_ARG="0")
    server = ServeProcess(tmp_path, "--tracing", "--decision-log", str(tmp_path / "d.log"), env=env)
    try:
        stub = pb_grpc.ScopeServiceStub(server.channel)
        request = pb.CheckRequest(token=token("users:read"), method="GET", path="/users/me")
        for _ in range(20):
            stub.Check(request, timeout=5)
        stub.Check(request, metadata=(("traceparent", TRACEPARENT),), timeout=5)
        receiver.wait_for(in_trace)
    finally:
        assert server.close() == 0
    assert len(receiver.spans) == 1
    # Not sampled, the trace id still goes into the decision log: a caller's logs can find it.
    records = decision_records(tmp_path / "d.log")
    assert len({record["trace_id"] for record in records}) == 21


def test_catalog_reload_is_a_span_with_its_outcome(tmp_path: Path, receiver: Receiver) -> None:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(CATALOG_A)
    server = ServeProcess(tmp_path, "--tracing", "--catalog", str(catalog), "--reload-interval", "0",
                          env=otel_env(receiver))
    try:
        catalog.write_text(CATALOG_B)
        server.signal(signal.SIGHUP)
        (span,) = receiver.wait_for(lambda s: s.name == "scopesvc.catalog.reload")
    finally:
        assert server.close() == 0
    assert span.attributes == {"scopesvc.reload.cause": "SIGHUP"}
    assert span.events == (("scopesvc.catalog.reloaded", {"scopesvc.catalog.revision": span.events[0][1][
        "scopesvc.catalog.revision"], "scopesvc.catalog.previous_revision": span.events[0][1][
        "scopesvc.catalog.previous_revision"]}),)
    assert span.events[0][1]["scopesvc.catalog.revision"].startswith("B")
    assert span.events[0][1]["scopesvc.catalog.previous_revision"].startswith("A")


def test_an_unknown_exporter_protocol_is_a_configuration_error(tmp_path: Path) -> None:
    """A protocol the SDK has no exporter for is a configuration error at start (exit 2), not silence."""
    result = subprocess.run(
        [sys.executable, "-m", "scopesvc", "serve", "--port", "0", "--metrics-port", "0", "--tracing"],
        env={**os.environ, "OTEL_EXPORTER_OTLP_PROTOCOL": "carrier-pigeon"}, capture_output=True, text=True, check=False,
        timeout=30)
    assert result.returncode == 2, result.stderr
    assert "OTEL_EXPORTER_OTLP_PROTOCOL" in result.stderr and "Traceback" not in result.stderr


def test_off_by_default_the_sdk_is_never_imported(tmp_path: Path, receiver: Receiver) -> None:
    """Without --tracing, a server that answers Check, ext_authz and forward-auth loads no OpenTelemetry."""
    probe = f"""
import asyncio, sys, grpc
from scopesvc.policy import Engine
from scopesvc.catalog import files
from scopesvc.server.app import Server, ServerConfig
from scopesvc.v1 import scopesvc_pb2 as pb, scopesvc_pb2_grpc as pb_grpc

async def main():
    server = Server(ServerConfig(host="127.0.0.1", port=0, metrics_port=0), Engine(files.load_default()))
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{{server.port}}") as channel:
        request = pb.CheckRequest(token=pb.Token(scopes=["users:read"]), method="GET", path="/users/me")
        await pb_grpc.ScopeServiceStub(channel).Check(request, metadata=(("traceparent", "{TRACEPARENT}"),))
    await server.stop()
    print(sorted(m for m in sys.modules if m.startswith("opentelemetry")))

asyncio.run(main())
"""
    result = subprocess.run([sys.executable, "-c", probe], env={**os.environ, **otel_env(receiver)},
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    assert receiver.spans == []


def test_ext_authz_without_trace_metadata_continues_the_request_headers(serve: ServeProcess,
                                                                       receiver: Receiver) -> None:
    """A gateway that traces requests but not its ext_authz calls: the CheckRequest's own traceparent."""
    from envoy.service.auth.v3 import external_auth_pb2 as authz
    from envoy.service.auth.v3 import external_auth_pb2_grpc as authz_grpc

    request = authz.CheckRequest()
    http = request.attributes.request.http
    http.method, http.path = "GET", "/users/me"
    http.headers["traceparent"] = TRACEPARENT
    authz_grpc.AuthorizationStub(serve.channel).Check(request, timeout=5)
    (span,) = receiver.wait_for(lambda s: in_trace(s) and s.name == "envoy.service.auth.v3.Authorization/Check")
    assert span.parent_span_id == PARENT_ID


def test_authzen_evaluations_continue_the_http_trace(serve: ServeProcess, receiver: Receiver) -> None:
    """One SERVER span for the request, a child span per evaluation; nothing of the subject in either."""
    body = json.dumps({
        "subject": {"type": "token", "id": "user-1", "properties": {"scopes": list(SECRET_SCOPES)}},
        "action": {"name": "GET"},
        "evaluations": [{"resource": {"type": "endpoint", "id": "/users/me"}},
                        {"resource": {"type": "endpoint", "id": "/scheduling_links"}}]})
    connection = http.client.HTTPConnection("127.0.0.1", serve.forward_auth_port, timeout=10)  # type: ignore[attr-defined]
    connection.request("POST", "/access/v1/evaluations", body=body,
                       headers={"content-type": "application/json", "traceparent": TRACEPARENT})
    assert connection.getresponse().status == 200
    connection.close()
    (span,) = receiver.wait_for(lambda s: in_trace(s) and s.name == "POST /access/v1/evaluations")
    assert span.parent_span_id == PARENT_ID and span.attributes["http.response.status_code"] == 200
    children = receiver.wait_for(lambda s: s.parent_span_id == span.span_id, count=2)
    assert sorted(c.attributes["scopesvc.decision"] for c in children) == ["allow", "deny"]
    assert {c.attributes["scopesvc.front_end"] for c in children} == {"authzen"}
    for traced in (span, *children):
        assert_nothing_secret(traced)


def test_token_verification_is_an_event_on_the_decision_span(tmp_path: Path, receiver: Receiver) -> None:
    from .token_helpers import AUDIENCE, KeyServer, SigningKey, claims

    key = SigningKey("k1")
    issuer = KeyServer(key)
    process = ServeProcess(tmp_path, "--tracing", "--jwt-issuer", issuer.issuer, "--jwt-audience", AUDIENCE,
                           env=otel_env(receiver))
    try:
        stub = pb_grpc.ScopeServiceStub(process.channel)
        bearer = key.sign(claims(issuer.issuer, scope="users:read"))
        request = pb.CheckRequest(bearer_token=bearer, method="GET", path="/users/me")
        metadata = (("traceparent", TRACEPARENT),)
        assert stub.Check(request, metadata=metadata, timeout=5).allowed
        assert stub.Check(request, metadata=metadata, timeout=5).allowed  # verified once: the second is cached
        spans = receiver.wait_for(lambda s: in_trace(s) and s.name == "scopesvc.v1.ScopeService/Check", count=2)
    finally:
        assert process.close() == 0, process.log()
        issuer.close()
    verifications = [attributes for span in spans for name, attributes in span.events
                     if name == "scopesvc.token.verification"]
    assert len(verifications) == 1
    assert verifications[0]["scopesvc.token.result"] == "valid"
    assert verifications[0]["scopesvc.token.issuer"] == issuer.issuer
    for span in spans:
        text = json.dumps([span.attributes, span.events])
        assert bearer not in text and "user-1" not in text and "users:read" not in text
