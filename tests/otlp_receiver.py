"""A real OTLP/gRPC trace receiver on loopback: the collector's TraceService, built from `opentelemetry-proto`.

It answers `opentelemetry.proto.collector.trace.v1.TraceService/Export` as a collector does and
keeps what it received, flattened into `ReceivedSpan`s, for the tests to look at.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int
    attributes: dict[str, Any]
    events: tuple[tuple[str, dict[str, Any]], ...]
    status_code: int


def _value(value: common_pb2.AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return None if kind is None else getattr(value, kind)


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    """The TraceService on 127.0.0.1:`port` (ephemeral); `stop()` when done.

    `keep=False` only counts what arrives (`count`), for loads that export millions of spans.
    """

    def __init__(self, keep: bool = True) -> None:
        self.keep = keep
        self.count = 0
        self.spans: list[ReceivedSpan] = []
        self._lock = threading.Lock()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self, self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def Export(self, request: trace_service_pb2.ExportTraceServiceRequest,
               context: grpc.ServicerContext) -> trace_service_pb2.ExportTraceServiceResponse:
        if not self.keep:
            with self._lock:
                self.count += sum(len(scope.spans) for spans in request.resource_spans for scope in spans.scope_spans)
            return trace_service_pb2.ExportTraceServiceResponse()
        received = []
        for resource_spans in request.resource_spans:
            service = str(_attributes(resource_spans.resource.attributes).get("service.name", ""))
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    received.append(ReceivedSpan(
                        service, span.name, span.trace_id.hex(), span.span_id.hex(), span.parent_span_id.hex(),
                        span.kind, _attributes(span.attributes),
                        tuple((event.name, _attributes(event.attributes)) for event in span.events),
                        span.status.code))
        with self._lock:
            self.spans.extend(received)
            self.count += len(received)
        return trace_service_pb2.ExportTraceServiceResponse()

    def wait_for(self, predicate: Callable[[ReceivedSpan], bool], count: int = 1,
                 timeout: float = 15.0) -> list[ReceivedSpan]:
        """The received spans `predicate` accepts, once there are at least `count` of them."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                found = [span for span in self.spans if predicate(span)]
            if len(found) >= count or time.monotonic() > deadline:
                assert len(found) >= count, f"{len(found)} of {count} spans; received: {self.spans}"
                return found
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.stop(None)
