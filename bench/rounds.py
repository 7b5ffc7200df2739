"""Measuring several servers fairly on a shared machine: interleaved rounds.

Every server under comparison is running at once (idle ones cost nothing), and each round loads
them one after the other, at saturation and at each fixed rate, the order rotating by one server
each round (where a server runs in the sequence moved its throughput by up to 5% here). A change
in the machine's other load then hits all servers alike, so ratios within a run hold; results pool
the rounds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from . import h2load, metrics, servers

T = TypeVar("T")


@dataclass
class Target:
    name: str
    loads: list[h2load.Load]
    fixed_rates: bool = True  # also measured at the fixed rates
    counted: Callable[[], Counter[str]] | None = None  # the server's decisions by reason
    reasons: list[str] | None = None  # each load's expected reason
    pids: tuple[int, ...] = ()  # the processes that answer: their CPU time per answer is measured too


def rotated(items: list[T], r: int) -> list[T]:
    """`items` starting at round `r`'s turn, so no item always runs first or after the same one."""
    return items[r % len(items):] + items[:r % len(items)]


def measure(targets: list[Target], *, rounds: int, seconds: float, rate_seconds: float, rates: list[int],
            in_flight: int) -> dict[str, dict[Any, h2load.Result]]:
    """{target name: {"saturation" or rate: pooled Result}}."""
    for target in targets:
        h2load.run("warm-up", target.loads, streams=in_flight, seconds=1)
    steps: list[tuple[Any, int, float]] = [("saturation", 0, seconds)] + [(r, r, rate_seconds) for r in rates]
    runs: dict[str, dict[Any, list[h2load.Result]]] = {t.name: {} for t in targets}
    for r in range(rounds):
        turn = rotated(targets, r)
        for key, rate, length in steps:
            for target in turn:
                if rate and not target.fixed_rates:
                    continue
                before = target.counted() if target.counted else None
                cpu = sum(servers.cpu_seconds(pid) for pid in target.pids)
                result = h2load.run(target.name, target.loads, streams=in_flight, seconds=length, rate=rate)
                if target.pids and result.succeeded:
                    spent = sum(servers.cpu_seconds(pid) for pid in target.pids) - cpu
                    result.round_cpu_us.append(spent / result.succeeded * 1e6)
                if target.counted and before is not None and target.reasons:
                    result.bad_bodies += metrics.check_counts(target.counted() - before, target.reasons, result,
                                                              in_flight)
                runs[target.name].setdefault(key, []).append(result)
    return {name: {key: h2load.merge(name, results) for key, results in by_key.items()}
            for name, by_key in runs.items()}
