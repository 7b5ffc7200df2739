"""Abuse of an HTTP listener, as the issue measured it: slow-header and large-header connections.

`python -m bench.http_attack --port P --slow 2000 --large 100 --seconds 20` holds, for the whole
run, `slow` connections that send a request line and then one short header line a second, never
finishing the headers, and `large` connections that dribble 95 headers of 60 KiB each in 8 KiB
pieces. A connection the server closes is opened again at once, so the pressure stays. It prints
one JSON line of counts when done. Run as its own process, so the client measuring normal
requests beside it shares no event loop with it.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import grpc

from scopesvc.v1 import scopesvc_pb2 as pb
from scopesvc.v1 import scopesvc_pb2_grpc as pb_grpc

LARGE_HEADERS = 95
LARGE_HEADER_BYTES = 60 * 1024
PIECE = 8 * 1024


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def _hold(port: int, deadline: float, counts: dict[str, int], lines: list[bytes], pause: float) -> None:
    """Keep one connection sending `lines` (repeating) `pause` seconds apart until `deadline`."""
    while time.monotonic() < deadline:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            counts["connect_errors"] += 1
            await asyncio.sleep(0.1)
            continue
        counts["connections"] += 1
        try:
            writer.write(b"GET /check HTTP/1.1\r\nHost: attack\r\n")
            i = 0
            while time.monotonic() < deadline and not reader.at_eof():
                writer.write(lines[i % len(lines)])
                i += 1
                await writer.drain()
                try:
                    answer = await asyncio.wait_for(reader.read(256), pause)
                except TimeoutError:
                    continue
                if answer:
                    status = answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/") else "other"
                    counts[f"answered_{status}"] = counts.get(f"answered_{status}", 0) + 1
                break
        except OSError:
            counts["resets"] += 1
        finally:
            writer.close()


async def attack(port: int, slow: int, large: int, seconds: float) -> dict[str, int]:
    deadline = time.monotonic() + seconds
    counts = {"connections": 0, "connect_errors": 0, "resets": 0}
    slow_lines = [b"X-Slow: 1\r\n"]
    big = b"X-Large-%d: " + b"a" * LARGE_HEADER_BYTES + b"\r\n"
    large_lines = [piece for n in range(LARGE_HEADERS) for piece in _pieces(big.replace(b"%d", str(n).encode()))]
    tasks = [_hold(port, deadline, counts, slow_lines, 1.0) for _ in range(slow)]
    tasks += [_hold(port, deadline, counts, large_lines, 0.05) for _ in range(large)]
    await asyncio.gather(*tasks)
    return counts


def _pieces(data: bytes) -> list[bytes]:
    return [data[i:i + PIECE] for i in range(0, len(data), PIECE)]


NORMAL = {"X-Original-Method": "GET", "X-Original-URI": "/users/me", "X-Scopesvc-Scopes": "users:read"}


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


def normal_request(port: int) -> tuple[float, int]:
    """One forward-auth request as a gateway sends it, on a new connection: (seconds, status)."""
    start = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/check", headers=NORMAL)
        response = connection.getresponse()
        response.read()
        return time.perf_counter() - start, response.status
    except OSError:
        return time.perf_counter() - start, 0
    finally:
        connection.close()


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def under_attack(server_pid: int, port: int, grpc_address: str, slow: int = 2000, large: int = 100,
                 seconds: float = 20.0, ramp: float = 4.0) -> dict[str, object]:
    """Normal forward-auth requests and gRPC Checks while `python -m bench.http_attack` runs beside them.

    Measured after `ramp` seconds (the attack's connections are open by then): forward-auth
    latency (a new connection per request, about 20 a second), gRPC Check outcomes, and the
    server's resident memory, sampled throughout.
    """
    root = Path(__file__).resolve().parent.parent
    attacker = subprocess.Popen([sys.executable, "-m", "bench.http_attack", "--port", str(port), "--slow", str(slow),
                                 "--large", str(large), "--seconds", str(seconds)], cwd=root,
                                stdout=subprocess.PIPE, text=True)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    grpc_ok = grpc_failed = 0
    rss_peak = rss_mib(server_pid)
    check = pb.CheckRequest(token=pb.Token(scopes=["users:read"]), method="GET", path="/users/me")
    with grpc.insecure_channel(grpc_address) as channel:
        stub = pb_grpc.ScopeServiceStub(channel)
        start = time.monotonic()
        while time.monotonic() - start < seconds - 1 and attacker.poll() is None:
            rss_peak = max(rss_peak, rss_mib(server_pid))
            if time.monotonic() - start < ramp:
                time.sleep(0.1)
                continue
            took, status = normal_request(port)
            latencies.append(took)
            statuses[status] = statuses.get(status, 0) + 1
            if len(latencies) % 10 == 0:
                try:
                    grpc_ok += stub.Check(check, timeout=5).allowed
                except grpc.RpcError:
                    grpc_failed += 1
            time.sleep(0.05)
    out, _ = attacker.communicate(timeout=seconds + 60)
    return {"requests": len(latencies), "statuses": statuses, "p50_ms": round(1000 * quantile(latencies, 0.5), 1),
            "p99_ms": round(1000 * quantile(latencies, 0.99), 1), "max_ms": round(1000 * max(latencies), 1),
            "grpc_ok": grpc_ok, "grpc_failed": grpc_failed, "rss_peak_mib": round(rss_peak, 1),
            "attack": json.loads(out.strip().splitlines()[-1]) if out.strip() else {}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--slow", type=int, default=2000)
    parser.add_argument("--large", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    raise_fd_limit()
    print(json.dumps(asyncio.run(attack(args.port, args.slow, args.large, args.seconds))), flush=True)


if __name__ == "__main__":
    main()
