"""The `scopesvc.v1.ScopeService` gRPC servicer: a thin adapter over the policy engine.

Each RPC reads the current engine once, so a catalog reload mid-request cannot give it a mix
of two catalogs. Bad requests get INVALID_ARGUMENT with a `google.rpc.BadRequest` detail;
any other failure is INTERNAL, never an allow or a deny.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import DecodeError
from google.protobuf.message_factory import GetMessageClass
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from . import convert
from .decider import Decider, EngineRef
from .policy import RequestError
from .v1 import scopesvc_pb2 as pb
from .v1 import scopesvc_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

R = TypeVar("R")


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


class Undecodable:
    """A request body protobuf could not parse (e.g. invalid UTF-8 in a string field)."""

    __slots__ = ("error",)

    def __init__(self, error: str) -> None:
        self.error = error


def _lenient(parse: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    """Deserialize, or hand the handler an `Undecodable` so it can answer INVALID_ARGUMENT.

    grpcio answers a deserializer exception with UNKNOWN, which reads as a server fault.
    """

    def deserialize(data: bytes) -> Any:
        try:
            return parse(data)
        except DecodeError as exc:
            return Undecodable(str(exc) or "malformed protobuf message")

    return deserialize


def rpc(method: Callable[[Any, Any, grpc.aio.ServicerContext], R]) -> Callable[[Any, Any, grpc.aio.ServicerContext], Awaitable[R]]:
    """Run a synchronous handler body; map RequestError to INVALID_ARGUMENT and bugs to INTERNAL."""

    @functools.wraps(method)
    async def handler(self: Any, request: Any, context: grpc.aio.ServicerContext) -> R:
        try:
            if isinstance(request, Undecodable):
                raise RequestError("request", f"cannot parse the request message: {request.error}")
            return method(self, request, context)
        except RequestError as exc:
            await context.abort_with_status(invalid_argument_status(exc))
        except Exception:
            log.exception("internal error in %s", method.__name__)
            await context.abort(grpc.StatusCode.INTERNAL, f"internal error in {method.__name__}")
        raise AssertionError("unreachable: abort raises")  # pragma: no cover

    return handler


class ScopeService(pb_grpc.ScopeServiceServicer):
    """Answers scopesvc.v1 RPCs: Check and CheckBatch through `decider`, the rest from its engine."""

    def __init__(self, decider: Decider) -> None:
        self.decider = decider
        self.ref: EngineRef = decider.ref

    @rpc
    def Check(self, request: pb.CheckRequest, context: grpc.aio.ServicerContext) -> pb.CheckResponse:
        token, method, path = convert.check_args(request)
        return self.decider.decide(token, method, path, rpc="Check").response()

    @rpc
    def CheckBatch(self, request: pb.CheckBatchRequest, context: grpc.aio.ServicerContext) -> pb.CheckBatchResponse:
        if len(request.checks) > convert.MAX_BATCH:
            raise RequestError("checks", f"at most {convert.MAX_BATCH} checks, got {len(request.checks)}")
        args = [convert.check_args(check, f"checks[{i}].") for i, check in enumerate(request.checks)]
        outcomes = self.decider.decide_many(args, rpc="CheckBatch")
        return pb.CheckBatchResponse(results=[outcome.response() for outcome in outcomes])

    @rpc
    def Plan(self, request: pb.PlanRequest, context: grpc.aio.ServicerContext) -> pb.PlanResponse:
        convert.check_strings(request.features, "features", convert.MAX_FEATURES)
        convert.check_strings(request.existing_scopes, "existing_scopes", convert.MAX_SCOPES, convert.MAX_SCOPE_LENGTH)
        plan = self.ref.engine.plan(
            list(request.features),
            list(request.existing_scopes),
            client_id=request.client_id,
            redirect_uri=request.redirect_uri,
            state=request.state,
            code_challenge=request.code_challenge,
        )
        return convert.plan_response(plan)

    @rpc
    def MigrateToken(self, request: pb.Token, context: grpc.aio.ServicerContext) -> pb.Token:
        return convert.token_to_proto(self.ref.engine.migrate(convert.token_from_proto(request, "")))

    @rpc
    def CheckWebhookSubscription(self, request: pb.WebhookSubscriptionRequest, context: grpc.aio.ServicerContext) -> pb.WebhookDecision:
        if not request.HasField("token"):
            raise RequestError("token", "required")
        convert.check_strings(request.events, "events", convert.MAX_FEATURES)
        scope = convert.SUBSCRIPTION_SCOPE_NAMES.get(request.subscription_scope)
        if scope is None:
            raise RequestError("subscription_scope", "required: ORGANIZATION, USER or GROUP")
        decision = self.ref.engine.check_subscription(
            convert.token_from_proto(request.token), list(request.events), scope
        )
        return convert.webhook_response(decision)

    @rpc
    def CheckWebhookDelivery(self, request: pb.WebhookDeliveryRequest, context: grpc.aio.ServicerContext) -> pb.WebhookDecision:
        if not request.HasField("token"):
            raise RequestError("token", "required")
        decision = self.ref.engine.check_delivery(convert.token_from_proto(request.token), request.event)
        return convert.webhook_response(decision)

    @rpc
    def Diagnose(self, request: pb.DiagnoseRequest, context: grpc.aio.ServicerContext) -> pb.DiagnoseResponse:
        convert.check_strings(request.requested_scopes, "requested_scopes", convert.MAX_SCOPES, convert.MAX_SCOPE_LENGTH)
        convert.check_strings(request.granted_scopes, "granted_scopes", convert.MAX_SCOPES, convert.MAX_SCOPE_LENGTH)
        if request.event and (request.method or request.path):
            raise RequestError("event", "give either an event or a method and path, not both")
        diagnosis = self.ref.engine.diagnose(
            list(request.requested_scopes), list(request.granted_scopes), request.method, request.path, request.event
        )
        return convert.diagnosis_response(diagnosis)

    @rpc
    def GetCatalog(self, request: pb.GetCatalogRequest, context: grpc.aio.ServicerContext) -> pb.CatalogInfo:
        return convert.catalog_info(self.ref.engine)


def add_to_server(servicer: Any, server: grpc.aio.Server, service: ServiceDescriptor | None = None) -> None:
    """Register `servicer` for `service` (default: scopesvc.v1.ScopeService) as the generated
    helpers do, but with lenient request decoding, so a corrupt body is INVALID_ARGUMENT."""
    service = service or pb.DESCRIPTOR.services_by_name["ScopeService"]
    handlers = {
        method.name: grpc.unary_unary_rpc_method_handler(
            getattr(servicer, method.name),
            request_deserializer=_lenient(GetMessageClass(method.input_type).FromString),
            response_serializer=GetMessageClass(method.output_type).SerializeToString,
        )
        for method in service.methods
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service.full_name, handlers),))
    server.add_registered_method_handlers(service.full_name, handlers)
