"""What the sections' reports share: result tables, target rows, trimmed profiles, JSON of results."""

from __future__ import annotations

import collections
import math
from pathlib import Path
from typing import Any

from .h2load import Result


def collapse_profile(path: Path, top: int = 14) -> str:
    """py-spy raw (collapsed stacks) -> the share of samples in scopesvc's own code, and the top frames."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = mine = policy = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        own[frames[-1]] += n
        ours = [f for f in frames if "scopesvc/" in f and not any(e in f for e in _ENTRY_POINTS)]
        mine += n if ours else 0
        policy += n if any("scopesvc/policy/" in f for f in ours) else 0
        for frame in set(ours):
            inclusive[frame] += n
    if not total:
        return "(no samples)"
    lines = [f"{total} samples. In scopesvc's own code (handlers, decider, conversion, policy): "
             f"{100 * mine / total:.1f}%; in the policy core alone: {100 * policy / total:.1f}%. The rest is "
             "grpcio's server (its Cython code runs inside asyncio's Handle._run and its polling thread), "
             "the event loop and protobuf.",
             f"Own time, top {top} frames:"]
    lines += [f"  {100 * n / total:5.1f}%  {frame}" for frame, n in own.most_common(top)]
    lines.append("Inclusive time of scopesvc frames (top 10):")
    lines += [f"  {100 * n / total:5.1f}%  {frame}" for frame, n in inclusive.most_common(10)]
    return "\n".join(lines)


_ENTRY_POINTS = ("scopesvc/cli/__init__.py", "scopesvc/__main__.py", "scopesvc/server/app.py")


def trim_pstats(text: str) -> str:
    lines = text.strip().splitlines()
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    return "\n".join(line.replace(str(Path(__file__).resolve().parent.parent) + "/", "") for line in lines[start:])


def jsonable(value: Any) -> Any:
    if isinstance(value, Result):
        return {"rps": value.rps, "succeeded": value.succeeded, "failed": value.failed,
                "p50_ms": value.percentile(50), "p99_ms": value.percentile(99), "p999_ms": value.percentile(99.9),
                "correct": value.correct, "bad_bodies": value.bad_bodies}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def ms(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.2f}"


def row(name: str, r: Result) -> str:
    ok = "yes" if r.correct else "NO: " + "; ".join(r.bad_bodies or [f"{r.failed} failed"])
    rounds = " / ".join(f"{x:,.0f}" for x in r.round_rps) if len(r.round_rps) > 1 else ""
    return (f"| {name} | {r.rps:,.0f} | {rounds} | {ms(r.percentile(50))} | {ms(r.percentile(99))} | "
            f"{ms(r.percentile(99.9))} | {r.succeeded:,} | {ok} |")


HEAD = ("| server | req/s | req/s by round | p50 ms | p99 ms | p99.9 ms | answers | every answer correct |\n"
         "|---|---:|---:|---:|---:|---:|---:|---|")


def target_rows(targets: list[tuple[str, str, str, bool]]) -> list[str]:
    """A section's targets as a table: (target, measured, ratio, met)."""
    if not targets:
        return []
    lines = ["| target | measured | ratio | met |", "|---|---|---|---|"]
    return lines + [f"| {name} | {measured} | {ratio} | {'yes' if met else '**no**'} |"
                    for name, measured, ratio, met in targets]
