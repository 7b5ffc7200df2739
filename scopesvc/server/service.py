"""The `scopesvc.v1.ScopeService` gRPC servicer: a thin adapter over the policy engine.

Check takes a Token, or a raw bearer token it verifies first (`tokens.Verifier`); an
unreachable key source is UNAVAILABLE. Each RPC reads the current engine once, so a catalog reload mid-request cannot give it a mix
of two catalogs. Register it with `handlers.add_to_server`, which maps `RequestError` to
INVALID_ARGUMENT (with a `google.rpc.BadRequest` detail) and any other failure to INTERNAL,
never an allow or a deny.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

import grpc

from .. import convert, limits
from ..decider import Decider, EngineRef, Outcome
from ..policy import Decision, RequestError, Token
from ..tokens import Verification, Verifier
from ..v1 import scopesvc_pb2 as pb
from ..v1 import scopesvc_pb2_grpc as pb_grpc

SERVICE = pb.DESCRIPTOR.services_by_name["ScopeService"]


class SerializedAnswers:
    """CheckResponse bytes for the engine's shared decisions, serialized once each.

    Most checks end in one of a bounded set of decisions the engine hands out again and again
    (`Decision.shared`); building and serializing the response for them is most of the work
    left after the decision. Entries are keyed by identity and hold their decision, so an id
    cannot be reused while its entry lives; the memo is emptied when it reaches `limit`.
    """

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self._by_id: dict[int, tuple[Decision, bool, bytes]] = {}

    def get(self, outcome: Outcome) -> bytes | pb.CheckResponse:
        decision = outcome.decision
        if not decision.shared:
            return outcome.response()
        hit = self._by_id.get(id(decision))
        if hit is not None and hit[0] is decision and hit[1] == outcome.dry_run:
            return hit[2]
        data = outcome.response().SerializeToString()
        if len(self._by_id) >= self.limit:
            self._by_id.clear()
        self._by_id[id(decision)] = (decision, outcome.dry_run, data)
        return data


class ScopeService(pb_grpc.ScopeServiceServicer):
    """Answers scopesvc.v1 RPCs: Check and CheckBatch through `decider`, the rest from its engine."""

    def __init__(self, decider: Decider, verifier: Verifier | None = None) -> None:
        self.decider = decider
        self.verifier = verifier
        self.ref: EngineRef = decider.ref
        self.answers = SerializedAnswers()

    def Check(self, request: pb.CheckRequest,
              context: grpc.aio.ServicerContext) -> bytes | pb.CheckResponse | Coroutine[Any, Any, bytes | pb.CheckResponse]:
        """Synchronous unless a bearer token must be verified with I/O (then a coroutine the handler awaits)."""
        token, method, path = convert.check_args(request)
        if token.__class__ is not str:
            return self.answers.get(self.decider.decide(token, method, path, rpc="Check"))  # type: ignore[arg-type]
        verifier = self._verifier()
        verification = verifier.cached(token)  # type: ignore[arg-type]
        if verification is not None:
            return self.answers.get(self.decider.decide_verified(verification, method, path, rpc="Check"))
        return self._check_bearer(verifier, token, method, path)  # type: ignore[arg-type]

    async def _check_bearer(self, verifier: Verifier, credential: str, method: str,
                            path: str) -> bytes | pb.CheckResponse:
        verification = await verifier.verify(credential)
        return self.answers.get(self.decider.decide_verified(verification, method, path, rpc="Check"))

    def _verifier(self) -> Verifier:
        if self.verifier is None:
            raise RequestError("bearer_token", "this server verifies no bearer tokens: configure --jwt-issuer")
        return self.verifier

    async def CheckBatch(self, request: pb.CheckBatchRequest, context: grpc.aio.ServicerContext) -> pb.CheckBatchResponse:
        if len(request.checks) > limits.MAX_BATCH:
            raise RequestError("checks", f"at most {limits.MAX_BATCH} checks, got {len(request.checks)}")
        args: list[tuple[Token | Verification, str, str]] = []
        for i, check in enumerate(request.checks):
            token, method, path = convert.check_args(check, f"checks[{i}].")
            if isinstance(token, str):
                token = await self._verifier().resolve(token)
            args.append((token, method, path))
        outcomes = self.decider.decide_many(args, rpc="CheckBatch")
        return pb.CheckBatchResponse(results=[outcome.response() for outcome in outcomes])

    def Plan(self, request: pb.PlanRequest, context: grpc.aio.ServicerContext) -> pb.PlanResponse:
        limits.check_strings(request.features, "features", limits.MAX_FEATURES)
        limits.check_strings(request.existing_scopes, "existing_scopes", limits.MAX_SCOPES, limits.MAX_SCOPE_LENGTH)
        plan = self.ref.engine.plan(
            list(request.features),
            list(request.existing_scopes),
            client_id=request.client_id,
            redirect_uri=request.redirect_uri,
            state=request.state,
            code_challenge=request.code_challenge,
        )
        return convert.plan_response(plan)

    def MigrateToken(self, request: pb.Token, context: grpc.aio.ServicerContext) -> pb.Token:
        return convert.token_to_proto(self.ref.engine.migrate(convert.token_from_proto(request, "")))

    def CheckWebhookSubscription(self, request: pb.WebhookSubscriptionRequest, context: grpc.aio.ServicerContext) -> pb.WebhookDecision:
        if not request.HasField("token"):
            raise RequestError("token", "required")
        limits.check_strings(request.events, "events", limits.MAX_FEATURES)
        scope = convert.subscription_level(request)
        decision = self.ref.engine.check_subscription(
            convert.token_from_proto(request.token), list(request.events), scope
        )
        return convert.webhook_response(decision)

    def CheckWebhookDelivery(self, request: pb.WebhookDeliveryRequest, context: grpc.aio.ServicerContext) -> pb.WebhookDecision:
        if not request.HasField("token"):
            raise RequestError("token", "required")
        decision = self.ref.engine.check_delivery(convert.token_from_proto(request.token), request.event)
        return convert.webhook_response(decision)

    def Diagnose(self, request: pb.DiagnoseRequest, context: grpc.aio.ServicerContext) -> pb.DiagnoseResponse:
        limits.check_strings(request.requested_scopes, "requested_scopes", limits.MAX_SCOPES, limits.MAX_SCOPE_LENGTH)
        limits.check_strings(request.granted_scopes, "granted_scopes", limits.MAX_SCOPES, limits.MAX_SCOPE_LENGTH)
        diagnosis = self.ref.engine.diagnose(
            list(request.requested_scopes), list(request.granted_scopes), request.method, request.path, request.event
        )
        return convert.diagnosis_response(diagnosis)

    def GetCatalog(self, request: pb.GetCatalogRequest, context: grpc.aio.ServicerContext) -> pb.CatalogInfo:
        return convert.catalog_info(self.ref.engine)
