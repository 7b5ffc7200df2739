"""From what a gateway knows about a request to the engine's question, and from the answer back.

Scopes are taken only from places an earlier, trusted step filled in: the payload Envoy's
`jwt_authn` filter verified and put in dynamic metadata or in a header of its own, or a header
that an earlier authentication layer sets (and strips from client requests). Never from a token read here:
this module does not decode JWTs, so it cannot trust an unverified one.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, fields
from typing import Any

from ..convert import MAX_SCOPE_LENGTH, MAX_SCOPES, check_strings
from ..decider import Decider
from ..ops.config import ConfigError, ServerConfig
from ..policy import RequestError, Token, TokenFormat

SCOPE_SOURCES = ("jwt-metadata", "jwt-payload-header", "header")
# The route setting (Envoy `context_extensions`) that names the endpoint: "METHOD /template" or "/template".
ENDPOINT_EXTENSION = "scopesvc_endpoint"
# Exactly JSON true or one of these strings: 1 or 1.0 (equal to True in Python) is not a legacy mark.
_LEGACY_STRINGS = ("true", "legacy")



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


def _scope_list(value: Any, field: str) -> list[str]:
    if isinstance(value, str):
        scopes = value.split()
    elif isinstance(value, list) and all(isinstance(item, str) for item in value):
        scopes = [scope for item in value for scope in item.split()]
    else:
        raise RequestError(field, "must be a space-separated string or a list of strings")
    check_strings(scopes, field, MAX_SCOPES, MAX_SCOPE_LENGTH)
    return scopes


def token_from_payload(payload: Mapping[str, Any], config: GatewayConfig) -> Token:
    """A token from a verified JWT payload: `scope` (space-separated) or `scp` (string or list).

    The format is LEGACY when the configured legacy claim says so; otherwise it is left for the
    engine to decide from `iat` against the catalog's cut-over.
    """
    scopes: list[str] = []
    for claim in ("scope", "scp"):
        if claim in payload:
            scopes += _scope_list(payload[claim], f"jwt payload claim {claim!r}")
    fmt = TokenFormat.UNSPECIFIED
    mark = payload.get(config.legacy_claim) if config.legacy_claim else None
    if mark is True or (isinstance(mark, str) and mark in _LEGACY_STRINGS):
        fmt = TokenFormat.LEGACY
    issued_at = None
    iat = payload.get("iat")
    if isinstance(iat, (int, float)) and not isinstance(iat, bool):
        try:
            issued_at = dt.datetime.fromtimestamp(iat, dt.timezone.utc)
        except (OverflowError, OSError, ValueError):
            raise RequestError("jwt payload claim 'iat'", "not a valid timestamp") from None
    return Token(tuple(dict.fromkeys(scopes)), fmt, issued_at)


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
    return Token(tuple(dict.fromkeys(_scope_list(value.replace(",", " "), config.scope_header))))


def decide(decider: Decider, token: Token | None, method: str, path: str, config: GatewayConfig, *,
           rpc: str, subject: str = "", route: str = "", headers: Collection[str] = ()) -> Answer:
    """The gateway's answer; `token` None means the request carries no scopes at all.

    The decision is the Decider's (engine, cache, metrics, decision log, dry-run), that of a
    request without credentials too (MISSING_TOKEN, 401), made from the request's own method and
    path, the endpoint its route names (`route`) and its `headers`; what is enforced is its
    `allowed`, and a deny sends the engine's own status, challenge and body.
    """
    outcome = decider.decide(token, method, path, rpc=rpc, subject=subject, route=route, headers=headers)
    decision = outcome.decision
    if outcome.allowed:
        endpoint = decision.endpoint_key
        return Answer(True, 200, ((config.endpoint_header, endpoint),) if endpoint else (), "")
    deny_headers = [("content-type", "application/json")]
    if decision.www_authenticate:
        deny_headers.insert(0, ("www-authenticate", decision.www_authenticate))
    return Answer(False, decision.http_status, tuple(deny_headers), decision.body)
