"""Envoy's trace and scopesvc's are one: real Envoy with its OpenTelemetry tracer asks scopesvc over ext_authz.

Both export to the same real OTLP/gRPC receiver. The scopesvc span of the ext_authz call must
carry the client's trace id and be the child of a span Envoy exported.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..otlp_receiver import Receiver
from .conftest import Keys, Upstream, send, start_envoy, start_scopesvc

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def with_tracing(receiver_port: int) -> Any:
    """An edit of docs/gateways/envoy.yaml: Envoy's OpenTelemetry tracer, exporting to the receiver."""

    def edit(config: dict[str, Any]) -> None:
        manager = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        manager["tracing"] = {"provider": {"name": "envoy.tracers.opentelemetry", "typed_config": {
            "@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
            "grpc_service": {"envoy_grpc": {"cluster_name": "otlp"}, "timeout": "1s"},
            "service_name": "envoy"}}}
        config["static_resources"]["clusters"].append({
            "name": "otlp", "type": "STATIC", "connect_timeout": "0.25s",
            "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}}}},
            "load_assignment": {"cluster_name": "otlp", "endpoints": [{"lb_endpoints": [{"endpoint": {
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": receiver_port}}}}]}]}})
        # Export every span at once rather than every 5 s in batches of 5.
        config["layered_runtime"] = {"layers": [{"name": "static", "static_layer": {
            "tracing.opentelemetry.flush_interval_ms": 100, "tracing.opentelemetry.min_flush_spans": 1}}]}

    return edit


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.stop()


def test_envoy_and_scopesvc_spans_share_one_trace(tmp_path: Path, receiver: Receiver, upstream: Upstream,
                                                  keys: Keys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    scopesvc = start_scopesvc(tmp_path, "--tracing")
    try:
        (tmp_path / "envoy").mkdir()
        envoy, port = start_envoy(tmp_path / "envoy", scopesvc.grpc_port, upstream.port, keys,
                                  edit=with_tracing(receiver.port))
        try:
            bearer = {"authorization": f"Bearer {keys.mint(scope='users:read')}", "traceparent": TRACEPARENT}
            assert send(port, "GET", "/users/me", bearer).reached_upstream
            denied = send(port, "POST", "/scheduling_links", bearer)
            assert denied.status == 403
            ours = receiver.wait_for(lambda s: s.service == "scopesvc" and s.trace_id == TRACE_ID, count=2)
            envoys = receiver.wait_for(lambda s: s.service == "envoy" and s.trace_id == TRACE_ID, count=2)
        finally:
            envoy.stop()
    finally:
        scopesvc.process.stop()
    envoy_span_ids = {span.span_id for span in envoys}
    for span in ours:
        assert span.name == "envoy.service.auth.v3.Authorization/Check"
        assert span.parent_span_id in envoy_span_ids, (span, envoys)
    assert sorted(span.attributes["scopesvc.decision"] for span in ours) == ["allow", "deny"]
    assert {span.attributes["scopesvc.endpoint"] for span in ours} == {"GET /users/me", "POST /scheduling_links"}
