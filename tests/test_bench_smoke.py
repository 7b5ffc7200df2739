"""The benchmark still runs: `./bench/run --quick` loads scopesvc and the no-op server briefly.

It asserts the run verified every answer and produced sane numbers, not any speed (speed is
measured only by the full `./bench/run`), and that a run rewrites only the sections it names.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench import document
from bench.sections import SECTIONS

from .conftest import ROOT

pytestmark = pytest.mark.slow


def test_quick_bench_runs_and_verifies_every_answer(tmp_path: Path) -> None:
    if shutil.which("h2load") is None and not os.environ.get("CI"):
        pytest.skip("h2load (nghttp2-client) not installed")
    out = tmp_path / "results.json"
    report = tmp_path / "BENCH.md"
    proc = subprocess.run([sys.executable, "-m", "bench", "--quick", "--json", str(out), "--out", str(report)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads(out.read_text())
    rpc = results["grpc"]
    assert all(not problems for problems in rpc["checks"].values()), rpc["checks"]
    for name in ("scopesvc", "no-op grpcio"):
        saturation = rpc["runs"][name]["saturation"]
        assert saturation["correct"] and saturation["failed"] == 0, saturation
        assert saturation["rps"] > 50
        assert 0 < saturation["p50_ms"] <= saturation["p99_ms"] <= saturation["p999_ms"]
    assert rpc["runs"]["scopesvc"]["1000"]["succeeded"] > 500
    assert rpc["batch"]["10"]["correct"]
    decision = results["core"]["default"]
    assert 0 < decision["median"] <= decision["p99"]
    assert results["core"]["sizes"]["1000"]["endpoints"] == 1000
    text = report.read_text()
    assert "every answer correct" in text and "<!-- bench:begin grpc -->" in text
    assert "by `./bench/run --quick --json" in text  # each section names the command that measured it
    assert "2026-11-24" not in text  # no figure of an earlier run in the report


def test_a_run_rewrites_only_the_sections_it_names(tmp_path: Path) -> None:
    report = tmp_path / "BENCH.md"
    report.write_text(document.rewrite("", {"grpc": document.render("grpc", "Check over gRPC", STAMP, ["kept"]),
                                            "core": document.render("core", "core", STAMP, ["replaced"])},
                                       SECTIONS))
    proc = subprocess.run([sys.executable, "-m", "bench", "--quick", "core", "--out", str(report), "--note", "smoke"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = report.read_text()
    grpc_part = text[text.index("<!-- bench:begin grpc -->"):text.index("<!-- bench:end grpc -->")]
    core_part = text[text.index("<!-- bench:begin core -->"):text.index("<!-- bench:end core -->")]
    assert "kept" in grpc_part and "`./bench/run old`" in grpc_part
    assert "replaced" not in core_part and "`./bench/run --quick core --out" in core_part and "Note: smoke" in core_part
    assert text.index("bench:begin core") < text.index("bench:begin grpc")  # the registry's order


STAMP = document.Stamp(0.0, 1.0, "./bench/run old", (0.0, 0.0, 0.0), (0.0, 0.0, 0.0))


def test_forward_auth_bench_compares_servers_that_answer_alike(tmp_path: Path) -> None:
    """bench/forward_auth.py's three servers (aiohttp, uvicorn + httptools, the old one) give the same
    answers, so its comparison is of servers, not of work; and h2load's run through each is verified."""
    if shutil.which("h2load") is None and not os.environ.get("CI"):
        pytest.skip("h2load (nghttp2-client) not installed")
    import http.client

    from bench import forward_auth

    answers = {}
    for kind in ("aiohttp", "uvicorn", "old"):
        with forward_auth._server(kind, tmp_path) as (_proc, port):
            seen = []
            for uri, scopes in (("/users/me", "users:read"), ("/organizations/o1", "users:read"), ("/x/..", "a")):
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                connection.request("GET", "/check", headers={"X-Original-Method": "GET", "X-Original-URI": uri,
                                                             "X-Scopesvc-Scopes": scopes})
                response = connection.getresponse()
                seen.append((response.status, response.getheader("x-scopesvc-endpoint"),
                             response.getheader("www-authenticate"), response.read()))
                connection.close()
            answers[kind] = seen
        # Four connections, each carrying thousands of requests in the 2 s warm-up and 1 s run: no
        # server may end one (h2load never reconnects), and none waits on SYN retries (the old
        # server's listen backlog is 5).
        result = forward_auth.direct({kind: kind}, tmp_path, 1, rounds=1, connections=4)[kind]
        assert result.correct and result.succeeded > 1000, (kind, result)
    assert answers["aiohttp"] == answers["uvicorn"] == answers["old"], answers
    assert [status for status, *_ in answers["aiohttp"]] == [200, 403, 403]
