"""The command line, run as a real process: output, --json and exit codes (0 allow, 1 deny, 2 input error)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "scopesvc", *args], capture_output=True, text=True, timeout=60)


def test_check_allow_deny_and_json():
    allow = run("check", "GET", "/scheduled_events/X1?count=5", "--scope", "scheduled_events:write")
    assert allow.returncode == 0 and allow.stdout.startswith("ALLOW GET /scheduled_events/{uuid}")
    deny = run("check", "POST", "/invitees", "-s", "scheduled_events:read,users:read", "--json")
    assert deny.returncode == 1
    body = json.loads(deny.stdout)
    assert body["allowed"] is False and body["missing_scopes"] == ["scheduled_events:write"]
    assert body["deny"]["http_status"] == 403 and body["reason"] == "REASON_INSUFFICIENT_SCOPE"
    legacy = run("check", "POST", "/invitees", "--issued-at", "2025-12-31T23:59:59Z")
    assert legacy.returncode == 0 and "legacy" in legacy.stdout
    malformed = run("check", "GET", "/users/%2e%2e/admin", "-s", "users:read")
    assert malformed.returncode == 1 and "malformed path" in malformed.stdout
    anonymous = run("check", "GET", "/users/me", "--no-token", "--json")
    assert anonymous.returncode == 1 and json.loads(anonymous.stdout)["reason"] == "REASON_MISSING_TOKEN"


def test_plan_migrate_webhook_diagnose():
    plan = run("plan", "realtime-invitee-notifications", "--client-id", "c1", "--json")
    assert plan.returncode == 0
    assert json.loads(plan.stdout)["scopes"] == ["scheduled_events:read", "users:read", "webhooks:write"]
    migrate = run("migrate", "--format", "legacy", "--json")
    assert migrate.returncode == 0 and "scheduled_events:write" in json.loads(migrate.stdout)["scopes"]
    webhook = run("webhook", "--subscribe", "routing_form_submission.created", "--at", "organization",
                  "-s", "webhooks:write routing_forms:read")
    assert webhook.returncode == 0
    diagnose = run("diagnose", "GET", "/users/me", "--requested", "users:read")
    assert diagnose.returncode == 1 and "declined" in diagnose.stdout


def test_catalog_validate_and_show(tmp_path: Path):
    ok = run("catalog", "validate")
    assert ok.returncode == 0 and "75 endpoints" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("format: scopesvc.catalog/v1\nname: x\nscopes: [{name: a:read}]\nendpoints: [{method: GET, path: /x, scopes: [b:read]}]\n")
    invalid = run("catalog", "validate", str(bad))
    assert invalid.returncode == 2 and "endpoints[0] (GET /x): unknown scope 'b:read'" in invalid.stderr
    show = run("catalog", "show", "--json")
    assert show.returncode == 0 and len(json.loads(show.stdout)["endpoints"]) == 75


@pytest.mark.parametrize(
    "args",
    [
        ("check", "GET"),
        ("check", "GET", "/x", "--issued-at", "yesterday"),
        ("check", "GET", "/x", "--format", "ancient"),
        ("plan", "no-such-feature"),
        ("plan", "users:read", "--redirect-uri", "https://a.example/cb"),
        ("diagnose", "--requested", "users:read"),
        ("diagnose", "GET", "/users/me", "--event", "invitee.created"),
        ("check", "GET", "/users/me", "--no-token", "-s", "users:read"),
        ("webhook", "-s", "webhooks:write"),
        ("check", "GET", "/x", "--catalog", "/nonexistent/catalog.yaml"),
        ("frobnicate",),
    ],
)
def test_input_errors_exit_2_with_a_message(args):
    result = run(*args)
    assert result.returncode == 2, result
    assert result.stderr.strip() and "Traceback" not in result.stderr
