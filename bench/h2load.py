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
_FINISHED = re.compile(r"finished in ([\d.]+)(s|ms)")


@dataclass
class Result:
    label: str
    seconds: float
    succeeded: int
    failed: int
    latencies_us: list[int] = field(default_factory=list)
    data_bytes: int = 0
    bad_bodies: list[str] = field(default_factory=list)

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


def run(label: str, uri: str, bodies: list[bytes], expected_response_frames: list[int], *,
        streams: int, seconds: float, rate: int = 0) -> Result:
    """Run one h2load per body concurrently; `streams` in flight in total, or `rate` requests/s in total.

    `expected_response_frames[i]` is the length of body i's framed response (5 + message bytes).
    """
    k = len(bodies)
    with tempfile.TemporaryDirectory(prefix="h2load-") as tmp:
        procs = []
        for i, body in enumerate(bodies):
            data = Path(tmp, f"body{i}")
            data.write_bytes(body)
            cmd = ["h2load", "-c", "1", "-t", "1", f"--duration={seconds:g}",
                   "-d", str(data), f"--log-file={tmp}/log{i}",
                   "-H", "content-type: application/grpc", "-H", "te: trailers"]
            if rate:
                share = rate // k + (1 if i < rate % k else 0)
                cmd += ["-m", "16", f"--rps={share}"]
            else:
                cmd += ["-m", str(streams // k + (1 if i < streams % k else 0))]
            procs.append(subprocess.Popen([*cmd, uri], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        result = Result(label, seconds, 0, 0)
        for i, proc in enumerate(procs):
            out, _ = proc.communicate(timeout=seconds + 60)
            done = _DONE.search(out)
            data = _DATA.search(out)
            if done is None or data is None:
                raise RuntimeError(f"h2load output not understood:\n{out}")
            succeeded, failed = int(done.group(4)), int(done.group(5)) + int(done.group(6))
            result.succeeded += succeeded
            result.failed += failed
            data_bytes = int(data.group(1))
            result.data_bytes += data_bytes
            if data_bytes != succeeded * expected_response_frames[i]:
                result.bad_bodies.append(
                    f"body {i}: {data_bytes} DATA bytes for {succeeded} answers of {expected_response_frames[i]}")
            for line in Path(tmp, f"log{i}").read_text().splitlines():
                parts = line.split("\t")
                if len(parts) >= 3 and parts[1] == "200":
                    result.latencies_us.append(int(parts[2]))
        return result
