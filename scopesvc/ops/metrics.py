"""Prometheus metrics: decisions, the decision cache, the catalog, and standard gRPC server metrics.

Each server owns its registry (two servers in one process do not collide). Labels are bounded
by the code and the catalog: RPC names, reasons, gRPC codes, catalog name and revision; never
a concrete path or anything from a token.

The series counted on every request (decisions, grpc_server_*) are `LoopCounter` and
`LoopHistogram`: plain numbers that only the event loop's thread changes (every RPC and every
gateway decision runs there), exposed through a collector at scrape time. prometheus_client's
own children take a lock and validate their input on each call, which cost 3.6 us of the 12 us
a Check spent in Python; these cost under 1 us. Everything else uses prometheus_client's types.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from ..policy import Catalog, Reason

# Decisions take microseconds; RPCs up to a CheckBatch of 1,000 checks.
DECISION_BUCKETS = (1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 0.1)
RPC_BUCKETS = (1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0, 5.0)
_OK = grpc.StatusCode.OK


S = TypeVar("S")


class Tally:
    """One counter series of a `LoopCounter`."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def inc(self) -> None:
        self.value += 1


class TimeTally:
    """One histogram series of a `LoopHistogram`: a count per bucket (the last is +Inf) and the sum."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(self.bounds, seconds)] += 1  # the first bucket whose bound is >= seconds
        self.sum += seconds


class _LoopFamily(Generic[S]):
    """Series by label values, made on first use; registered with the registry, which collects them at scrape."""

    def __init__(self, name: str, documentation: str, labelnames: list[str], registry: CollectorRegistry,
                 new_series: Callable[[], S]) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, labelnames
        self._new_series = new_series
        self._series: dict[tuple[str, ...], S] = {}
        registry.register(self)

    def labels(self, *values: str) -> S:
        series = self._series.get(values)
        if series is None:
            series = self._series[values] = self._new_series()
        return series

    def _snapshot(self) -> list[tuple[tuple[str, ...], S]]:
        return list(self._series.items())  # one C-level copy: safe beside the loop's thread adding series


class LoopCounter(_LoopFamily[Tally]):
    """A labelled counter changed only from the event loop's thread."""

    def __init__(self, name: str, documentation: str, labelnames: list[str], registry: CollectorRegistry) -> None:
        super().__init__(name, documentation, labelnames, registry, Tally)

    def describe(self) -> Iterator[Metric]:
        yield CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, series in self._snapshot():
            family.add_metric(values, series.value)
        yield family


class LoopHistogram(_LoopFamily[TimeTally]):
    """A labelled histogram changed only from the event loop's thread."""

    def __init__(self, name: str, documentation: str, labelnames: list[str], buckets: tuple[float, ...],
                 registry: CollectorRegistry) -> None:
        bounds = tuple(sorted(buckets))
        self._les = [floatToGoString(b) for b in bounds] + ["+Inf"]
        super().__init__(name, documentation, labelnames, registry, lambda: TimeTally(bounds))

    def describe(self) -> Iterator[Metric]:
        yield HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, series in self._snapshot():
            counts, total = list(series.counts), series.sum
            cumulative, buckets = 0, []
            for le, count in zip(self._les, counts):
                cumulative += count
                buckets.append((le, cumulative))
            family.add_metric(values, buckets, total)
        yield family


class Metrics:
    """The metrics of one server, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.decisions = LoopCounter("scopesvc_decisions",
                                     "Check decisions made, by RPC or gateway adapter, result and reason.",
                                     ["rpc", "result", "reason"], r)
        self.dry_run_allowed = LoopCounter("scopesvc_dry_run_allowed", "Denied decisions allowed because of dry-run mode.",
                                           ["rpc"], r)
        self.decision_seconds = LoopHistogram("scopesvc_decision_seconds", "Time to make one decision (cache included).",
                                              ["rpc"], DECISION_BUCKETS, r)
        self.cache_hits = LoopCounter("scopesvc_cache_hits", "Decisions answered from the cache.", [], r).labels()
        self.cache_misses = LoopCounter("scopesvc_cache_misses", "Decisions the cache did not hold.", [], r).labels()
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
        self.token_verifications = LoopCounter(
            "scopesvc_token_verifications", "Bearer tokens verified (cache hits not included), by configured issuer "
            "(or 'unknown') and result: valid, expired, bad_signature, unknown_kid, wrong_audience, ...",
            ["issuer", "result"], r)
        self.token_cache_hits = LoopCounter("scopesvc_token_cache_hits", "Bearer tokens answered from the token cache.",
                                            [], r).labels()
        self.token_cache_misses = LoopCounter("scopesvc_token_cache_misses",
                                              "Bearer tokens the token cache did not hold.", [], r).labels()
        self.jwks_fetches = Counter("scopesvc_jwks_fetches", "Key-set (JWKS) fetches by issuer and result (ok, error).",
                                    ["issuer", "result"], registry=r)
        self.jwks_age = Gauge("scopesvc_jwks_age_seconds", "Seconds since the issuer's key set was last fetched "
                              "successfully (0: never).", ["issuer"], registry=r)
        self.introspection_seconds = Histogram("scopesvc_introspection_seconds",
                                               "Time of RFC 7662 introspection requests, by issuer.", ["issuer"],
                                               buckets=RPC_BUCKETS, registry=r)
        labels = ["grpc_type", "grpc_service", "grpc_method"]
        self.grpc_started = LoopCounter("grpc_server_started", "RPCs started on the server.", labels, r)
        self.grpc_handled = LoopCounter("grpc_server_handled", "RPCs completed on the server, regardless of outcome.",
                                        labels + ["grpc_code"], r)
        self.grpc_seconds = LoopHistogram("grpc_server_handling_seconds",
                                          "Time to handle an RPC until it completed, regardless of outcome.",
                                          labels + ["grpc_code"], RPC_BUCKETS, r)
        self._http: Any = None
        self._decision_series: dict[tuple[str, bool, Reason], tuple[Tally, TimeTally]] = {}

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
        """Count one decision and its time, in series looked up once per combination."""
        key = (rpc, allowed, reason)
        series = self._decision_series.get(key)
        if series is None:
            series = self._decision_series[key] = (
                self.decisions.labels(rpc, "allow" if allowed else "deny", reason.name),
                self.decision_seconds.labels(rpc),
            )
        series[0].value += 1  # Tally.inc, inline: this runs on every request
        series[1].observe(seconds)

    def rpc(self, service: str, method: str) -> RpcMetrics:
        """The grpc_server_* series of one unary method."""
        return RpcMetrics(self, ("unary", service, method))


class RpcMetrics:
    """grpc_server_started/handled/handling_seconds of one method, its series looked up once per status code."""

    __slots__ = ("_metrics", "_labels", "started", "_by_code", "_ok")

    def __init__(self, metrics: Metrics, labels: tuple[str, str, str]) -> None:
        self._metrics = metrics
        self._labels = labels
        self.started = metrics.grpc_started.labels(*labels)
        self._by_code: dict[grpc.StatusCode, tuple[Tally, TimeTally]] = {}
        # OK's series, once made: found by identity, since hashing a grpc.StatusCode runs Python code.
        self._ok: tuple[Tally, TimeTally] | None = None

    def handled(self, code: grpc.StatusCode, seconds: float) -> None:
        series = self._ok if code is _OK else None
        if series is None:
            series = self._series(code)
        series[0].value += 1  # Tally.inc, inline: this runs on every request
        series[1].observe(seconds)

    def _series(self, code: grpc.StatusCode) -> tuple[Tally, TimeTally]:
        series = self._by_code.get(code)
        if series is None:
            metrics, labels = self._metrics, (*self._labels, code.name)
            series = self._by_code[code] = (metrics.grpc_handled.labels(*labels), metrics.grpc_seconds.labels(*labels))
            if code is _OK:
                self._ok = series
        return series
