"""Helpers for the deployment tests: find the deployment tools (helm, hadolint, kubernetes-validate)
and read the Dockerfile's instructions."""

from __future__ import annotations

import json
import os
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOOLS = Path(os.environ.get("SCOPESVC_TOOLS", ROOT / ".tools"))
if not TOOLS.is_absolute():
    TOOLS = ROOT / TOOLS
# Where scripts/install-test-tools puts them; a tool on PATH is used when these are absent.
TOOL_PATHS = {
    "helm": TOOLS / "helm" / "helm" / "helm",
    "hadolint": TOOLS / "deploy-venv" / "bin" / "hadolint",
    "kubernetes-validate": TOOLS / "deploy-venv" / "bin" / "kubernetes-validate",
}


def tool(name: str) -> str:
    """The path of deployment tool `name`; in CI a missing tool fails the test instead of skipping it."""
    path = TOOL_PATHS[name]
    found = str(path) if os.access(path, os.X_OK) else shutil.which(name)
    if found is None:
        message = f"{name} not installed (scripts/install-test-tools installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


@dataclass
class Stage:
    """One `FROM` stage of a Dockerfile: its base, name and instructions in order."""

    base: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def env(self) -> dict[str, str]:
        """The stage's `ENV` settings (KEY=VALUE form), unexpanded."""
        values: dict[str, str] = {}
        for args in self.all("ENV"):
            for pair in shlex.split(args):
                key, _, value = pair.partition("=")
                values[key] = value
        return values

    def exec_form(self, keyword: str) -> list[str]:
        """The last `ENTRYPOINT`/`CMD` of the stage; it must be in exec (JSON) form."""
        value = json.loads(self.all(keyword)[-1])
        assert isinstance(value, list), f"{keyword} is not in exec form"
        return value


def dockerfile_stages(path: Path) -> list[Stage]:
    """Parse a Dockerfile into stages: comments dropped, continuation lines joined."""
    lines: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    stages: list[Stage] = []
    for line in lines:
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            base, _, name = args.partition(" AS ")
            stages.append(Stage(base=base.strip(), name=name.strip()))
        else:
            stages[-1].instructions.append((keyword, args))
    return stages
