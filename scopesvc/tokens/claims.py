"""From a verified token's claims (a JWT payload, an RFC 7662 introspection answer) to the engine's `Token`.

Pure: no keys, no network. Verification happens before; this only reads what a trusted issuer said.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..limits import MAX_SCOPE_LENGTH, MAX_SCOPES, check_strings
from ..policy import RequestError, Token, TokenFormat, TokenKind

# Exactly JSON true or one of these strings: 1 or 1.0 (equal to True in Python) is not a legacy mark.
_LEGACY_STRINGS = ("true", "legacy")
# Values of the configured kind claim, compared case-insensitively.
_KINDS = {
    "oauth": TokenKind.OAUTH_APP, "oauth_app": TokenKind.OAUTH_APP, "app": TokenKind.OAUTH_APP,
    "pat": TokenKind.PERSONAL_ACCESS_TOKEN, "personal_access_token": TokenKind.PERSONAL_ACCESS_TOKEN,
}


@dataclass(frozen=True)
class ClaimMapping:
    """Which claims say what: scopes, kind and the legacy mark.

    `scope_claim` empty reads `scope` (space-separated, RFC 9068/8693) and `scp` (a string or a
    list); otherwise that claim alone, a dotted path into nested objects (`realm_access.roles`).
    """

    scope_claim: str = ""
    kind_claim: str = ""
    legacy_claim: str = ""


def claim(claims: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted `path` (None when any step is missing or not an object)."""
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def scope_list(value: Any, field: str) -> list[str]:
    """Scopes from a space-separated string or a list of strings, bounded like a Check request's."""
    if isinstance(value, str):
        scopes = value.split()
    elif isinstance(value, list) and all(isinstance(item, str) for item in value):
        scopes = [scope for item in value for scope in item.split()]
    else:
        raise RequestError(field, "must be a space-separated string or a list of strings")
    check_strings(scopes, field, MAX_SCOPES, MAX_SCOPE_LENGTH)
    return scopes


def token_from_claims(claims: Mapping[str, Any], mapping: ClaimMapping) -> Token:
    """The engine's token; raises RequestError naming the claim that cannot be read.

    The format is LEGACY when the legacy claim says so; otherwise the engine decides it from
    `iat` against the catalog's cut-over (no `iat`: scoped, the form with less access).
    """
    scopes: list[str] = []
    names = (mapping.scope_claim,) if mapping.scope_claim else ("scope", "scp")
    for name in names:
        value = claim(claims, name)
        if value is not None:
            scopes += scope_list(value, f"jwt payload claim {name!r}")
    fmt = TokenFormat.UNSPECIFIED
    mark = claim(claims, mapping.legacy_claim) if mapping.legacy_claim else None
    if mark is True or (isinstance(mark, str) and mark in _LEGACY_STRINGS):
        fmt = TokenFormat.LEGACY
    issued_at = None
    iat = claims.get("iat")
    if isinstance(iat, (int, float)) and not isinstance(iat, bool):
        try:
            issued_at = dt.datetime.fromtimestamp(iat, dt.UTC)
        except (OverflowError, OSError, ValueError):
            raise RequestError("jwt payload claim 'iat'", "not a valid timestamp") from None
    kind = TokenKind.UNSPECIFIED
    if mapping.kind_claim:
        value = claim(claims, mapping.kind_claim)
        kind = _KINDS.get(value.lower(), TokenKind.UNSPECIFIED) if isinstance(value, str) else TokenKind.UNSPECIFIED
    return Token(tuple(dict.fromkeys(scopes)), fmt, issued_at, kind)


def string_claim(claims: Mapping[str, Any], *names: str) -> str:
    """The first of `names` holding a string ("" when none does): `sub`, `client_id` or `azp`."""
    for name in names:
        value = claims.get(name)
        if isinstance(value, str):
            return value
    return ""
