"""Load and faults against real `scopesvc serve` processes on loopback, each bounded in time.

- sustained load: every answer checked against the engine, zero failed RPCs, server RSS flat;
- catalog reloads, good and bad, under load: every answer matches the catalog revision it names;
- SIGTERM under load: in-flight RPCs complete, new ones go to the health-checked peer;
- overload beyond --max-concurrent-rpcs: the burst is refused with RESOURCE_EXHAUSTED, quicker than serving it;
- clients that cancel calls or drop connections mid-call do not hurt the server.

Figures (requests, errors, RSS before/after) are printed (pytest -s) and recorded in
docs/hardening.md. SCOPESVC_LOAD_SECONDS sets the sustained run (default 20 s in CI, 120 s
otherwise).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from scopesvc.catalog import files as catalog_files
from scopesvc.policy import Engine, Token
from scopesvc.v1 import scopesvc_pb2 as pb
from scopesvc.v1 import scopesvc_pb2_grpc as pb_grpc

from .helpers import concrete
from .ops_helpers import ServeProcess

pytestmark = pytest.mark.slow

LOAD_SECONDS = float(os.environ.get("SCOPESVC_LOAD_SECONDS") or (20 if os.environ.get("CI") else 120))
CONCURRENCY = 16
MAX_REQUESTS = 2_000_000  # a hard bound besides the time bound
ENGINE = Engine(catalog_files.load_default())
SCOPE_SETS = [(), ("users:read",), ("scheduled_events:write",), ("organizations:read", "users:read"),
              ("event_types:write", "availability:read", "junk")]  # fmt: skip


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def request_pool(engine: Engine = ENGINE, ids: int = 12) -> list[tuple[pb.CheckRequest, Token, str, str]]:
    """Varied requests (every endpoint, several ids and tokens): more distinct keys than the cache holds."""
    pool = []
    for endpoint in engine.catalog.endpoints:
        for i in range(ids):
            path = concrete(endpoint.template, f"id{i}")
            for scopes in SCOPE_SETS:
                request = pb.CheckRequest(token=pb.Token(scopes=scopes), method=endpoint.method, path=path)
                pool.append((request, Token(scopes), endpoint.method, path))
    return pool


@dataclass
class Tally:
    ok: int = 0
    wrong: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def error(self, code: str) -> None:
        self.errors[code] = self.errors.get(code, 0) + 1

    @property
    def failed(self) -> int:
        return sum(self.errors.values())


async def drive(address: str, seconds: float, check: Callable[[pb.CheckRequest, pb.CheckResponse], bool],
                pool: list[pb.CheckRequest], tally: Tally, during: Callable[[], object] | None = None) -> None:
    """Send Check requests from `pool` with CONCURRENCY workers for `seconds`; verify each answer."""
    deadline = time.monotonic() + seconds
    sent = 0

    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.ScopeServiceStub(channel)

        async def worker(seed: int) -> None:
            nonlocal sent
            rng = random.Random(seed)
            while time.monotonic() < deadline and sent < MAX_REQUESTS:
                sent += 1
                request = pool[rng.randrange(len(pool))]
                try:
                    response = await stub.Check(request, timeout=10)
                except grpc.aio.AioRpcError as exc:
                    tally.error(exc.code().name)
                    continue
                if check(request, response):
                    tally.ok += 1
                else:
                    tally.wrong += 1

        tasks = [asyncio.create_task(worker(i)) for i in range(CONCURRENCY)]
        if during is not None:
            await asyncio.to_thread(during)
        await asyncio.gather(*tasks)


def report(name: str, **figures: object) -> None:
    print(f"\n[hardening] {name}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))


# -- sustained load -----------------------------------------------------------------------


def test_sustained_load_no_errors_and_flat_memory(tmp_path):
    items = request_pool()
    expected = {id(r): ENGINE.check(tok, m, p).allowed for r, tok, m, p in items}
    pool = [r for r, *_ in items]
    server = ServeProcess(tmp_path, "--cache-size", "2000", "--grace", "5")
    try:
        tally = Tally()
        warmup = max(3.0, LOAD_SECONDS * 0.2)
        rss_start = rss_kib(server.proc.pid)
        asyncio.run(drive(server.address, warmup, lambda r, resp: resp.allowed == expected[id(r)], pool, tally))
        rss_warm = rss_kib(server.proc.pid)
        start = time.monotonic()
        asyncio.run(drive(server.address, LOAD_SECONDS - warmup, lambda r, resp: resp.allowed == expected[id(r)],
                          pool, tally))
        elapsed = time.monotonic() - start
        rss_end = rss_kib(server.proc.pid)
        total = tally.ok + tally.wrong + tally.failed
        report("sustained load", seconds=LOAD_SECONDS, concurrency=CONCURRENCY, requests=total,
               rps=round(total / (elapsed + warmup)), failed=tally.failed, wrong=tally.wrong,
               rss_start_mib=round(rss_start / 1024, 1), rss_after_warmup_mib=round(rss_warm / 1024, 1),
               rss_end_mib=round(rss_end / 1024, 1))
        assert total > 1000, "the load generator sent too little to say anything"
        assert tally.failed == 0 and tally.errors == {}, tally.errors
        assert tally.wrong == 0
        # Flat: after warm-up (cache full), growth stays under 10% + 8 MiB whatever the run length.
        assert rss_end - rss_warm < rss_warm * 0.10 + 8 * 1024, (rss_warm, rss_end)
        assert server.health() == health_pb2.HealthCheckResponse.SERVING
    finally:
        assert server.close() == 0
    assert "Traceback" not in server.log()


# -- reloads under load -------------------------------------------------------------------


def test_good_and_bad_reloads_under_load(tmp_path):
    base = catalog_files.builtin_path("calendly.yaml").read_text()
    # Version B moves GET /users/{uuid} behind organizations:read: visibly different answers.
    variant = base.replace('revision: "2026-11-19"', 'revision: "B"').replace(
        "path: /users/{uuid}\n    scopes: [users:read]", "path: /users/{uuid}\n    scopes: [organizations:read]")
    assert variant.count('revision: "B"') == 1
    versions = {"A": base, "B": variant}
    engines = {}
    for text in versions.values():
        catalog = catalog_files.load_bytes(text.encode(), "x")
        engines[catalog.revision] = Engine(catalog)
    bad = ["format: scopesvc.catalog/v1\nname: broken\nscopes: []\n", "a: &a [1]\nb: *a\n", "\xff not yaml: [",
           base.replace("scopes_introduced_at:", "scopes_introduced_at: 2026-13-45\n  x:")]
    path = tmp_path / "catalog.yaml"
    path.write_text(base)
    items = [(pb.CheckRequest(token=pb.Token(scopes=s), method="GET", path=p), Token(s), p)
             for p in ("/users/u1", "/users/me", "/organizations/o1", "/users/%2e%2e", "/event_types")
             for s in SCOPE_SETS]
    by_id = {id(r): (tok, p) for r, tok, p in items}
    seen: dict[str, int] = {}

    def check(request: pb.CheckRequest, response: pb.CheckResponse) -> bool:
        engine = engines.get(response.catalog_revision)
        seen[response.catalog_revision] = seen.get(response.catalog_revision, 0) + 1
        if engine is None:
            return False
        tok, p = by_id[id(request)]
        return response.allowed == engine.check(tok, "GET", p).allowed

    swaps = {"good": 0, "bad": 0}

    def reload_loop() -> None:
        deadline = time.monotonic() + 9
        i = 0
        while time.monotonic() < deadline:
            i += 1
            if i % 2:
                path.write_bytes(bad[(i // 2) % len(bad)].encode("utf-8", "surrogateescape"))
                swaps["bad"] += 1
            else:
                path.write_text(versions["B" if (i // 2) % 2 else "A"])
                swaps["good"] += 1
            if i % 3 == 0:
                server.signal(signal.SIGHUP)
            time.sleep(0.4)
        path.write_text(versions["B"])

    server = ServeProcess(tmp_path, "--catalog", str(path), "--reload-interval", "0.1", "--grace", "5")
    try:
        tally = Tally()
        asyncio.run(drive(server.address, 10, check, [r for r, *_ in items], tally, during=reload_loop))
        total = tally.ok + tally.wrong + tally.failed
        report("reloads under load", requests=total, failed=tally.failed, wrong=tally.wrong,
               good_writes=swaps["good"], bad_writes=swaps["bad"], answers_by_revision=seen)
        assert tally.failed == 0 and tally.wrong == 0, (tally.errors, seen)
        assert len(seen) == 2, f"both catalog versions served: {seen}"

        def serving_b() -> bool:
            response = pb_grpc.ScopeServiceStub(server.channel).Check(items[0][0], timeout=5)
            return response.catalog_revision.startswith("B+")
        deadline = time.monotonic() + 10
        while not serving_b() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert serving_b(), "the last good catalog is served after the reloads"
    finally:
        assert server.close() == 0
    log = server.log()
    assert "rejected" in log and "Traceback" not in log


# -- SIGTERM under load, with a health-checked peer ---------------------------------------


class FailoverClient:
    """Sends each Check to a server health reports SERVING; an RPC the draining server refuses
    (UNAVAILABLE: it never ran) is re-sent once to the other server."""

    def __init__(self, addresses: list[str]) -> None:
        self.channels = [grpc.aio.insecure_channel(a) for a in addresses]
        self.stubs = [pb_grpc.ScopeServiceStub(c) for c in self.channels]
        self.health = [health_pb2_grpc.HealthStub(c) for c in self.channels]
        self.current = 0
        self.rerouted = 0
        self.switches = 0

    async def watch(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                status = (await self.health[self.current].Check(health_pb2.HealthCheckRequest(), timeout=1)).status
            except grpc.aio.AioRpcError:
                status = health_pb2.HealthCheckResponse.NOT_SERVING
            if status != health_pb2.HealthCheckResponse.SERVING:
                self.current = 1 - self.current
                self.switches += 1
            await asyncio.sleep(0.02)

    async def check(self, request: pb.CheckRequest) -> pb.CheckResponse:
        target = self.current
        try:
            return await self.stubs[target].Check(request, timeout=10)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.UNAVAILABLE:
                raise
        self.rerouted += 1
        self.current = 1 - target
        return await self.stubs[1 - target].Check(request, timeout=10)

    async def close(self) -> None:
        for channel in self.channels:
            await channel.close()


def test_sigterm_under_load_drains_and_the_peer_takes_over(tmp_path):
    first = ServeProcess(tmp_path, "--grace", "10", "--cache-size", "0")
    second = ServeProcess(tmp_path, "--grace", "10")
    request = pb.CheckRequest(token=pb.Token(scopes=["users:read"]), method="GET", path="/users/me")
    heavy = pb.CheckBatchRequest(checks=[pb.CheckRequest(token=pb.Token(scopes=["users:read", f"junk{i}"]),
                                                         method="GET", path=f"/users/u{i}") for i in range(1000)])
    tally = Tally()
    inflight = {"sent": 0, "completed": 0, "failed": 0}

    async def scenario() -> None:
        client = FailoverClient([first.address, second.address])
        stop = asyncio.Event()
        watcher = asyncio.create_task(client.watch(stop))
        deadline = time.monotonic() + 8

        async def worker() -> None:
            while time.monotonic() < deadline:
                try:
                    response = await client.check(request)
                except grpc.aio.AioRpcError as exc:
                    tally.error(exc.code().name)
                    continue
                tally.ok += response.allowed
                tally.wrong += not response.allowed

        async def batch(stub: pb_grpc.ScopeServiceStub) -> None:
            inflight["sent"] += 1
            try:
                response = await stub.CheckBatch(heavy, timeout=30)
                inflight["completed"] += len(response.results) == 1000 and all(r.allowed for r in response.results)
            except grpc.aio.AioRpcError:
                inflight["failed"] += 1

        workers = [asyncio.create_task(worker()) for _ in range(CONCURRENCY)]
        await asyncio.sleep(2)
        # Slow requests in flight on the first server at the moment it is told to stop.
        heavy_stub = pb_grpc.ScopeServiceStub(client.channels[0])
        batches = [asyncio.create_task(batch(heavy_stub)) for _ in range(6)]
        await asyncio.sleep(0.05)
        first.signal(signal.SIGTERM)
        await asyncio.gather(*batches)
        await asyncio.gather(*workers)
        stop.set()
        await watcher
        report("SIGTERM under load", requests=tally.ok + tally.wrong + tally.failed, failed=tally.failed,
               rerouted_to_peer=client.rerouted, health_switches=client.switches,
               inflight_batches=inflight["sent"], inflight_completed=inflight["completed"])
        await client.close()

    try:
        asyncio.run(scenario())
        assert first.proc.wait(timeout=20) == 0, first.log()
        assert tally.failed == 0 and tally.wrong == 0, tally.errors
        assert inflight["completed"] == inflight["sent"] == 6, inflight
        assert second.health() == health_pb2.HealthCheckResponse.SERVING
    finally:
        first.close()
        second.close()
    assert "Traceback" not in first.log() + second.log()


# -- overload -----------------------------------------------------------------------------


def _burst(address: str, calls: int) -> tuple[list[float], list[float], list[str]]:
    """`calls` CheckBatch calls at once on 4 connections: (served latencies, refused latencies, other codes)."""
    batch = pb.CheckBatchRequest(checks=[pb.CheckRequest(token=pb.Token(scopes=["users:read"]), method="GET",
                                                         path=f"/users/u{i}/x/{i}") for i in range(10)])
    served: list[float] = []
    refused: list[float] = []
    other: list[str] = []

    async def scenario() -> None:
        channels = [grpc.aio.insecure_channel(address) for _ in range(4)]
        stubs = [pb_grpc.ScopeServiceStub(channel) for channel in channels]

        async def one(stub: pb_grpc.ScopeServiceStub) -> None:
            start = time.monotonic()
            try:
                await stub.CheckBatch(batch, timeout=60)
                served.append(time.monotonic() - start)
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                    refused.append(time.monotonic() - start)
                else:
                    other.append(exc.code().name)

        await asyncio.gather(*(one(stubs[i % len(stubs)]) for i in range(calls)))
        for channel in channels:
            await channel.close()

    asyncio.run(scenario())
    return served, refused, other


def _ms(values: list[float], q: float) -> int | None:
    return round(1000 * sorted(values)[int(q * (len(values) - 1))]) if values else None


def test_overload_is_refused_with_resource_exhausted(tmp_path):
    """A burst far beyond --max-concurrent-rpcs is refused with RESOURCE_EXHAUSTED, not queued.

    The limit counts calls still waiting in gRPC's transport (docs/hardening.md), so nearly the
    whole burst is refused, and the refusals come back before the burst could have been served.
    The same burst against a server without a limit is the baseline.
    """
    unlimited = ServeProcess(tmp_path, "--cache-size", "0")
    try:
        baseline, refused_without_limit, other = _burst(unlimited.address, 1000)
        assert not other and not refused_without_limit and len(baseline) == 1000
    finally:
        assert unlimited.close() == 0
    server = ServeProcess(tmp_path, "--max-concurrent-rpcs", "4", "--cache-size", "0")
    try:
        served, refused, other = _burst(server.address, 1000)
        report("overload (max 4 concurrent, 1000 calls at once on 4 connections)", served=len(served),
               refused=len(refused), other_errors=len(other), refused_p50_ms=_ms(refused, 0.5),
               refused_max_ms=_ms(refused, 1.0), served_max_ms=_ms(served, 1.0),
               same_burst_unlimited_p50_ms=_ms(baseline, 0.5), same_burst_unlimited_max_ms=_ms(baseline, 1.0))
        assert not other, other
        assert len(served) + len(refused) == 1000
        assert len(refused) >= 900  # the backlog is refused, not served late
        assert _ms(refused, 0.5) < _ms(baseline, 0.5)  # and refusing it is quicker than serving it
        with grpc.insecure_channel(server.address) as channel:
            stub = pb_grpc.ScopeServiceStub(channel)
            check = pb.CheckRequest(token=pb.Token(scopes=["users:read"]), method="GET", path="/users/me")
            assert stub.Check(check, timeout=5).allowed  # once the burst is gone, calls are served again
        assert server.health() == health_pb2.HealthCheckResponse.SERVING
    finally:
        assert server.close() == 0


# -- clients that go away -----------------------------------------------------------------


def test_clients_that_disconnect_mid_call_do_not_hurt_the_server(tmp_path):
    server = ServeProcess(tmp_path, "--cache-size", "0")
    heavy = pb.CheckBatchRequest(checks=[pb.CheckRequest(token=pb.Token(scopes=["users:read"]), method="GET",
                                                         path=f"/users/u{i}") for i in range(1000)])
    counts = {"cancelled": 0, "dropped_channels": 0, "raw_sockets": 0}

    async def cancel_calls() -> None:
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = pb_grpc.ScopeServiceStub(channel)
            for _ in range(40):
                calls = [stub.CheckBatch(heavy) for _ in range(5)]
                await asyncio.sleep(0.005)
                for call in calls:
                    counts["cancelled"] += call.cancel()

    async def drop_channels() -> None:
        for _ in range(30):
            channel = grpc.aio.insecure_channel(server.address)
            stub = pb_grpc.ScopeServiceStub(channel)
            calls = [asyncio.ensure_future(stub.CheckBatch(heavy)) for _ in range(3)]
            await asyncio.sleep(0.01)
            await channel.close()  # cancels what is in flight
            await asyncio.gather(*calls, return_exceptions=True)
            counts["dropped_channels"] += 1

    def raw_sockets() -> None:
        # A connection that sends half an HTTP/2 preface, or garbage, then vanishes.
        host, port = server.address.rsplit(":", 1)
        for payload in (b"PRI * HTTP/2.0\r\n", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", os.urandom(512), b""):
            for _ in range(10):
                with socket.create_connection((host, int(port)), timeout=5) as sock:
                    sock.sendall(payload)
                counts["raw_sockets"] += 1

    try:
        rss_before = rss_kib(server.proc.pid)
        asyncio.run(cancel_calls())
        asyncio.run(drop_channels())
        raw_sockets()
        time.sleep(0.5)
        rss_after = rss_kib(server.proc.pid)
        report("disconnecting clients", **counts, rss_before_mib=round(rss_before / 1024, 1),
               rss_after_mib=round(rss_after / 1024, 1))
        with grpc.insecure_channel(server.address) as channel:
            stub = pb_grpc.ScopeServiceStub(channel)
            assert len(stub.CheckBatch(heavy, timeout=30).results) == 1000
            assert not stub.Check(pb.CheckRequest(token=pb.Token(scopes=["users:read"]), method="GET",
                                                  path="/organizations/o"), timeout=5).allowed
        assert server.health() == health_pb2.HealthCheckResponse.SERVING
        assert server.proc.poll() is None
    finally:
        assert server.close() == 0
    assert "Traceback" not in server.log()
