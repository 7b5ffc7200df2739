"""Prometheus metrics: decisions, the decision cache, the catalog, and standard gRPC server metrics.

Each server owns its registry (two servers in one process do not collide). Labels are bounded
by the code and the catalog: RPC names, reasons, gRPC codes, catalog name and revision; never
a concrete path or anything from a token.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from .policy import Catalog

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

    def interceptor(self) -> grpc.aio.ServerInterceptor:
        return _GrpcMetricsInterceptor(self)


class _GrpcMetricsInterceptor(grpc.aio.ServerInterceptor):
    """grpc_server_started/handled/handling_seconds for every registered RPC with a single response.

    Unknown methods are left to gRPC's UNIMPLEMENTED and not counted, so labels stay bounded.
    Response-streaming RPCs (health Watch, reflection) are passed through untouched: they last
    as long as their client keeps them, so their duration says nothing.
    """

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    async def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Any], details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or handler.response_streaming:
            return handler
        service, _, method = details.method.lstrip("/").rpartition("/")
        labels = ("client_stream" if handler.request_streaming else "unary", service, method)
        metrics = self.metrics
        behavior = handler.stream_unary if handler.request_streaming else handler.unary_unary

        async def observed(request: Any, context: grpc.aio.ServicerContext) -> Any:
            metrics.grpc_started.labels(*labels).inc()
            start = time.perf_counter()
            code = grpc.StatusCode.UNKNOWN
            try:
                result = behavior(request, context)
                response = await result if inspect.isawaitable(result) else result
                code = context.code() or grpc.StatusCode.OK
                return response
            except grpc.aio.AbortError:
                code = context.code() or grpc.StatusCode.UNKNOWN
                raise
            except asyncio.CancelledError:
                code = grpc.StatusCode.CANCELLED
                raise
            finally:
                name = code.name if isinstance(code, grpc.StatusCode) else str(code)
                metrics.grpc_handled.labels(*labels, name).inc()
                metrics.grpc_seconds.labels(*labels, name).observe(time.perf_counter() - start)

        make = grpc.stream_unary_rpc_method_handler if handler.request_streaming else grpc.unary_unary_rpc_method_handler
        return make(observed, request_deserializer=handler.request_deserializer,
                    response_serializer=handler.response_serializer)
