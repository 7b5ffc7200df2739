"""Prometheus metrics: decisions, the decision cache, the catalog, and standard gRPC server metrics.

Each server owns its registry (two servers in one process do not collide). Labels are bounded
by the code and the catalog: RPC names, reasons, gRPC codes, catalog name and revision; never
a concrete path or anything from a token.
"""

from __future__ import annotations

import time
from typing import Any

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from .policy import Catalog, Reason

# Decisions take microseconds; RPCs up to a CheckBatch of 1,000 checks.
DECISION_BUCKETS = (1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 0.1)
RPC_BUCKETS = (1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0, 5.0)


class Metrics:
    """The metrics of one server, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.decisions = Counter("scopesvc_decisions", "Check decisions made, by RPC or gateway adapter, result and reason.",
                                 ["rpc", "result", "reason"], registry=r)
        self.dry_run_allowed = Counter("scopesvc_dry_run_allowed", "Denied decisions allowed because of dry-run mode.",
                                       ["rpc"], registry=r)
        self.decision_seconds = Histogram("scopesvc_decision_seconds", "Time to make one decision (cache included).",
                                          ["rpc"], buckets=DECISION_BUCKETS, registry=r)
        self.cache_hits = Counter("scopesvc_cache_hits", "Decisions answered from the cache.", registry=r)
        self.cache_misses = Counter("scopesvc_cache_misses", "Decisions the cache did not hold.", registry=r)
        self.cache_entries = Gauge("scopesvc_cache_entries", "Decisions held in the cache.", registry=r)
        self.catalog_info = Gauge("scopesvc_catalog_info", "The catalog being served (value 1).",
                                  ["name", "revision"], registry=r)
        self.catalog_loaded = Gauge("scopesvc_catalog_loaded_timestamp_seconds",
                                    "When the catalog being served was loaded (Unix time).", registry=r)
        self.catalog_load_seconds = Gauge("scopesvc_catalog_load_duration_seconds",
                                          "How long reading and compiling the catalog being served took.", registry=r)
        self.catalog_reloads = Counter("scopesvc_catalog_reloads", "Catalog reloads that swapped in a new catalog.",
                                       registry=r)
        self.catalog_reload_failures = Counter("scopesvc_catalog_reload_failures",
                                               "Catalog reloads rejected (the old catalog kept serving).", registry=r)
        self.decision_log_dropped = Counter("scopesvc_decision_log_dropped",
                                            "Decision log records dropped because the writer fell behind.", registry=r)
        labels = ["grpc_type", "grpc_service", "grpc_method"]
        self.grpc_started = Counter("grpc_server_started", "RPCs started on the server.", labels, registry=r)
        self.grpc_handled = Counter("grpc_server_handled", "RPCs completed on the server, regardless of outcome.",
                                    labels + ["grpc_code"], registry=r)
        self.grpc_seconds = Histogram("grpc_server_handling_seconds",
                                      "Time to handle an RPC until it completed, regardless of outcome.",
                                      labels + ["grpc_code"], buckets=RPC_BUCKETS, registry=r)
        self._http: Any = None
        self._decision_children: dict[tuple[str, bool, Reason], tuple[Any, Any]] = {}

    def set_catalog(self, catalog: Catalog, load_seconds: float) -> None:
        self.catalog_info.clear()
        self.catalog_info.labels(catalog.name, catalog.revision).set(1)
        self.catalog_loaded.set(time.time())
        self.catalog_load_seconds.set(load_seconds)

    def serve_http(self, host: str, port: int) -> int:
        """Expose the registry over HTTP on a background thread; return the bound port."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        self._http = server
        return int(server.server_port)

    def stop_http(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None

    def record_decision(self, rpc: str, allowed: bool, reason: Reason, seconds: float) -> None:
        """Count one decision and its time, through label children bound once per combination."""
        key = (rpc, allowed, reason)
        children = self._decision_children.get(key)
        if children is None:
            children = self._decision_children[key] = (
                self.decisions.labels(rpc, "allow" if allowed else "deny", reason.name),
                self.decision_seconds.labels(rpc),
            )
        children[0].inc()
        children[1].observe(seconds)

    def rpc(self, service: str, method: str) -> RpcMetrics:
        """The grpc_server_* series of one unary method."""
        return RpcMetrics(self, ("unary", service, method))


class RpcMetrics:
    """grpc_server_started/handled/handling_seconds of one method, with label children bound once.

    Binding a child (`labels(...)`) costs more than counting with it, and these are counted on
    every RPC, so the children are looked up once per method and status code.
    """

    __slots__ = ("_metrics", "_labels", "started", "_by_code")

    def __init__(self, metrics: Metrics, labels: tuple[str, str, str]) -> None:
        self._metrics = metrics
        self._labels = labels
        self.started = metrics.grpc_started.labels(*labels)
        self._by_code: dict[grpc.StatusCode, tuple[Any, Any]] = {}

    def handled(self, code: grpc.StatusCode, seconds: float) -> None:
        children = self._by_code.get(code)
        if children is None:
            metrics, labels = self._metrics, (*self._labels, code.name)
            children = self._by_code[code] = (metrics.grpc_handled.labels(*labels),
                                              metrics.grpc_seconds.labels(*labels))
        children[0].inc()
        children[1].observe(seconds)
