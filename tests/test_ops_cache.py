"""The decision cache: hits and misses, identical answers with and without it, cleared on reload."""

from __future__ import annotations

import datetime as dt
import time

import grpc
import pytest

from scopesvc.ops.cache import decision_key
from scopesvc.policy import Token, TokenFormat
from scopesvc.v1 import scopesvc_pb2 as pb

from .helpers import LEGACY_TIME, SCOPED_TIME, concrete, token
from .ops_helpers import CATALOG_A, CATALOG_B, check_a, running

TOKENS = [
    token("users:read"),
    token("scheduled_events:write", "users:read", "unknown:scope"),
    token("users:read", "scheduled_events:write"),  # same set, other order: unknown_scopes order may differ
    token(),
    token(issued=LEGACY_TIME),
    token(issued=LEGACY_TIME + 1),
    token("users:read", issued=SCOPED_TIME),
    token("users:read", fmt=pb.TOKEN_FORMAT_LEGACY),
    token("users:read", kind=pb.TOKEN_KIND_PERSONAL_ACCESS_TOKEN),
    token(kind=pb.TOKEN_KIND_PERSONAL_ACCESS_TOKEN),
    pb.Token(scopes=["users:read"], format=7),  # type: ignore[arg-type]
]


def _requests(engine) -> list[pb.CheckRequest]:  # type: ignore[no-untyped-def]
    paths = [(e.method, concrete(e.template)) for e in engine.catalog.endpoints[::3]]
    paths += [("GET", "/users/me?x=1"), ("GET", "/nope"), ("GET", "/a/../b"), ("get", "/users/me")]
    return [pb.CheckRequest(token=t, method=m, path=p) for t in TOKENS for m, p in paths]


def test_cached_answers_equal_uncached(engine):
    requests = _requests(engine)
    with running(cache_size=100000) as (cached, cached_stub), running(cache_size=0) as (_, plain_stub):
        for _round in range(2):  # the second round is answered from the cache
            for request in requests:
                assert cached_stub.Check(request) == plain_stub.Check(request)
            batch = pb.CheckBatchRequest(checks=requests[:500])
            assert cached_stub.CheckBatch(batch) == plain_stub.CheckBatch(batch)
        metrics = cached.server.metrics
        assert metrics.cache_hits.value >= len(requests)
        assert metrics.cache_misses.value <= len(requests)


def test_key_uses_resolved_format_not_the_timestamp(engine):
    when = dt.datetime.fromtimestamp(LEGACY_TIME, dt.timezone.utc)
    later = when + dt.timedelta(days=30)
    key = decision_key(engine, Token(("users:read",), issued_at=when), "GET", "/users/me")
    assert key == decision_key(engine, Token(("users:read",), issued_at=later), "GET", "/users/me")
    assert key == decision_key(engine, Token(("users:read",), TokenFormat.LEGACY), "GET", "/users/me")
    scoped = dt.datetime.fromtimestamp(SCOPED_TIME, dt.timezone.utc)
    assert key != decision_key(engine, Token(("users:read",), issued_at=scoped), "GET", "/users/me")
    assert key != decision_key(engine, Token(("users:read",), 9), "GET", "/users/me")


def test_hit_miss_and_invalidation_on_reload(tmp_path):
    path = tmp_path / "catalog.yaml"
    path.write_text(CATALOG_A)
    with running(catalog=str(path), reload_interval=0) as (server, stub):
        metrics = server.server.metrics
        first = stub.Check(check_a())
        assert first.allowed and first.catalog_revision.startswith("A+")
        assert stub.Check(check_a()) == first
        assert (metrics.cache_misses.value, metrics.cache_hits.value) == (1, 1)
        assert len(server.server.cache) == 1
        with pytest.raises(grpc.RpcError):  # rejected before deciding: nothing cached
            stub.Check(pb.CheckRequest(method="GET", path="/x"))
        assert len(server.server.cache) == 1
        path.write_text(CATALOG_B)
        assert server.call(server.server.reload("test"))
        assert len(server.server.cache) == 0
        after = stub.Check(check_a())
        assert not after.allowed and list(after.missing_scopes) == ["b.read"]
        assert after.catalog_revision.startswith("B+")
        assert metrics.cache_misses.value == 2


def test_ttl_expires_entries():
    with running(cache_size=10, cache_ttl=0.2) as (server, stub):
        stub.Check(pb.CheckRequest(token=token("users:read"), method="GET", path="/users/me"))
        assert len(server.server.cache) == 1
        time.sleep(0.3)
        assert len(server.server.cache) == 0


def test_cache_is_bounded():
    with running(cache_size=5) as (server, stub):
        for i in range(20):
            stub.Check(pb.CheckRequest(token=token("users:read"), method="GET", path=f"/scheduled_events/{i}"))
        assert len(server.server.cache) == 5
