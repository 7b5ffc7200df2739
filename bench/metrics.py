"""Reading scopesvc's own decision counters, to check every h2load request was decided as expected."""

from __future__ import annotations

import urllib.request
from collections import Counter
from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families

from .h2load import Result


def _families(port: int) -> list:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return list(text_string_to_metric_families(text))


def counter(metrics_port: int, workers: int) -> Callable[[], Counter[str]]:
    """A function returning `scopesvc_decisions_total{rpc="Check"}` by reason, summed over the workers."""

    def read() -> Counter[str]:
        counts: Counter[str] = Counter()
        for port in range(metrics_port, metrics_port + workers):
            for family in _families(port):
                if family.name != "scopesvc_decisions":
                    continue
                for sample in family.samples:
                    if sample.name.endswith("_total") and sample.labels.get("rpc") == "Check":
                        counts[sample.labels["reason"]] += int(sample.value)
        return counts

    return read


def time_totals(metrics_port: int) -> Counter[str]:
    """Sum and count of the Check times in the server's own histograms: the whole handler, and the decision in it."""
    sums: Counter[str] = Counter()
    for family in _families(metrics_port):
        for sample in family.samples:
            if family.name == "grpc_server_handling_seconds" and sample.labels.get("grpc_method") == "Check":
                sums["handler " + sample.name.rsplit("_", 1)[1]] += sample.value
            elif family.name == "scopesvc_decision_seconds" and sample.labels.get("rpc") == "Check":
                sums["decision " + sample.name.rsplit("_", 1)[1]] += sample.value
    return sums


def mean_seconds(totals: Counter[str]) -> dict[str, float]:
    """{"handler": s, "decision": s}: mean time per Check from `time_totals` (or a difference of two)."""
    return {part: totals[f"{part} sum"] / totals[f"{part} count"] for part in ("handler", "decision")
            if totals[f"{part} count"]}


def check_counts(decided: Counter[str], reasons: list[str], result: Result, in_flight: int) -> list[str]:
    """Problems when the server's decisions by reason do not match what h2load got answered.

    Each load i was answered `result.per_load[i]` times and must have been decided with
    `reasons[i]`; the server may count up to `in_flight` more (requests cut off when h2load stops).
    """
    expected: Counter[str] = Counter()
    for reason, answered in zip(reasons, result.per_load):
        expected[reason] += answered
    problems = []
    for reason in set(expected) | set(decided):
        if not expected[reason] <= decided[reason] <= expected[reason] + in_flight:
            problems.append(f"server decided {decided[reason]} x {reason}, h2load got {expected[reason]} answers")
    return problems
