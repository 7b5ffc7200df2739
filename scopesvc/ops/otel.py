"""OpenTelemetry tracing with the SDK: spans for decisions, exported over OTLP.

Imported only when tracing is on (`scopesvc.ops.tracing.start`), so a server without tracing
never loads the SDK. Everything is configured by the standard `OTEL_*` environment variables,
read by the SDK itself: `OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`, `..._HEADERS`, `..._INSECURE`,
`OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG` (e.g. `parentbased_traceidratio` and `0.01`),
`OTEL_SERVICE_NAME` / `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_BSP_*` and `OTEL_PROPAGATORS`. Only the
choice of exporter is made here, from `OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL` (`grpc`, the
default, or `http/protobuf`), because the SDK alone does not pick one.

What a span may carry: the decision, its reason, the matched endpoint (a catalog template, never
the request path), the catalog revision, whether the cache answered. Never a token, a scope, a
subject or a header value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from .. import __version__
from ..policy import Decision, RequestError
from .config import ConfigError

PROTOCOLS = ("grpc", "http/protobuf")
_SERVER, _INTERNAL = SpanKind.SERVER, SpanKind.INTERNAL


def exporter(environ: Mapping[str, str]) -> SpanExporter:
    """The OTLP span exporter for the configured protocol; it reads its own settings from the environment."""
    protocol = (environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
                or "grpc").strip()
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        return OTLPSpanExporter()
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
        return HttpExporter()
    raise ConfigError(f"OTEL_EXPORTER_OTLP_PROTOCOL: must be one of {', '.join(PROTOCOLS)}, not {protocol!r}")


class Span:
    """A span made current for a `with` block: cheaper than the SDK's generator-based context manager.

    A `RequestError` (the caller's mistake) leaves the status unset, as the gRPC and HTTP semantic
    conventions ask of a server; any other exception marks it ERROR with the exception's type only
    (a message might quote the request).
    """

    __slots__ = ("_token", "span")

    def __init__(self, span: trace.Span) -> None:
        self.span = span

    def __enter__(self) -> trace.Span:
        self._token = otel_context.attach(trace.set_span_in_context(self.span))
        return self.span

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, _tb: object) -> None:
        otel_context.detach(self._token)
        if kind is not None and self.span.is_recording() and not issubclass(kind, RequestError):
            self.span.set_status(Status(StatusCode.ERROR, kind.__name__))
        self.span.end()


class Tracing:
    """The tracer provider, its OTLP exporter, and the spans and annotations front ends use."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        resource = Resource.create({SERVICE_VERSION: __version__})
        if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
            resource = resource.merge(Resource({SERVICE_NAME: "scopesvc"}))
        self.provider = TracerProvider(resource=resource)  # the sampler comes from OTEL_TRACES_SAMPLER[_ARG]
        self.provider.add_span_processor(BatchSpanProcessor(exporter(environ)))
        self.tracer = self.provider.get_tracer("scopesvc", __version__)

    def server(self, name: str, carrier: Mapping[str, Any] | None, attributes: Mapping[str, Any]) -> Span:
        """A SERVER span for one call, the child of the trace context in `carrier` (headers or metadata)."""
        parent = propagate.extract(carrier) if carrier else None
        return Span(self.tracer.start_span(name, parent, _SERVER, attributes, record_exception=False,
                                           set_status_on_exception=False))

    def span(self, name: str, attributes: Mapping[str, Any] | None = None) -> Span:
        """An INTERNAL span, child of the current one (one decision of a batch, a catalog reload)."""
        return Span(self.tracer.start_span(name, None, _INTERNAL, attributes, record_exception=False,
                                           set_status_on_exception=False))

    @staticmethod
    def annotate(rpc: str, decision: Decision, revision: str, allowed: bool, shadowed: bool,
                 cache: str) -> str:
        """Describe a decision on the current span; the trace id (hex, '' outside a trace) for the decision log.

        `cache` is 'hit', 'miss' or '' (no cache): an event, so a slow miss shows where it was spent.
        """
        span = trace.get_current_span()
        span_context = span.get_span_context()
        if not span_context.is_valid:
            return ""
        if span.is_recording():
            span.set_attributes({
                "scopesvc.front_end": rpc,
                "scopesvc.decision": "allow" if allowed else "deny",
                "scopesvc.reason": decision.reason.name,
                "scopesvc.endpoint": decision.endpoint_key,
                "scopesvc.catalog.revision": revision,
                "scopesvc.dry_run": shadowed,
                "scopesvc.missing_scope_count": len(decision.missing_scopes),
            })
            if cache:
                span.add_event(f"scopesvc.cache.{cache}")
        return trace.format_trace_id(span_context.trace_id)

    @staticmethod
    def event(name: str, attributes: Mapping[str, Any] | None = None) -> None:
        """An event on the current span, if one is being recorded."""
        span = trace.get_current_span()
        if span.is_recording():
            span.add_event(name, attributes)

    def shutdown(self) -> None:
        """Export what is buffered and stop the exporter."""
        self.provider.shutdown()
