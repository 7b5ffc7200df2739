"""A short coverage-guided fuzzing run of the path matcher and the catalog loader (fuzz/run).

The run fails on any crash or invariant violation (the fuzz targets state theirs). Locally the
test is skipped when atheris is not installed; in CI (CI set) a missing atheris fails it.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SECONDS = int(os.environ.get("SCOPESVC_FUZZ_SECONDS", "6"))


@pytest.fixture(scope="module", autouse=True)
def atheris_present() -> None:
    if importlib.util.find_spec("atheris") is None:
        if os.environ.get("CI"):
            pytest.fail("atheris is not installed (pip install -e '.[test]')")
        pytest.skip("atheris is not installed")


@pytest.mark.parametrize("target", ["paths", "catalog"])
def test_fuzz_target_finds_nothing(target):
    result = subprocess.run([str(ROOT / "fuzz" / "run"), target, str(SECONDS), "--ci"], capture_output=True, text=True,
                            timeout=SECONDS + 120, env={**os.environ, "SCOPESVC_PYTHON": sys.executable}, cwd=ROOT)
    runs = [line for line in result.stderr.splitlines() if line.startswith("stat::number_of_executed_units")]
    print(f"\nfuzz {target}: {runs[0].split(':')[-1].strip() if runs else '?'} inputs in {SECONDS}s, exit {result.returncode}")
    assert result.returncode == 0, result.stderr[-4000:]
    assert runs and int(runs[0].split(":")[-1]) > 100, "the fuzzer ran no inputs"
