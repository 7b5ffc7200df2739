"""Prometheus metrics over HTTP from a real server: they lint clean and move as decisions are made."""

from __future__ import annotations

import subprocess

import grpc
import pytest

from scopesvc.ops.metrics import Metrics
from scopesvc.v1 import scopesvc_pb2 as pb

from .helpers import token
from .ops_helpers import free_port, promtool, running, sample, scrape, wait_for

SECRET_SCOPE = "tok3n-ish-scope-s3cr3t"
SECRET_ID = "Zq9-concrete-id-not-a-label"


@pytest.fixture(scope="module")
def served():
    with running(metrics_port=free_port()) as (server, stub):
        yield server, stub


def test_metrics_lint_clean_with_promtool(served):
    server, stub = served
    stub.Check(pb.CheckRequest(token=token("users:read"), method="GET", path="/users/me"))
    text = scrape(server.server.metrics_port)
    result = subprocess.run([promtool(), "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr


def test_decision_and_grpc_metrics_move(served):
    server, stub = served
    port = server.server.metrics_port
    before = scrape(port)
    allow = pb.CheckRequest(token=token("users:read"), method="GET", path="/users/me")
    deny = pb.CheckRequest(token=token("users:read"), method="GET", path=f"/scheduled_events/{SECRET_ID}")
    stub.Check(allow)
    stub.Check(deny)
    stub.CheckBatch(pb.CheckBatchRequest(checks=[allow, deny, deny]))
    with pytest.raises(grpc.RpcError):
        stub.Check(pb.CheckRequest(method="GET", path="/users/me"))  # no token: INVALID_ARGUMENT
    check = {"grpc_service": "scopesvc.v1.ScopeService", "grpc_method": "Check", "grpc_type": "unary"}
    handled_before = sample(before, "grpc_server_handled_total", **check)
    # The server counts a call after sending its status, so the client can see the status first.
    wait_for(lambda: sample(scrape(port), "grpc_server_handled_total", **check) - handled_before >= 3)
    after = scrape(port)

    def delta(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert delta("scopesvc_decisions_total", rpc="Check", result="allow", reason="ALLOWED") == 1
    assert delta("scopesvc_decisions_total", rpc="Check", result="deny", reason="INSUFFICIENT_SCOPE") == 1
    assert delta("scopesvc_decisions_total", rpc="CheckBatch", result="deny", reason="INSUFFICIENT_SCOPE") == 2
    assert delta("scopesvc_decision_seconds_count", rpc="CheckBatch") == 3
    assert delta("grpc_server_started_total", **check) == 3
    assert delta("grpc_server_handled_total", grpc_code="OK", **check) == 2
    assert delta("grpc_server_handled_total", grpc_code="INVALID_ARGUMENT", **check) == 1
    assert delta("grpc_server_handling_seconds_count", grpc_code="OK", **check) == 2
    assert delta("grpc_server_handled_total", grpc_method="CheckBatch", grpc_code="OK") == 1
    assert delta("scopesvc_cache_misses_total") + delta("scopesvc_cache_hits_total") == 5
    assert sample(after, "scopesvc_cache_entries") >= 2


def test_catalog_metrics(served):
    server, _ = served
    text = scrape(server.server.metrics_port)
    catalog = server.server.ref.engine.catalog
    assert sample(text, "scopesvc_catalog_info", name=catalog.name, revision=catalog.revision) == 1
    assert sample(text, "scopesvc_catalog_loaded_timestamp_seconds") > 1.7e9
    assert "scopesvc_catalog_reload_failures_total 0.0" in text


def test_labels_hold_no_request_data(served):
    server, stub = served
    stub.Check(pb.CheckRequest(token=token(SECRET_SCOPE), method="GET", path=f"/scheduled_events/{SECRET_ID}?q=1"))
    stub.Check(pb.CheckRequest(token=token(SECRET_SCOPE), method="GET", path=f"/no/such/{SECRET_ID}"))
    with grpc.insecure_channel(server.address) as channel, pytest.raises(grpc.RpcError) as info:
        channel.unary_unary("/no.Such/Method")(b"", timeout=5)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    text = scrape(server.server.metrics_port)
    assert SECRET_SCOPE not in text and SECRET_ID not in text and "no.Such" not in text


def test_loop_series_expose_as_prometheus_counters_and_histograms():
    """Buckets are cumulative and inclusive (`le`), +Inf counts everything, and counters end in _total."""
    metrics = Metrics()
    labels = {"grpc_type": "unary", "grpc_service": "s", "grpc_method": "M", "grpc_code": "OK"}
    seconds = metrics.grpc_seconds.labels(*labels.values())
    for value in (1e-4, 1.5e-4, 10.0):
        seconds.observe(value)
    metrics.grpc_handled.labels(*labels.values()).inc()
    value = metrics.registry.get_sample_value
    assert value("grpc_server_handling_seconds_bucket", {**labels, "le": "0.0001"}) == 1
    assert value("grpc_server_handling_seconds_bucket", {**labels, "le": "0.00025"}) == 2
    assert value("grpc_server_handling_seconds_bucket", {**labels, "le": "5.0"}) == 2
    assert value("grpc_server_handling_seconds_bucket", {**labels, "le": "+Inf"}) == 3
    assert value("grpc_server_handling_seconds_count", labels) == 3
    assert value("grpc_server_handling_seconds_sum", labels) == pytest.approx(10.00025)
    assert value("grpc_server_handled_total", labels) == 1
