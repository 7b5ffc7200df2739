"""How every RPC is served: lenient decoding, admission, gRPC metrics and error mapping, in one place.

Servicers implement plain methods - synchronous, or async like grpcio's health servicer - and
are added with `add_to_server`, which wraps each unary method so that:

- a body protobuf cannot parse (invalid UTF-8, corrupt bytes) reaches no servicer: it is
  INVALID_ARGUMENT naming `request`, where grpcio would answer UNKNOWN (a server fault);
- beyond the admission limit the call is refused with RESOURCE_EXHAUSTED before any work;
- `RequestError` becomes INVALID_ARGUMENT with a `google.rpc.BadRequest` detail;
  `TokensUnavailable` (no usable keys or introspection) UNAVAILABLE; any other
  exception is logged and becomes INTERNAL - never an allow or a deny;
- grpc_server_started/handled/handling_seconds are counted, in series looked up once per method and code;
- methods are added as generic handlers, never registered (`GenericOnly` says why).

- with tracing on, each call is a SERVER span, the child of the `traceparent` in its metadata
  (or in what `carrier` finds in the request: Envoy's CheckRequest headers); off, nothing is done.

This takes the place of server interceptors: grpc.aio runs an interceptor on every call and
builds a new handler each time, which cost about 8% of Check throughput. Streaming methods
(health Watch) are neither refused nor timed - they last as long as their client keeps them -
but are counted as open streams, which admission leaves out of the calls held.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from types import CoroutineType
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import any_pb2
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import DecodeError, Message
from google.protobuf.message_factory import GetMessageClass
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from ..ops.metrics import Metrics, RpcMetrics
from ..policy import RequestError
from ..tokens import TokensUnavailable
from .admission import Admission

if TYPE_CHECKING:
    from ..ops.otel import Tracing

log = logging.getLogger(__name__)

Handler = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
Body = Callable[[Any, grpc.aio.ServicerContext], Any]
# The trace context of a call, from the request when its metadata has none (see `add_to_server`).
Carrier = Callable[[Any], Mapping[str, str]]


def invalid_argument_status(error: RequestError) -> grpc.Status:
    """INVALID_ARGUMENT with the field and reason, as text and as a BadRequest detail."""
    detail = any_pb2.Any()
    detail.Pack(
        error_details_pb2.BadRequest(
            field_violations=[error_details_pb2.BadRequest.FieldViolation(field=error.field, description=error.reason)]
        )
    )
    return rpc_status.to_status(
        status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=str(error), details=[detail])
    )


def _traced(body: Body, service: str, method: str, tracing: Tracing, carrier: Carrier | None) -> Body:
    """`body` inside a SERVER span named as the gRPC semantic conventions say: `service/method`.

    A body that is async, or hands back a coroutine (Check verifying a bearer token), keeps its
    span open until that coroutine is done.
    """
    name = f"{service}/{method}"
    attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": method}

    def traced(request: Any, context: grpc.aio.ServicerContext) -> Any:
        metadata = dict(context.invocation_metadata() or ())
        if carrier is not None and "traceparent" not in metadata:
            metadata = carrier(request)
        scope = tracing.server(name, metadata, attributes)
        span = scope.__enter__()
        try:
            result = body(request, context)
        except BaseException as exc:
            _end_span(scope, span, exc)
            raise
        if result.__class__ is CoroutineType:
            return _traced_await(scope, span, result)
        _end_span(scope, span, None)
        return result

    return traced


async def _traced_await(scope: Any, span: Any, pending: Awaitable[Any]) -> Any:
    try:
        result = await pending
    except BaseException as exc:
        _end_span(scope, span, exc)
        raise
    _end_span(scope, span, None)
    return result


def _end_span(scope: Any, span: Any, exc: BaseException | None) -> None:
    """Record the gRPC status the handler will answer with, and close the span."""
    if exc is None:
        span.set_attribute("rpc.grpc.status_code", 0)
    elif isinstance(exc, RequestError):
        span.set_attribute("rpc.grpc.status_code", grpc.StatusCode.INVALID_ARGUMENT.value[0])
    elif isinstance(exc, TokensUnavailable):
        span.set_attribute("rpc.grpc.status_code", grpc.StatusCode.UNAVAILABLE.value[0])
    scope.__exit__(None if exc is None else type(exc), exc, None if exc is None else exc.__traceback__)


def _unary(body: Body, name: str, recorder: RpcMetrics,
           admission: Admission | None, request_class: type[Message], response_class: type[Message]) -> Handler:
    """The handler of a unary method: request bytes in, response bytes out.

    It parses and serializes itself (gRPC is given no deserializer or serializer) so that a
    body protobuf cannot parse is a RequestError like any other, and so that a servicer may
    return bytes it serialized before.
    """
    is_async = inspect.iscoroutinefunction(body)
    parse, serialize = request_class.FromString, response_class.SerializeToString
    started = recorder.started
    OK, UNKNOWN = grpc.StatusCode.OK, grpc.StatusCode.UNKNOWN

    async def handle(data: bytes, context: grpc.aio.ServicerContext) -> bytes:
        started.value += 1  # Tally.inc, inline: this runs on every request
        start = time.perf_counter()
        code = OK
        admitted = False
        try:
            if admission is not None:
                context.add_done_callback(admission.done)
                if not admission.admit():
                    code = grpc.StatusCode.RESOURCE_EXHAUSTED
                    await context.abort(code, admission.refusal())
                admitted = True
            try:
                request = parse(data)
            except DecodeError as exc:
                reason = str(exc) or "malformed protobuf message"
                raise RequestError("request", f"cannot parse the request message: {reason}") from None
            result = body(request, context)
            if is_async or result.__class__ is CoroutineType:  # a sync method may hand back work that awaits
                result = await result
            return result if result.__class__ is bytes else serialize(result)
        except RequestError as exc:
            code = grpc.StatusCode.INVALID_ARGUMENT
            await context.abort_with_status(invalid_argument_status(exc))
        except TokensUnavailable as exc:
            code = grpc.StatusCode.UNAVAILABLE
            log.warning("%s: %s", name, exc)
            await context.abort(code, f"cannot verify the token now: {exc}")
        except grpc.aio.AbortError:
            if code is OK:  # the servicer aborted (e.g. health Check of an unknown service)
                code = context.code() or UNKNOWN
            raise
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        except Exception:
            code = grpc.StatusCode.INTERNAL
            log.exception("internal error in %s", name)
            await context.abort(code, f"internal error in {name}")
        finally:
            if admitted:
                admission.release()  # type: ignore[union-attr]
            recorder.handled(code, time.perf_counter() - start)
        raise AssertionError("unreachable: abort raises")  # pragma: no cover

    return handle


def _stream(body: Callable[[Any, grpc.aio.ServicerContext], Awaitable[None]], admission: Admission | None) -> Handler:
    """A server-streaming method (writing with `context.write`), its open streams counted."""
    if not inspect.iscoroutinefunction(body):
        raise ValueError(f"{body.__qualname__}: a streaming method must be async and write with context.write")
    if admission is None:
        return body

    async def stream(request: Any, context: grpc.aio.ServicerContext) -> None:
        admission.streams += 1
        try:
            await body(request, context)
        finally:
            admission.streams -= 1

    return stream


def add_to_server(servicer: Any, server: grpc.aio.Server, service: ServiceDescriptor, metrics: Metrics,
                  admission: Admission | None = None, *, exempt: bool = False, tracing: Tracing | None = None,
                  carrier: Carrier | None = None) -> None:
    """Register `servicer`'s methods for `service` on `server`, wrapped as the module says.

    `exempt`: answer however busy the server is (health checks must not fail under load); its
    streams still count for `admission`. `tracing`: a span per unary call, whose parent is the
    metadata's trace context or, when it has none, `carrier(request)`'s.
    """
    handlers: dict[str, grpc.RpcMethodHandler] = {}
    for method in service.methods:
        request_class, response_class = GetMessageClass(method.input_type), GetMessageClass(method.output_type)
        body = getattr(servicer, method.name)
        if tracing is not None and not method.server_streaming:
            body = _traced(body, service.full_name, method.name, tracing, carrier)
        if method.client_streaming:
            raise ValueError(f"{service.full_name}/{method.name}: client streaming is not supported")
        if method.server_streaming:
            handlers[method.name] = grpc.unary_stream_rpc_method_handler(
                _stream(body, admission), request_deserializer=request_class.FromString,
                response_serializer=response_class.SerializeToString)
            continue
        handlers[method.name] = grpc.unary_unary_rpc_method_handler(_unary(
            body, method.name, metrics.rpc(service.full_name, method.name), None if exempt else admission,
            request_class, response_class))
    # Added as generic handlers only, not registered: see GenericOnly.
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service.full_name, handlers),))


class GenericOnly:
    """A server as generated `add_*_to_server` functions see it, minus method registration.

    grpc.aio keeps one pending call request per *registered* method, and for every call it
    accepts it waits on all of them again (an `asyncio.wait` over one future per method,
    about 0.4 us each; 5 us a call with scopesvc's 13 methods). Unregistered methods share one
    pending request and are found by name, so every service here is added as generic only.
    """

    def __init__(self, server: grpc.aio.Server) -> None:
        self._server = server

    def add_generic_rpc_handlers(self, generic_rpc_handlers: Any) -> None:
        self._server.add_generic_rpc_handlers(generic_rpc_handlers)

    def add_registered_method_handlers(self, service_name: str, method_handlers: Any) -> None:
        """Dropped: the same handlers reach the server through `add_generic_rpc_handlers`."""
