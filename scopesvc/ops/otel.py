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
from contextvars import ContextVar
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import Decision as SamplingDecision
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, TraceIdRatioBased
from opentelemetry.trace import SpanKind, Status, StatusCode

from .. import __version__
from ..policy import Decision, RequestError
from .config import ConfigError

PROTOCOLS = ("grpc", "http/protobuf")
_SERVER, _INTERNAL = SpanKind.SERVER, SpanKind.INTERNAL
_DROP = SamplingDecision.DROP
_ID_LOW_BITS = TraceIdRatioBased.TRACE_ID_LIMIT


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


# The span of the call being served: the SDK's span when it records, or the trace id (an int) of a
# call the sampler dropped, which needs no span at all.
_current: ContextVar[trace.Span | int | None] = ContextVar("scopesvc_span", default=None)


class Span:
    """A recording span made current for a `with` block (for the SDK and for `annotate`).

    A `RequestError` (the caller's mistake) leaves the status unset, as the gRPC and HTTP semantic
    conventions ask of a server; any other exception marks it ERROR with the exception's type only
    (a message might quote the request).
    """

    __slots__ = ("_otel_token", "_token", "span")

    def __init__(self, span: trace.Span) -> None:
        self.span = span

    def __enter__(self) -> trace.Span:
        self._otel_token = otel_context.attach(trace.set_span_in_context(self.span))
        self._token = _current.set(self.span)
        return self.span

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, _tb: object) -> None:
        _current.reset(self._token)
        otel_context.detach(self._otel_token)
        if kind is not None and self.span.is_recording() and not issubclass(kind, RequestError):
            self.span.set_status(Status(StatusCode.ERROR, kind.__name__))
        self.span.end()


class Dropped:
    """A call the sampler dropped: only its trace id is kept (for the decision log), nothing is recorded."""

    __slots__ = ("_token", "trace_id")

    def __init__(self, trace_id: int) -> None:
        self.trace_id = trace_id

    def __enter__(self) -> trace.Span:
        self._token = _current.set(self.trace_id)
        return trace.INVALID_SPAN  # takes attributes and events, and keeps none

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, _tb: object) -> None:
        _current.reset(self._token)


class _Ids(RandomIdGenerator):
    """Random ids, except that the next trace id may be chosen: the one the sampler was already asked about."""

    next_trace_id = 0

    def generate_trace_id(self) -> int:
        trace_id, self.next_trace_id = self.next_trace_id, 0
        return trace_id or super().generate_trace_id()


def root_bound(sampler: Sampler) -> int | None:
    """The bound a root call's trace id is held to when `sampler` decides roots by `TraceIdRatioBased`, else None.

    That rule samples a trace id exactly when its low 64 bits are below the bound, so a root call can
    be judged from the id alone, with no context, span or `SamplingResult` built. `ParentBased` has no
    public accessor for its root sampler; `_root` is the attribute it decides roots with.
    """
    root = sampler._root if isinstance(sampler, ParentBased) else sampler
    return root.bound if isinstance(root, TraceIdRatioBased) else None


class Tracing:
    """The tracer provider, its OTLP exporter, and the spans and annotations front ends use.

    A call the sampler drops (99 of 100 at a 1% ratio) costs little: the incoming context is parsed
    only when the carrier holds one of the propagator's fields; a call with a parent is put to the
    configured sampler before any span is built; a root call under a trace-id ratio sampler
    (`traceidratio`, `parentbased_traceidratio`) is judged by that sampler's own bound on a freshly
    drawn trace id, with no sampler call at all. A dropped call is only its trace id in a context
    variable (the decision log still names the trace). The SDK's span machinery runs for the calls
    it records; a root call the sampler keeps is started, as a root (an empty parent context), with
    the very trace id that was judged, so the SDK's own sampling of it agrees.
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        resource = Resource.create({SERVICE_VERSION: __version__})
        if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
            resource = resource.merge(Resource({SERVICE_NAME: "scopesvc"}))
        self.ids = _Ids()
        # The sampler comes from OTEL_TRACES_SAMPLER[_ARG], as the SDK reads them.
        self.provider = TracerProvider(resource=resource, id_generator=self.ids)
        self.sampler = self.provider.sampler
        self.root_bound = root_bound(self.sampler)
        self.root_context = otel_context.Context()
        self.provider.add_span_processor(BatchSpanProcessor(exporter(environ)))
        self.tracer = self.provider.get_tracer("scopesvc", __version__)
        self.fields = tuple(propagate.get_global_textmap().fields)

    def server(self, name: str, carrier: Mapping[str, Any] | None, attributes: Mapping[str, Any]) -> Span | Dropped:
        """A SERVER span for one call, the child of the trace context in `carrier` (headers or metadata)."""
        parent, trace_id = None, 0
        if carrier and any(field in carrier for field in self.fields):
            parent = propagate.extract(carrier)
            trace_id = trace.get_current_span(parent).get_span_context().trace_id  # 0 when invalid
        root = not trace_id
        if root:
            trace_id, parent = self.ids.generate_trace_id(), self.root_context
            if self.root_bound is not None:
                if trace_id & _ID_LOW_BITS >= self.root_bound:
                    return Dropped(trace_id)
            elif self.sampler.should_sample(parent, trace_id, name, _SERVER, attributes).decision is _DROP:
                return Dropped(trace_id)
            self.ids.next_trace_id = trace_id
        elif self.sampler.should_sample(parent, trace_id, name, _SERVER, attributes).decision is _DROP:
            return Dropped(trace_id)
        return Span(self.tracer.start_span(name, parent, _SERVER, attributes, record_exception=False,
                                           set_status_on_exception=False))

    def span(self, name: str, attributes: Mapping[str, Any] | None = None) -> Span | Dropped:
        """An INTERNAL span, child of the current one (one decision of a batch), or a root (a catalog reload)."""
        current = _current.get()
        if current.__class__ is int:
            return Dropped(current)  # type: ignore[arg-type]
        return Span(self.tracer.start_span(name, None, _INTERNAL, attributes, record_exception=False,
                                           set_status_on_exception=False))

    @staticmethod
    def annotate(rpc: str, decision: Decision, revision: str, allowed: bool, shadowed: bool,
                 cache: str) -> str:
        """Describe a decision on the current span; the trace id (hex, '' outside a trace) for the decision log.

        `cache` is 'hit', 'miss' or '' (no cache): an event, so a slow miss shows where it was spent.
        """
        span = _current.get()
        if span is None:
            return ""
        if span.__class__ is int:
            return f"{span:032x}"
        if span.is_recording():  # type: ignore[union-attr]
            span.set_attributes({  # type: ignore[union-attr]
                "scopesvc.front_end": rpc,
                "scopesvc.decision": "allow" if allowed else "deny",
                "scopesvc.reason": decision.reason.name,
                "scopesvc.endpoint": decision.endpoint_key,
                "scopesvc.catalog.revision": revision,
                "scopesvc.dry_run": shadowed,
                "scopesvc.missing_scope_count": len(decision.missing_scopes),
            })
            if cache:
                span.add_event(f"scopesvc.cache.{cache}")  # type: ignore[union-attr]
        return trace.format_trace_id(span.get_span_context().trace_id)  # type: ignore[union-attr]

    @staticmethod
    def event(name: str, attributes: Mapping[str, Any] | None = None) -> None:
        """An event on the current span, if one is being recorded."""
        span = _current.get()
        if span is not None and span.__class__ is not int and span.is_recording():  # type: ignore[union-attr]
            span.add_event(name, attributes)  # type: ignore[union-attr]

    def shutdown(self) -> None:
        """Export what is buffered and stop the exporter."""
        self.provider.shutdown()
