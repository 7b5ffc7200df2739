"""HTTP forward-auth: the sub-request endpoint for NGINX `auth_request`, Traefik `ForwardAuth` and the like.

The gateway sends the original method and URI in headers, and either the client's
`Authorization: Bearer` token, which scopesvc verifies (scope source `bearer`), or the scopes in
a trusted header that an earlier authentication layer sets. The original request is taken from `X-Original-Method` and
`X-Original-URI` (NGINX's convention); without them, from `X-Forwarded-Method` and
`X-Forwarded-Uri` (Traefik's). When both pairs are present they must name the same request, or the
answer is 400: a client-supplied header must not be able to change what is decided.

Answers: 200 (allow, with the matched endpoint in a header), 401 (no scopes header at all) or
403 (any deny, with the engine's `WWW-Authenticate` and JSON body; the body is also sent in the
`X-Scopesvc-Deny-Body` header, because `auth_request` drops sub-request bodies). `auth_request`
understands only 2xx, 401 and 403, so every other deny status (400 for a malformed path) is
answered as 403 here. 400 means the forward-auth request itself is unusable, 500 an engine
failure, 503 that no issuer's keys (or introspection) can be reached: all make the gateway fail closed.

The handler is a route of the HTTP front end (http.py: limits, framing, life cycle), on the gRPC
server's event loop, so the decider (cache, decision log) is only ever used from one thread.
Where the scopes come from is a `TokenSource`, an async function of the request (the trusted
header), or, with a `Verifier`, the bearer token it verifies on the way.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus

from aiohttp import web
from multidict import CIMultiDictProxy

from ..decider import Decider
from ..policy import RequestError, Token
from ..tokens import TokensUnavailable, Verification, Verifier
from .attributes import Answer, GatewayConfig, bearer_now, decide, decide_verified, token_from_header
from .http import HttpFrontEnd, bad_request, reply

log = logging.getLogger(__name__)

DENY_BODY_HEADER = "x-scopesvc-deny-body"
_FORWARD_AUTH_STATUSES = (200, 401, 403)
_SPAN_ATTRIBUTES = {"scopesvc.front_end": "forward_auth"}

# The token of a forward-auth request, None when it carries none (RequestError when it is unusable).
TokenSource = Callable[[web.Request], Awaitable[Token | None]]


class BadForwardRequest(ValueError):
    """The forward-auth request does not say clearly which request to decide."""


def header(headers: CIMultiDictProxy[str], name: str) -> str | None:
    """The one value of header `name` (None when absent); `BadForwardRequest` when sent more than once.

    Bytes that are not ASCII are read as Latin-1, as HTTP/1.1 defines header bytes (RFC 9110 5.5).
    """
    values = headers.getall(name, ())
    if len(values) > 1:
        raise BadForwardRequest(f"{name} is sent more than once")
    if not values:
        return None
    value = values[0]
    return value if value.isascii() else value.encode("utf-8", "surrogateescape").decode("latin-1")


def original_request(headers: CIMultiDictProxy[str]) -> tuple[str, str]:
    """The original (method, URI) from the forward-auth request headers; see the module docstring."""
    original = (header(headers, "x-original-method"), header(headers, "x-original-uri"))
    forwarded = (header(headers, "x-forwarded-method"), header(headers, "x-forwarded-uri"))
    chosen = original if original != (None, None) else forwarded
    method, uri = chosen
    if not method or not uri:
        raise BadForwardRequest("send the original request as X-Original-Method and X-Original-URI "
                                "(or X-Forwarded-Method and X-Forwarded-Uri)")
    if chosen is original and forwarded != (None, None) and forwarded != original:
        raise BadForwardRequest("X-Original-* and X-Forwarded-* name different requests")
    return method, uri


def answer_response(answer: Answer) -> web.Response:
    """The forward-auth form of a gateway answer (a deny's body also in a header; 401/403 only)."""
    headers = answer.headers
    if not answer.allowed:
        headers += ((DENY_BODY_HEADER, answer.body),)
    status = answer.status if answer.status in _FORWARD_AUTH_STATUSES else HTTPStatus.FORBIDDEN
    return reply(status, headers, answer.body)


class ForwardAuth:
    """The forward-auth endpoint: every path and method of its listener, one decision each."""

    def __init__(self, decider: Decider, config: GatewayConfig, token: TokenSource | None = None,
                 verifier: Verifier | None = None) -> None:
        self.decider = decider
        self.config = config
        self.token = token or self.scope_header
        self.verifier = verifier if config.scope_source == "bearer" else None

    def install(self, front: HttpFrontEnd) -> None:
        """Answer every request of `front` that no other route takes."""
        front.fallback = self.handle

    async def scope_header(self, request: web.Request) -> Token | None:
        """The token in the trusted scope header, None when the header is absent."""
        scopes = header(request.headers, self.config.scope_header)
        return None if scopes is None else token_from_header(scopes, self.config)

    async def token_of(self, request: web.Request) -> Token | Verification | None:
        """The request's token: the verified bearer credential (verified here, with I/O when not cached),
        or the token source's. None when the request carries none."""
        if self.verifier is None:
            return await self.token(request)
        credential, verification = bearer_now(self.verifier, header(request.headers, "authorization"))
        if credential is not None and verification is None:
            verification = await self.verifier.verify(credential)  # TokensUnavailable: 503
        return verification

    def decide(self, token: Token | Verification | None, method: str, uri: str,
               headers: CIMultiDictProxy[str]) -> Answer:
        """The answer; with tracing on, in a SERVER span that continues the trace context of `headers`."""
        tracing = self.decider.tracing
        if tracing is None:
            return self._decide(token, method, uri, headers)
        with tracing.server("forward_auth", headers, _SPAN_ATTRIBUTES) as span:
            answer = self._decide(token, method, uri, headers)
            span.set_attribute("http.response.status_code", answer.status)
            return answer

    def _decide(self, token: Token | Verification | None, method: str, uri: str,
                headers: CIMultiDictProxy[str]) -> Answer:
        if self.verifier is not None or isinstance(token, Verification):
            verification = token if isinstance(token, Verification) else None
            return decide_verified(self.decider, verification, method, uri, self.config, rpc="forward_auth",
                                   headers=headers)
        return decide(self.decider, token, method, uri, self.config, rpc="forward_auth", headers=headers)

    async def handle(self, request: web.Request) -> web.Response:
        try:
            method, uri = original_request(request.headers)
            token = await self.token_of(request)
            answer = self.decide(token, method, uri, request.headers)
        except (BadForwardRequest, RequestError) as exc:
            return bad_request(str(exc))
        except TokensUnavailable as exc:
            log.warning("forward-auth: %s", exc)
            return reply(HTTPStatus.SERVICE_UNAVAILABLE, (("content-type", "application/json"),),
                         '{"title":"Service unavailable","message":"cannot verify the token now"}')
        except Exception:
            log.exception("internal error in forward-auth")
            return reply(HTTPStatus.INTERNAL_SERVER_ERROR)
        return answer_response(answer)
