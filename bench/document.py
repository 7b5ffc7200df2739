"""BENCHMARKS.md as a set of sections, each rewritten only by a run that measured it.

Each section sits between `<!-- bench:begin NAME -->` and `<!-- bench:end NAME -->` and opens
with its stamp: when, at which commit (and whether the tree had uncommitted changes), on which
machine, under what load, by which exact command. A run replaces the sections it measured and
keeps every other one as it was; sections are kept in the registry's order.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from . import tools

HEADER = """# Benchmarks

Written by `./bench/run [SECTION ...]` (the same as `.venv/bin/python -m bench`): each section below is
measured and rewritten on its own, and says which run produced it (commit, date, machine, load, the exact
command). Figures from different sections come from different runs: compare within a section.
`./bench/run --list` names the sections; bench/README.md says how to add one.
"""

_SECTION = re.compile(r"<!-- bench:begin (\S+) -->\n.*?<!-- bench:end \1 -->\n", re.DOTALL)


@dataclass(frozen=True)
class Stamp:
    """Which run measured a section."""

    started: float
    seconds: float
    command: str
    load_before: tuple[float, ...]
    load_after: tuple[float, ...]
    note: str = ""

    def text(self) -> str:
        m, v = tools.machine(), tools.versions()
        commit, dirty = _commit()
        state = "with uncommitted changes" if dirty else "clean tree"
        load = " / ".join(", ".join(f"{x:.2f}" for x in avg) for avg in (self.load_before, self.load_after))
        lines = [
            f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(self.started))} by `{self.command}`, "
            f"{self.seconds:.0f} s, at commit {commit} ({state}).",
            f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory']}; {m['os']}; Python {v['python']}, grpcio "
            f"{v['grpcio']}, protobuf {v['protobuf']}, {v['h2load']}. Load average before / after: {load}.",
        ]
        if self.note:
            lines.append(f"**Note: {self.note}**")
        return "\n".join(f"> {line}" for line in lines)


def _commit() -> tuple[str, bool]:
    """The checked-out commit, and whether anything but BENCHMARKS.md differs from it."""
    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=tools.ROOT, check=False)

    commit = git("rev-parse", "--short=7", "HEAD").stdout.strip() or "?"
    dirty = bool(git("status", "--porcelain", "--", ".", ":!BENCHMARKS.md").stdout.strip())
    return commit, dirty


def command(argv: Iterable[str]) -> str:
    return shlex.join(["./bench/run", *argv])


def render(name: str, title: str, stamp: Stamp, body: list[str]) -> str:
    return "\n".join([f"<!-- bench:begin {name} -->", f"## {title}", "", stamp.text(), "", *body,
                      f"<!-- bench:end {name} -->", ""])


def rewrite(old: str, new: Mapping[str, str], order: Iterable[str]) -> str:
    """`old` with the sections in `new` replaced (or added), in `order`; sections no longer known are kept last."""
    kept = {m.group(1): m.group(0) for m in _SECTION.finditer(old)}
    kept.update(new)
    names = [n for n in order if n in kept] + [n for n in kept if n not in order]
    return HEADER + "\n" + "\n".join(kept[n] for n in names)


def loadavg() -> tuple[float, ...]:
    return os.getloadavg()
