"""Decision logs: one JSON line per decision, sampled and size-bound, never holding secrets."""

from __future__ import annotations

import json

from scopesvc.policy import Token
from scopesvc.v1 import scopesvc_pb2 as pb
from scopesvc.v1 import scopesvc_pb2_grpc as pb_grpc

from .helpers import decision_records, token
from .ops_helpers import ServeProcess, running, wait_for

SECRET = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0.c2ln"


def test_records_describe_decisions_without_secrets(tmp_path):
    log = tmp_path / "decisions.jsonl"
    with running(decision_log=str(log)) as (server, stub):
        stub.Check(pb.CheckRequest(token=token("users:read", SECRET), method="GET",
                                   path=f"/scheduled_events/AB12?access_token={SECRET}"))
        stub.Check(pb.CheckRequest(token=token(SECRET, "users:read"), method="GET", path="/users/me"))
        stub.Check(pb.CheckRequest(token=token("scheduled_events:read"), method="GET", path="/users/me"))
        # The gateway adapters pass request attributes; secret headers never reach the log.
        server.server.decider.decide(
            Token(("users:read",)), "GET", "/users/me", rpc="test", subject="user-123",
            attributes={"Authorization": f"Bearer {SECRET}", "cookie": f"s={SECRET}",
                        "Proxy-Authorization": SECRET, "set-cookie": SECRET, "x-request-id": "req-1"},
        )
    text = log.read_text()
    assert SECRET not in text and "user-123" not in text
    deny, allow, other, direct = decision_records(log)
    assert deny["allowed"] is False and deny["reason"] == "INSUFFICIENT_SCOPE"
    assert deny["endpoint"] == "GET /scheduled_events/{uuid}" and deny["path"] == "/scheduled_events/AB12"
    assert deny["missing_scopes"] == ["scheduled_events:read"] and deny["unknown_scope_count"] == 1
    assert deny["rpc"] == "Check" and deny["catalog_revision"] and deny["dry_run"] is False
    assert allow["allowed"] is True
    # The same scope set in another order hashes alike; another set does not.
    assert deny["scopes_hash"] == allow["scopes_hash"] != other["scopes_hash"]
    assert direct["attributes"] == {"x-request-id": "req-1"} and len(direct["subject_hash"]) == 24


def test_hash_key_changes_hashes(tmp_path):
    hashes = []
    for key in ("", "k1"):
        log = tmp_path / f"log-{key}.jsonl"
        with running(decision_log=str(log), decision_log_hash_key=key) as (_, stub):
            stub.Check(pb.CheckRequest(token=token("users:read"), method="GET", path="/users/me"))
        hashes.append(decision_records(log)[0]["scopes_hash"])
    assert hashes[0] != hashes[1]


def test_sampling_keeps_every_denial(tmp_path):
    log = tmp_path / "decisions.jsonl"
    with running(decision_log=str(log), decision_log_sample=0.0, cache_size=0) as (_, stub):
        for _ in range(20):
            stub.Check(pb.CheckRequest(token=token("users:read"), method="GET", path="/users/me"))
        stub.Check(pb.CheckRequest(token=token("users:read"), method="GET", path="/scheduled_events/AB12"))
    assert [r["allowed"] for r in decision_records(log)] == [False]


def test_file_is_size_bound_with_rotation(tmp_path):
    log = tmp_path / "decisions.jsonl"
    with running(decision_log=str(log), decision_log_max_bytes=4096) as (_, stub):
        checks = [pb.CheckRequest(token=token("users:read"), method="GET", path=f"/scheduled_events/{i}")
                  for i in range(200)]
        stub.CheckBatch(pb.CheckBatchRequest(checks=checks))
    rotated = tmp_path / "decisions.jsonl.1"
    assert rotated.exists()
    assert log.stat().st_size <= 4096 and rotated.stat().st_size <= 4096
    assert sorted(tmp_path.iterdir()) == [log, rotated]


def test_stdout_decision_log_in_a_process(tmp_path):
    server = ServeProcess(tmp_path, "--decision-log", "-")
    try:
        pb_grpc.ScopeServiceStub(server.channel).Check(
            pb.CheckRequest(token=token("users:read"), method="GET", path="/users/me"))
        wait_for(lambda: '"rpc":"Check"' in server.log())
    finally:
        assert server.close() == 0
    lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    assert lines and lines[0]["endpoint"] == "GET /users/me"
