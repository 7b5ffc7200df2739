"""Envoy's external authorization API (`envoy.service.auth.v3.Authorization/Check`).

Served on the same gRPC server as `scopesvc.v1`, so Envoy, Istio (`CUSTOM` action with an
`envoyExtAuthzGrpc` provider) and Envoy Gateway (`SecurityPolicy.extAuth`) call it directly.
A deny is an answer (`denied_response`); a failure is a gRPC error, so the gateway's own
`failure_mode_allow` decides what happens then (scopesvc's configs keep it false: fail closed).
"""

from __future__ import annotations

from collections.abc import Coroutine, Mapping
from typing import Any

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.auth.v3 import attribute_context_pb2
from envoy.service.auth.v3 import external_auth_pb2 as authz
from envoy.service.auth.v3 import external_auth_pb2_grpc as authz_grpc
from envoy.type.v3 import http_status_pb2
from google.protobuf import json_format
from google.rpc import code_pb2, status_pb2

from ..decider import Decider
from ..ops.config import ConfigError
from ..policy import RequestError, Token
from ..tokens import Verifier
from .attributes import (
    ENDPOINT_EXTENSION,
    Answer,
    GatewayConfig,
    bearer_now,
    decide,
    decide_verified,
    payload_from_header,
    token_from_header,
    token_from_payload,
)

SERVICE = authz.DESCRIPTOR.services_by_name["Authorization"]
_OVERWRITE = base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD


def _header(name: str, value: str) -> base_pb2.HeaderValueOption:
    return base_pb2.HeaderValueOption(header=base_pb2.HeaderValue(key=name, value=value), append_action=_OVERWRITE)


def _response(answer: Answer) -> authz.CheckResponse:
    headers = [_header(name, value) for name, value in answer.headers]
    if answer.allowed:
        return authz.CheckResponse(status=status_pb2.Status(code=code_pb2.OK),
                                   ok_response=authz.OkHttpResponse(headers=headers))
    code = code_pb2.UNAUTHENTICATED if answer.status == 401 else code_pb2.PERMISSION_DENIED
    return authz.CheckResponse(
        status=status_pb2.Status(code=code),
        denied_response=authz.DeniedHttpResponse(
            status=http_status_pb2.HttpStatus(code=answer.status),  # type: ignore[arg-type]
            headers=headers,
            body=answer.body,
        ),
    )


class ExtAuthzService(authz_grpc.AuthorizationServicer):
    """Decides each request Envoy forwards, through `decider`, from the scopes `config` trusts."""

    def __init__(self, decider: Decider, config: GatewayConfig, verifier: Verifier | None = None) -> None:
        if config.scope_source == "bearer" and verifier is None:
            raise ConfigError("scope_source: bearer needs a trusted issuer (--jwt-issuer)")
        self.decider = decider
        self.config = config
        self.verifier = verifier

    def token(self, attributes: attribute_context_pb2.AttributeContext) -> tuple[Token | None, str]:
        """The request's token from the configured trusted source (None when it carries none), and its subject."""
        config = self.config
        headers = attributes.request.http.headers
        if config.scope_source == "header":
            value = headers.get(config.scope_header)
            return (None if value is None else token_from_header(value, config)), ""
        if config.scope_source == "jwt-payload-header":
            value = headers.get(config.jwt_payload_header)
            if value is None:
                return None, ""
            claims = payload_from_header(value, config.jwt_payload_header)
        else:
            namespace = attributes.metadata_context.filter_metadata.get(config.jwt_metadata_namespace)
            if namespace is None or config.jwt_payload_key not in namespace.fields:
                return None, ""
            payload = namespace.fields[config.jwt_payload_key]
            if payload.WhichOneof("kind") != "struct_value":
                raise RequestError(f"metadata {config.jwt_metadata_namespace}.{config.jwt_payload_key}",
                                   "is not a JWT payload object")
            try:
                claims = json_format.MessageToDict(payload.struct_value)
            except ValueError:  # NaN or infinity, which no JSON payload holds
                raise RequestError(f"metadata {config.jwt_metadata_namespace}.{config.jwt_payload_key}",
                                   "holds a number JSON cannot carry (NaN or infinity)") from None
        subject = claims.get("sub")
        return token_from_payload(claims, config), subject if isinstance(subject, str) else ""

    @staticmethod
    def trace_carrier(request: authz.CheckRequest) -> Mapping[str, str]:
        """The request's headers as Envoy saw them: their `traceparent` when the call's metadata has none."""
        return request.attributes.request.http.headers

    def Check(self, request: authz.CheckRequest,
              context: grpc.aio.ServicerContext) -> authz.CheckResponse | Coroutine[Any, Any, authz.CheckResponse]:
        """Synchronous unless a bearer token must be verified with I/O (then a coroutine the handler awaits)."""
        attributes = request.attributes
        http = attributes.request.http
        route = attributes.context_extensions.get(ENDPOINT_EXTENSION, "")
        if self.verifier is not None and self.config.scope_source == "bearer":
            credential, verification = bearer_now(self.verifier, http.headers.get("authorization"))
            if credential is not None and verification is None:
                return self._check_bearer(self.verifier, credential, http, route)
            return _response(decide_verified(self.decider, verification, http.method, http.path, self.config,
                                             rpc="ext_authz", route=route, headers=http.headers))
        token, subject = self.token(attributes)
        return _response(decide(self.decider, token, http.method, http.path, self.config, rpc="ext_authz",
                                subject=subject, route=route, headers=http.headers))

    async def _check_bearer(self, verifier: Verifier, credential: str,
                            http: attribute_context_pb2.AttributeContext.HttpRequest,
                            route: str) -> authz.CheckResponse:
        verification = await verifier.verify(credential)  # TokensUnavailable: an error status to Envoy
        return _response(decide_verified(self.decider, verification, http.method, http.path, self.config,
                                         rpc="ext_authz", route=route, headers=http.headers))
