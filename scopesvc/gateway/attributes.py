"""From what a gateway knows about a request to the engine's question, and from the answer back.

Scopes are taken from the `Authorization: Bearer` token, verified by scopesvc itself against
its configured issuers (scope source `bearer`: nothing the client sends is trusted unverified),
or from places an earlier, trusted step filled in: the payload Envoy's `jwt_authn` filter
verified and put in dynamic metadata or in a header of its own, or a header that an earlier
authentication layer sets (and strips from client requests). This module never decodes a JWT itself.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, fields
from typing import Any

from ..decider import Decider, Outcome
from ..ops.config import ConfigError, ServerConfig
from ..policy import RequestError, Token
from ..tokens import Verification, Verifier
from ..tokens.claims import ClaimMapping, scope_list, token_from_claims
from ..tokens.verifier import UNKNOWN_ISSUER

SCOPE_SOURCES = ("jwt-metadata", "jwt-payload-header", "header", "bearer")
# RFC 6750 section 2.1: "Bearer" 1*SP b64token; the scheme is case-insensitive (RFC 9110 section 11.1).
_BEARER = re.compile(r"bearer +([A-Za-z0-9\-._~+/]+=*)", re.IGNORECASE)
# The route setting (Envoy `context_extensions`) that names the endpoint: "METHOD /template" or "/template".
ENDPOINT_EXTENSION = "scopesvc_endpoint"



@dataclass(frozen=True)
class GatewayConfig:
    """Where scopes come from and how the answer is labelled; `scopesvc serve --help` documents each."""

    scope_source: str = "jwt-metadata"
    jwt_metadata_namespace: str = "envoy.filters.http.jwt_authn"
    jwt_payload_key: str = "jwt_payload"
    jwt_payload_header: str = "x-jwt-payload"
    scope_header: str = "x-scopesvc-scopes"
    legacy_claim: str = ""
    endpoint_header: str = "x-scopesvc-endpoint"

    def __post_init__(self) -> None:
        if self.scope_source not in SCOPE_SOURCES:
            raise ConfigError(f"scope_source: must be one of {', '.join(SCOPE_SOURCES)}, not {self.scope_source!r}")
        for name in ("jwt_metadata_namespace", "jwt_payload_key", "jwt_payload_header", "scope_header",
                     "endpoint_header"):
            if not getattr(self, name):
                raise ConfigError(f"{name}: must not be empty")
        # Header names arrive lower-cased from Envoy and are matched case-insensitively here.
        object.__setattr__(self, "scope_header", self.scope_header.lower())
        object.__setattr__(self, "jwt_payload_header", self.jwt_payload_header.lower())
        object.__setattr__(self, "endpoint_header", self.endpoint_header.lower())

    @classmethod
    def from_server_config(cls, config: ServerConfig) -> GatewayConfig:
        """The gateway options of `scopesvc serve` (same names)."""
        return cls(**{f.name: getattr(config, f.name) for f in fields(cls)})


@dataclass(frozen=True, slots=True)
class Answer:
    """What the gateway sends: allow (with headers for the upstream) or deny (status, headers, body)."""

    allowed: bool
    status: int
    headers: tuple[tuple[str, str], ...]
    body: str


def token_from_payload(payload: Mapping[str, Any], config: GatewayConfig) -> Token:
    """A token from a payload an earlier step verified: `scope` or `scp`, and the configured legacy claim."""
    return token_from_claims(payload, ClaimMapping(legacy_claim=config.legacy_claim))


def payload_from_header(value: str, field: str) -> dict[str, Any]:
    """The JWT payload in a header as jwt_authn's `forward_payload_header` writes it: base64url JSON."""
    try:
        text = value.strip()
        payload = json.loads(base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True))
    except (ValueError, UnicodeDecodeError):
        raise RequestError(field, "is not a base64url-encoded JSON JWT payload") from None
    if not isinstance(payload, dict):
        raise RequestError(field, "is not a JWT payload object")
    return payload


def token_from_header(value: str, config: GatewayConfig) -> Token:
    """A token from the trusted scope header (space- or comma-separated scopes)."""
    return Token(tuple(dict.fromkeys(scope_list(value.replace(",", " "), config.scope_header))))


def bearer_credential(authorization: str | None) -> str | None:
    """The access token of an `Authorization: Bearer` header (RFC 6750 section 2.1), never a query string.

    None when the request carries no bearer credential at all (no header, another scheme);
    raises `MalformedBearer` for a Bearer header whose token is not a b64token.
    """
    if authorization is None:
        return None
    value = authorization.strip()
    if not value[:7].lower().startswith("bearer") or (len(value) > 6 and value[6] not in " \t"):
        return None
    match = _BEARER.fullmatch(value)
    if match is None:
        raise MalformedBearer()
    return match.group(1)


class MalformedBearer(ValueError):
    """An `Authorization: Bearer` header that does not hold one b64token."""


def bearer_now(verifier: Verifier, authorization: str | None) -> tuple[str | None, Verification | None]:
    """(credential, verification) as far as known without I/O: a verification when the header is
    missing (None, None), malformed, or the token cached; else (credential, None), to `verify`."""
    try:
        credential = bearer_credential(authorization)
    except MalformedBearer:
        return None, Verification("malformed", UNKNOWN_ISSUER)
    if credential is None:
        return None, None
    return credential, verifier.cached(credential)


def decide_verified(decider: Decider, verification: Verification | None, method: str, path: str,
                    config: GatewayConfig, *, rpc: str, route: str = "", headers: Collection[str] = ()) -> Answer:
    """The gateway's answer for a bearer credential; None means the request carries none (MISSING_TOKEN, 401)."""
    if verification is None:
        return decide(decider, None, method, path, config, rpc=rpc, route=route, headers=headers)
    return _answer(decider.decide_verified(verification, method, path, rpc=rpc, route=route, headers=headers), config)


def decide(decider: Decider, token: Token | None, method: str, path: str, config: GatewayConfig, *,
           rpc: str, subject: str = "", route: str = "", headers: Collection[str] = ()) -> Answer:
    """The gateway's answer; `token` None means the request carries no scopes at all.

    The decision is the Decider's (engine, cache, metrics, decision log, dry-run), that of a
    request without credentials too (MISSING_TOKEN, 401), made from the request's own method and
    path, the endpoint its route names (`route`) and its `headers`; what is enforced is its
    `allowed`, and a deny sends the engine's own status, challenge and body.
    """
    return _answer(decider.decide(token, method, path, rpc=rpc, subject=subject, route=route, headers=headers),
                   config)


def _answer(outcome: Outcome, config: GatewayConfig) -> Answer:
    decision = outcome.decision
    if outcome.allowed:
        endpoint = decision.endpoint_key
        return Answer(True, 200, ((config.endpoint_header, endpoint),) if endpoint else (), "")
    deny_headers = [("content-type", "application/json")]
    if decision.www_authenticate:
        deny_headers.insert(0, ("www-authenticate", decision.www_authenticate))
    return Answer(False, decision.http_status, tuple(deny_headers), decision.body)
