"""Driving h2load with gRPC-framed bodies and reading its results.

h2load sends one fixed body per process, so a mixed load is several h2load processes at once,
one per body, splitting the concurrency between them. Latency percentiles come from h2load's
per-request log; h2load ignores grpc-status, so each process's received DATA bytes are checked
against (requests x the expected framed response) - an error answer carries no message.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

_DONE = re.compile(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored")
_DATA = re.compile(r"traffic: .*?, .*? headers .*?, \S+ \((\d+)\) data")


@dataclass
class Result:
    label: str
    seconds: float
    succeeded: int
    failed: int
    latencies_us: list[int] = field(default_factory=list)
    per_load: list[int] = field(default_factory=list)
    round_rps: list[float] = field(default_factory=list)
    data_bytes: int = 0
    bad_bodies: list[str] = field(default_factory=list)
    round_cpu_us: list[float] = field(default_factory=list)  # server CPU per answer, each round (when measured)

    @property
    def rps(self) -> float:
        return self.succeeded / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        """Latency percentile in milliseconds (nearest rank)."""
        if not self.latencies_us:
            return float("nan")
        ordered = sorted(self.latencies_us)
        index = min(len(ordered) - 1, max(0, int(round(p / 100 * len(ordered) + 0.5)) - 1))
        return ordered[index] / 1000

    @property
    def correct(self) -> bool:
        return self.failed == 0 and not self.bad_bodies and self.succeeded > 0


@dataclass(frozen=True)
class Load:
    """What one h2load process sends, and what every answer must be.

    `frame`: the framed size of the verified gRPC answer (its DATA bytes per request); or, for
    plain HTTP, `status`: the HTTP status class every answer must have ("2xx", "4xx").
    """

    uri: str
    body: bytes | None = None
    headers: tuple[str, ...] = ("content-type: application/grpc", "te: trailers")
    frame: int = 0
    status: str = ""


_STATUS = re.compile(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx")


def run(label: str, loads: list[Load], *, streams: int, seconds: float, rate: int = 0) -> Result:
    """Run one h2load per load concurrently: `streams` in flight in total, or `rate` requests/s in total."""
    k = len(loads)
    with tempfile.TemporaryDirectory(prefix="h2load-") as tmp:
        procs = []
        for i, load in enumerate(loads):
            cmd = ["h2load", "-c", "1", "-t", "1", f"--duration={seconds:g}", f"--log-file={tmp}/log{i}"]
            if load.body is not None:
                Path(tmp, f"body{i}").write_bytes(load.body)
                cmd += ["-d", f"{tmp}/body{i}"]
            for header in load.headers:
                cmd += ["-H", header]
            if rate:
                cmd += ["-m", "16", f"--rps={rate // k + (1 if i < rate % k else 0)}"]
            else:
                cmd += ["-m", str(streams // k + (1 if i < streams % k else 0))]
            procs.append(subprocess.Popen([*cmd, load.uri], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        result = Result(label, seconds, 0, 0)
        for i, (load, proc) in enumerate(zip(loads, procs)):
            out, _ = proc.communicate(timeout=seconds + 60)
            _collect(result, i, load, out, Path(tmp, f"log{i}"))
        return result


def _collect(result: Result, i: int, load: Load, out: str, log: Path) -> None:
    """Add what h2load process `i` (of `load`) printed, and its per-request log, to `result`."""
    done, data, status = _DONE.search(out), _DATA.search(out), _STATUS.search(out)
    if done is None or data is None or status is None:
        raise RuntimeError(f"h2load output not understood:\n{out}")
    counts = dict(zip(("2xx", "3xx", "4xx", "5xx"), map(int, status.groups())))
    if load.status:  # plain HTTP: every answer counts, and each must have the expected status
        succeeded, failed = sum(counts.values()), int(done.group(6))
        if counts[load.status] != succeeded:
            result.bad_bodies.append(f"load {i}: status codes {counts}, expected all {load.status}")
    else:
        succeeded, failed = int(done.group(4)), int(done.group(5)) + int(done.group(6))
    result.succeeded += succeeded
    result.per_load.append(succeeded)
    result.failed += failed
    data_bytes = int(data.group(1))
    result.data_bytes += data_bytes
    # Every answer carries exactly one message; a stream cut off when h2load stops may have
    # received its message without being counted, so at most that many (16) more messages.
    if load.frame and (data_bytes % load.frame or not 0 <= data_bytes // load.frame - succeeded <= 16):
        result.bad_bodies.append(f"load {i}: {data_bytes} DATA bytes for {succeeded} answers of {load.frame}")
    for line in log.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) >= 3:
            result.latencies_us.append(int(parts[2]))


def run_h1(label: str, load: Load, *, connections: int, seconds: float, warm_up: float = 2.0) -> Result:
    """Plain HTTP/1.1 (h2load --h1): `connections` keep-alive connections, one request in flight on each,
    measured for `seconds` after `warm_up` seconds. A server that never lets h2load finish (a listen
    backlog too short for the connections: SYN retries) is a result with no answers, not a hang."""
    with tempfile.TemporaryDirectory(prefix="h2load-") as tmp:
        cmd = ["h2load", "--h1", "-c", str(connections), "-t", "1", f"--duration={seconds:g}",
               f"--log-file={tmp}/log0", *([f"--warm-up-time={warm_up:g}"] if warm_up else [])]
        for header in load.headers:
            cmd += ["-H", header]
        result = Result(label, seconds, 0, 0)
        try:
            out = subprocess.run([*cmd, load.uri], capture_output=True, text=True, timeout=seconds + warm_up + 120,
                                 check=False).stdout
        except subprocess.TimeoutExpired:
            result.bad_bodies.append(f"h2load did not finish within {seconds + warm_up + 120:g} s")
            return result
        _collect(result, 0, load, out, Path(tmp, "log0"))
        return result

def merge(label: str, rounds: list[Result]) -> Result:
    """Several runs of the same loads as one: answers and time add up, latencies pool."""
    merged = Result(label, sum(r.seconds for r in rounds), sum(r.succeeded for r in rounds),
                    sum(r.failed for r in rounds))
    for r in rounds:
        merged.latencies_us += r.latencies_us
        merged.data_bytes += r.data_bytes
        merged.bad_bodies += r.bad_bodies
        merged.round_rps.append(r.rps)
        merged.round_cpu_us += r.round_cpu_us
    merged.per_load = [sum(counts) for counts in zip(*(r.per_load for r in rounds))]
    return merged
