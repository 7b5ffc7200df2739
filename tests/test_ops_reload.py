"""Catalog hot reload: file rewrite, ConfigMap-style symlink swap, SIGHUP, bad catalogs, and load."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

import grpc
import pytest

from scopesvc.v1 import scopesvc_pb2 as pb
from scopesvc.v1 import scopesvc_pb2_grpc as pb_grpc

from .ops_helpers import (
    BAD_CATALOG,
    CATALOG_A,
    CATALOG_B,
    ServeProcess,
    check_a,
    free_port,
    running,
    sample,
    scrape,
    wait_for,
)


def revision(stub) -> str:  # type: ignore[no-untyped-def]
    return stub.Check(check_a()).catalog_revision.split("+")[0]


def test_reload_on_file_rewrite(tmp_path):
    path = tmp_path / "catalog.yaml"
    path.write_text(CATALOG_A)
    with running(catalog=str(path), reload_interval=0.05) as (server, stub):
        assert stub.Check(check_a()).allowed
        path.write_text(CATALOG_B)
        wait_for(lambda: revision(stub) == "B")
        response = stub.Check(check_a())
        assert not response.allowed and list(response.missing_scopes) == ["b.read"]
        assert server.server.metrics.catalog_reloads._value.get() == 1


def _configmap_version(root, name: str, text: str) -> None:  # type: ignore[no-untyped-def]
    """Publish a catalog as the kubelet does: a new timestamped dir, then an atomic `..data` swap."""
    version = root / f"..{name}"
    version.mkdir()
    (version / "catalog.yaml").write_text(text)
    tmp_link = root / "..data_tmp"
    os.symlink(version.name, tmp_link)
    os.replace(tmp_link, root / "..data")


def test_reload_on_configmap_symlink_swap(tmp_path):
    _configmap_version(tmp_path, "2026_01_01_a", CATALOG_A)
    os.symlink("..data/catalog.yaml", tmp_path / "catalog.yaml")
    with running(catalog=str(tmp_path / "catalog.yaml"), reload_interval=0.05) as (_, stub):
        assert revision(stub) == "A"
        _configmap_version(tmp_path, "2026_01_02_b", CATALOG_B)
        for old in (tmp_path / "..2026_01_01_a").iterdir():
            old.unlink()
        (tmp_path / "..2026_01_01_a").rmdir()
        wait_for(lambda: revision(stub) == "B")


def test_bad_catalog_is_rejected_and_old_keeps_serving(tmp_path, caplog):
    path = tmp_path / "catalog.yaml"
    path.write_text(CATALOG_A)
    with running(catalog=str(path), reload_interval=0.05, metrics_port=free_port()) as (server, stub):
        port = server.server.metrics_port
        with caplog.at_level(logging.ERROR, logger="scopesvc.ops.reload"):
            path.write_text(BAD_CATALOG)
            wait_for(lambda: sample(scrape(port), "scopesvc_catalog_reload_failures_total") == 1)
            time.sleep(0.2)  # polls while the file is unchanged do not retry it
        assert sample(scrape(port), "scopesvc_catalog_reload_failures_total") == 1
        assert any("rejected" in r.message and "still serving ops-test revision A+" in r.message
                   and "at least one scope" in r.message for r in caplog.records)
        assert stub.Check(check_a()).allowed and revision(stub) == "A"
        path.write_text(CATALOG_B)
        wait_for(lambda: revision(stub) == "B")
        text = scrape(port)
        assert sample(text, "scopesvc_catalog_reloads_total") == 1
        assert sample(text, "scopesvc_catalog_info", name="ops-test") == 1
        assert sample(text, "scopesvc_catalog_info", revision=server.server.ref.engine.catalog.revision) == 1


def test_reload_on_sighup(tmp_path):
    path = tmp_path / "catalog.yaml"
    path.write_text(CATALOG_A)
    server = ServeProcess(tmp_path, "--catalog", str(path), "--reload-interval", "0")
    try:
        stub = pb_grpc.ScopeServiceStub(server.channel)
        assert revision(stub) == "A"
        path.write_text(CATALOG_B)
        time.sleep(0.3)
        assert revision(stub) == "A"  # no polling: only SIGHUP reloads
        server.signal(signal.SIGHUP)
        wait_for(lambda: revision(stub) == "B")
        path.write_text(BAD_CATALOG)
        server.signal(signal.SIGHUP)
        wait_for(lambda: "rejected" in server.log())
        assert revision(stub) == "B"
    finally:
        assert server.close() == 0


@pytest.mark.parametrize("cache_size", ["1000", "0"])
def test_reload_under_load_never_fails_or_mixes_catalogs(tmp_path, cache_size):
    """Clients hammer the server while the catalog flips between A and B; every answer is
    consistent with exactly one catalog (a batch with one catalog throughout), none fails."""
    path = tmp_path / "catalog.yaml"
    path.write_text(CATALOG_A)
    server = ServeProcess(tmp_path, "--catalog", str(path), "--reload-interval", "0.02", "--cache-size", cache_size)
    deadline = time.monotonic() + 2.5
    failures: list[str] = []
    seen: set[str] = set()
    counts = [0]
    lock = threading.Lock()

    def consistent(response: pb.CheckResponse) -> str | None:
        rev = response.catalog_revision.split("+")[0]
        ok = (rev == "A" and response.allowed and not response.missing_scopes) or (
            rev == "B" and not response.allowed and list(response.missing_scopes) == ["b.read"])
        return rev if ok else None

    def client(batch: bool) -> None:
        with grpc.insecure_channel(server.address) as channel:
            stub = pb_grpc.ScopeServiceStub(channel)
            for i in range(20000):
                if time.monotonic() > deadline:
                    return
                try:
                    if batch:
                        results = stub.CheckBatch(pb.CheckBatchRequest(
                            checks=[check_a(f"/things/{j}") for j in range(20)]), timeout=10).results
                    else:
                        results = [stub.Check(check_a(f"/things/{i % 50}"), timeout=10)]
                except grpc.RpcError as exc:
                    with lock:
                        failures.append(f"{exc.code()}: {exc.details()}")
                    continue
                revs = {consistent(r) for r in results}
                with lock:
                    counts[0] += len(results)
                    if None in revs or len(revs) != 1:
                        failures.append(f"inconsistent answer: {results[0]}")
                    seen.update(r for r in revs if r)

    threads = [threading.Thread(target=client, args=(i == 0,)) for i in range(4)]
    try:
        for thread in threads:
            thread.start()
        flips = 0
        while time.monotonic() < deadline:
            flips += 1
            path.write_text(CATALOG_B if flips % 2 else CATALOG_A)
            time.sleep(0.1)
        for thread in threads:
            thread.join(timeout=20)
        reloads = sample(scrape(server.metrics_port), "scopesvc_catalog_reloads_total")
    finally:
        assert server.close() == 0
    assert not failures, failures[:5]
    print(f"reload under load (cache size {cache_size}): {counts[0]} answers, {reloads:.0f} reloads, 0 failures")
    assert seen == {"A", "B"} and reloads >= 8 and counts[0] > 500, (seen, reloads, counts)
