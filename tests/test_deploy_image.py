"""The container image: hadolint-clean, and its build and run steps produce a working service.

No Docker engine runs here, so the test replays the Dockerfile on the host: the build stage's
COPY and RUN instructions run in a scratch directory that stands in for the image's root (the
image's absolute paths are re-rooted there), then the runtime stage's ENTRYPOINT and CMD run with
its ENV, and the service must answer health and Check without writing a file.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from scopesvc.ops.config import FIELDS
from scopesvc.v1 import scopesvc_pb2 as pb
from scopesvc.v1 import scopesvc_pb2_grpc as pb_grpc

from .deploy_helpers import ROOT, Stage, dockerfile_stages, tool
from .helpers import token
from .ops_helpers import free_port, scrape

DOCKERFILE = ROOT / "Dockerfile"
SERVING = health_pb2.HealthCheckResponse.SERVING


def test_hadolint_clean():
    result = subprocess.run([tool("hadolint"), "--failure-threshold", "info", str(DOCKERFILE)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_shape():
    build, runtime = dockerfile_stages(DOCKERFILE)
    assert build.name == "build" and build.base == runtime.base == "python:3.11-slim"
    user = runtime.all("USER")[-1]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and gid.isdigit() and int(uid) > 0 and int(gid) > 0, "runtime user must be numeric, not root"
    assert not runtime.all("RUN"), "the runtime stage only copies the built environment"
    assert runtime.exec_form("ENTRYPOINT") == ["scopesvc"] and runtime.exec_form("CMD")[0] == "serve"
    exposed = {int(p) for args in runtime.all("EXPOSE") for p in args.split()}
    assert exposed == {FIELDS["port"].default, FIELDS["metrics_port"].metadata["serve"]}
    env = runtime.env()
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert {env[f"SCOPESVC_{name}"] for name in ("HOST", "METRICS_HOST")} == {"0.0.0.0"}
    assert "--no-cache-dir" in " ".join(build.all("RUN"))
    # .dockerignore excludes everything but what the build stage copies.
    ignore = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    copied = {source.rstrip("/") for args in build.all("COPY") for source in args.split()[:-1]}
    assert ignore[0] == "*" and copied == {line[1:].rstrip("/") for line in ignore if line.startswith("!")}


def reroot(root: Path, value: str, host_path: str) -> str:
    """An ENV value with the image's absolute paths moved under `root` and `$PATH` taken from the host."""
    parts = []
    for part in value.split(":"):
        if part == "$PATH":
            parts.append(host_path)
        elif part.startswith("/"):
            parts.append(str(root / part.lstrip("/")))
        else:
            parts.append(part)
    return ":".join(parts)


def stage_env(stage: Stage, root: Path, host_path: str) -> dict[str, str]:
    return {key: reroot(root, value, host_path) for key, value in stage.env().items()}


def replay_build(build: Stage, root: Path) -> None:
    """Run the build stage's WORKDIR, COPY and RUN instructions with `root` as the image's root."""
    # The base image's python and pip: the interpreter running the tests (same minor version).
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin", "HOME": str(root / "root")}
    env.update(stage_env(build, root, env["PATH"]))
    workdir = root
    for keyword, args in build.instructions:
        if keyword == "WORKDIR":
            workdir = root / args.lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif keyword == "COPY":
            *sources, dest = args.split()
            for source in sources:
                target = workdir / dest
                if (ROOT / source).is_dir():
                    shutil.copytree(ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    target.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(ROOT / source, target)
        elif keyword == "RUN":
            result = subprocess.run(["/bin/sh", "-c", args], cwd=workdir, env=env,
                                    capture_output=True, text=True, timeout=240)
            assert result.returncode == 0, f"RUN {args}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        else:
            assert keyword == "ENV", f"the replay does not know {keyword}"


def snapshot(directory: Path) -> dict[str, float]:
    return {str(p): p.lstat().st_mtime for p in directory.rglob("*")}


@pytest.fixture(scope="module")
def image_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="scopesvc-image-"))
    try:
        build, _ = dockerfile_stages(DOCKERFILE)
        replay_build(build, root)
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_image_build_and_run(image_root: Path, tmp_path: Path):
    _, runtime = dockerfile_stages(DOCKERFILE)
    for args in runtime.all("COPY"):
        flag, source, dest = args.split()
        assert flag == "--from=build" and source == dest, "the venv must keep its build-time path"
        assert (image_root / source.lstrip("/") / "bin" / "scopesvc").exists()
    env = stage_env(runtime, image_root, "/usr/local/bin:/usr/bin:/bin")
    entry = shutil.which(runtime.exec_form("ENTRYPOINT")[0], path=env["PATH"])
    assert entry and Path(entry).is_relative_to(image_root), f"entry point resolves to {entry}"
    # Loopback only here; the image's own default (all interfaces) is asserted in test_dockerfile_shape.
    port, metrics_port = free_port(), free_port()
    env.update(SCOPESVC_HOST="127.0.0.1", SCOPESVC_METRICS_HOST="127.0.0.1",
               SCOPESVC_PORT=str(port), SCOPESVC_METRICS_PORT=str(metrics_port))
    cwd = image_root / "cwd"
    cwd.mkdir()
    before = snapshot(image_root)
    for path in [cwd, *image_root.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode & ~0o222)  # read-only for a non-root run
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen([entry, *runtime.exec_form("CMD")],
                                cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
            health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert health.status == SERVING
            stub = pb_grpc.ScopeServiceStub(channel)
            allowed = stub.Check(pb.CheckRequest(token=token("users:read"), method="GET", path="/users/me"), timeout=5)
            denied = stub.Check(pb.CheckRequest(token=token("users:read"), method="GET",
                                                path="/scheduled_events/AB12"), timeout=5)
            assert allowed.allowed and not denied.allowed
            assert list(denied.missing_scopes) == ["scheduled_events:read"]
        assert "scopesvc_" in scrape(metrics_port)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for path in [cwd, *image_root.rglob("*")]:
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | 0o200)
    assert snapshot(image_root) == before, "the service wrote files at run time"
    assert not os.listdir(cwd)
