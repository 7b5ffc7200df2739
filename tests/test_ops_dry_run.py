"""Dry-run (shadow) mode: the policy decides, logs and counts as usual, but every request is allowed."""

from __future__ import annotations

from scopesvc.v1 import scopesvc_pb2 as pb

from .helpers import decision_records, token
from .ops_helpers import free_port, running, sample, scrape

DENIED = pb.CheckRequest(token=token("users:read"), method="GET", path="/scheduled_events/AB12")
ALLOWED = pb.CheckRequest(token=token("users:read"), method="GET", path="/users/me")


def test_dry_run_allows_and_keeps_the_policy_answer(tmp_path):
    log = tmp_path / "decisions.jsonl"
    with running(dry_run=True, metrics_port=free_port(), decision_log=str(log)) as (server, stub):
        response = stub.Check(DENIED)
        assert response.allowed and response.dry_run
        assert response.reason == pb.REASON_INSUFFICIENT_SCOPE
        assert list(response.missing_scopes) == ["scheduled_events:read"]
        assert not response.HasField("deny")
        allowed = stub.Check(ALLOWED)
        assert allowed.allowed and not allowed.dry_run and allowed.reason == pb.REASON_ALLOWED
        batch = stub.CheckBatch(pb.CheckBatchRequest(checks=[DENIED, ALLOWED])).results
        assert [(r.allowed, r.dry_run) for r in batch] == [(True, True), (True, False)]
        text = scrape(server.server.metrics_port)
        assert sample(text, "scopesvc_decisions_total", rpc="Check", result="deny") == 1
        assert sample(text, "scopesvc_dry_run_allowed_total", rpc="Check") == 1
        assert sample(text, "scopesvc_dry_run_allowed_total", rpc="CheckBatch") == 1
    records = decision_records(log)
    assert [(r["allowed"], r["dry_run"]) for r in records] == [(False, True), (True, False), (False, True), (True, False)]


def test_enforcing_mode_denies(tmp_path):
    with running() as (_, stub):
        response = stub.Check(DENIED)
        assert not response.allowed and not response.dry_run and response.deny.http_status == 403
