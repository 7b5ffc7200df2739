"""The benchmark still runs: `./bench/run --quick` loads scopesvc and the no-op server briefly.

It asserts the run verified every answer and produced sane numbers, not any speed (speed is
measured only by the full `./bench/run`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.slow


def test_quick_bench_runs_and_verifies_every_answer(tmp_path: Path) -> None:
    if shutil.which("h2load") is None and not os.environ.get("CI"):
        pytest.skip("h2load (nghttp2-client) not installed")
    out = tmp_path / "results.json"
    report = tmp_path / "BENCH.md"
    proc = subprocess.run([sys.executable, "-m", "bench", "--quick", "--json", str(out), "--out", str(report)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads(out.read_text())
    rpc = results["rpc"]
    assert all(not problems for problems in rpc["checks"].values()), rpc["checks"]
    for name in ("scopesvc", "no-op grpcio"):
        saturation = rpc["runs"][name]["saturation"]
        assert saturation["correct"] and saturation["failed"] == 0, saturation
        assert saturation["rps"] > 50
        assert 0 < saturation["p50_ms"] <= saturation["p99_ms"] <= saturation["p999_ms"]
    assert rpc["runs"]["scopesvc"]["1000"]["succeeded"] > 500
    assert rpc["batch"]["10"]["correct"]
    decision = results["inprocess"]["default"]
    assert 0 < decision["median"] <= decision["p99"]
    assert results["inprocess"]["sizes"]["1000"]["endpoints"] == 1000
    text = report.read_text()
    assert "## Targets" in text and "every answer correct" in text
