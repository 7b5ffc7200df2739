"""Turning a bearer credential into the engine's `Token`: verify a JWT, or introspect an opaque token.

Every check is PyJWT's (signature, exp, nbf, iat, aud, iss); this module picks the issuer
(from the unverified `iss`, then verified against it), the algorithm (only those configured:
never `none`, HMAC only with a configured secret) and the key (by `kid` and that algorithm),
and names the result for metrics and the 401 answer. Duplicate JSON members in the header or
payload make a token malformed (PyJWT would keep the last one silently).

Results are cached by a SHA-256 digest of the credential - never the credential itself - until
the token's `exp` and at most `cache_ttl`; an inactive introspection result for
`negative_ttl`. The cache is emptied when any key set changes and when the configuration
reloads (a new `Verifier`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import jwt
from cachetools import TLRUCache
from jwt.utils import base64url_decode, base64url_encode

from ..ops.metrics import Metrics
from ..policy import RequestError, Token
from .claims import string_claim, token_from_claims
from .config import HMAC, IssuerConfig, TokenConfig
from .errors import TokensUnavailable
from .introspection import Introspector
from .keys import KeySet

log = logging.getLogger(__name__)

VALID = "valid"
UNKNOWN_ISSUER = "unknown"  # the issuer label of a token no configured issuer claims
# Each result's fixed description: it goes into WWW-Authenticate, so nothing from the token does.
DESCRIPTIONS = {
    "expired": "the access token has expired",
    "not_yet_valid": "the access token is not valid yet",
    "wrong_audience": "the access token is not for this audience",
    "wrong_issuer": "the access token is not from a trusted issuer",
    "bad_signature": "the access token signature does not verify",
    "unknown_kid": "the access token is signed with an unknown key",
    "bad_algorithm": "the access token uses an algorithm that is not accepted",
    "wrong_type": "the token is not an access token (typ at+jwt)",
    "missing_claim": "the access token lacks a required claim",
    "bad_claims": "the access token claims cannot be read",
    "malformed": "the access token is malformed",
    "oversized": "the access token is too large",
    "inactive": "the access token is not active",
    "missing": "the request carries no bearer access token",
}
# PyJWT's exceptions, most specific first (InvalidSignatureError is a DecodeError).
_ERRORS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "expired"),
    (jwt.ImmatureSignatureError, "not_yet_valid"),
    (jwt.InvalidAudienceError, "wrong_audience"),
    (jwt.InvalidIssuerError, "wrong_issuer"),
    (jwt.MissingRequiredClaimError, "missing_claim"),
    (jwt.InvalidSignatureError, "bad_signature"),
    (jwt.InvalidAlgorithmError, "bad_algorithm"),
    (jwt.InvalidKeyError, "bad_signature"),
    (jwt.DecodeError, "malformed"),
    (jwt.InvalidTokenError, "bad_claims"),
)


@dataclass(frozen=True, slots=True)
class Verification:
    """What verifying one credential found; `token` is set only when `result` is "valid"."""

    result: str
    issuer: str  # the configured issuer it was judged against, or UNKNOWN_ISSUER
    token: Token | None = None
    subject: str = ""  # sub: for the decision log, which hashes it
    client_id: str = ""  # client_id or azp: likewise
    expires_at: float = 0.0  # Unix time the result stops holding (0: no exp known)
    method: str = "jwt"  # "jwt" or "introspection"

    @property
    def valid(self) -> bool:
        return self.result == VALID

    @property
    def description(self) -> str:
        return DESCRIPTIONS.get(self.result, "the access token is invalid")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise jwt.DecodeError("duplicate member in a JSON object")
    return result


class _StrictJWS(jwt.PyJWS):
    """PyJWS that refuses a header with a duplicate member, and reads segments at C speed.

    PyJWT checks each segment's alphabet character by character in Python (about 1 us per 100
    characters, most of an RS256 verification); compact JWS segments are unpadded base64url
    (RFC 7515 section 2), which one regular expression checks. Non-canonical encodings stay refused.
    """

    @staticmethod
    def _decode_base64url_segment(segment: bytes, name: str) -> bytes:
        if _SEGMENT.fullmatch(segment) is None or len(segment) % 4 == 1:
            raise jwt.DecodeError(f"Invalid {name} padding")
        decoded = base64url_decode(segment)
        if base64url_encode(decoded) != segment:
            raise jwt.DecodeError(f"Invalid {name} padding")
        return decoded

    def _load(self, token: str | bytes) -> Any:
        loaded = super()._load(token)
        raw = token.encode() if isinstance(token, str) else token
        json.loads(base64url_decode(raw.split(b".", 1)[0]), object_pairs_hook=_no_duplicates)
        return loaded


class _StrictJWT(jwt.PyJWT):
    """PyJWT that refuses a header or payload with a duplicate member."""

    def __init__(self) -> None:
        super().__init__()
        self._jws = _StrictJWS(options=self._get_sig_options())

    def _decode_payload(self, decoded: dict[str, Any]) -> dict[str, Any]:
        try:
            payload = json.loads(decoded["payload"], object_pairs_hook=_no_duplicates)
        except (ValueError, RecursionError) as exc:
            raise jwt.DecodeError(f"Invalid payload string: {exc}") from None
        if not isinstance(payload, dict):
            raise jwt.DecodeError("Invalid payload string: must be a json object")
        return payload


_SEGMENT = re.compile(rb"[A-Za-z0-9_-]*")
_JWT = _StrictJWT()
_UNVERIFIED = {"verify_signature": False}


def digest(credential: str) -> bytes:
    """What the cache keys on: the credential itself is never kept."""
    return hashlib.sha256(credential.encode("utf-8", "surrogatepass")).digest()


class Verifier:
    """Verifies bearer credentials against the configured issuers; one per configuration.

    Use it from the event loop's thread only. `observers` are called with each verification
    (not cache hits) and the seconds it took: a hook for tracing.
    """

    def __init__(self, config: TokenConfig, metrics: Metrics) -> None:
        self.config = config
        self.metrics = metrics
        self.observers: list[Callable[[Verification, float], None]] = []
        self._session: aiohttp.ClientSession | None = None
        self.issuers: dict[str, IssuerConfig] = {issuer.issuer: issuer for issuer in config.issuers}
        self.keys = {name: KeySet(issuer, config, metrics, self.session, self.clear)
                     for name, issuer in self.issuers.items()}
        self.introspector: Introspector | None = next(
            (Introspector(issuer, self.keys[issuer.issuer], config.fetch_timeout, metrics)
             for issuer in config.issuers if issuer.introspection_endpoint), None)
        self.cache: TLRUCache[bytes, Verification] = TLRUCache(
            maxsize=max(config.cache_size, 1), ttu=lambda _key, value, _now: value.expires_at, timer=time.time)
        self._series: dict[tuple[str, str], Any] = {}

    def session(self) -> aiohttp.ClientSession:
        """The HTTP client session, made on first use (it must be made on the running loop)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=32), headers={"user-agent": "scopesvc"})
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def clear(self) -> None:
        """Forget every verified token (a key set changed: a key may have been withdrawn)."""
        self.cache.clear()

    def cached(self, credential: str) -> Verification | None:
        """The cached verification, without I/O; counts the hit or miss."""
        if not self.config.cache_size:
            return None
        hit = self.cache.get(digest(credential)) if len(credential) <= self.config.max_bytes else None
        (self.metrics.token_cache_hits if hit is not None else self.metrics.token_cache_misses).inc()
        return hit

    async def resolve(self, credential: str) -> Verification:
        """The cached verification, or a fresh one. Raises TokensUnavailable."""
        return self.cached(credential) or await self.verify(credential)

    async def verify(self, credential: str) -> Verification:
        """Verify a credential (without looking in the cache; see `cached`). Raises TokensUnavailable."""
        start = time.perf_counter()
        if len(credential) > self.config.max_bytes:
            outcome = Verification("oversized", UNKNOWN_ISSUER)
        elif credential.count(".") == 2:
            outcome = await self._verify_jwt(credential)
        elif self.introspector is not None and credential:
            outcome = await self._introspect(credential)
        else:
            outcome = Verification("malformed", UNKNOWN_ISSUER)
        self._count(outcome)
        if self.config.cache_size and outcome.expires_at and (outcome.valid or outcome.result == "inactive"):
            self.cache[digest(credential)] = outcome
        seconds = time.perf_counter() - start
        for observer in self.observers:
            observer(outcome, seconds)
        return outcome

    def _count(self, outcome: Verification) -> None:
        key = (outcome.issuer, outcome.result)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = self.metrics.token_verifications.labels(*key)
        series.value += 1

    async def _verify_jwt(self, credential: str) -> Verification:
        try:
            unverified = _JWT.decode_complete(credential, options=_UNVERIFIED)
        except jwt.PyJWTError:
            return Verification("malformed", UNKNOWN_ISSUER)
        header, claims = unverified["header"], unverified["payload"]
        issuer = self.issuers.get(claims.get("iss")) if isinstance(claims.get("iss"), str) else None
        if issuer is None:
            return Verification("wrong_issuer", UNKNOWN_ISSUER)
        name = issuer.issuer
        alg, kid = header.get("alg"), header.get("kid")
        if not isinstance(alg, str) or alg not in issuer.algorithms:
            return Verification("bad_algorithm", name)
        if kid is not None and not isinstance(kid, str):
            return Verification("malformed", name)
        key: Any
        if alg in HMAC:
            key = issuer.hmac_secret
        else:
            keys = self.keys[name]
            key = keys.find_now(kid, alg) or await keys.key(kid, alg)
            if key is None:
                return Verification("unknown_kid", name)
        try:
            decoded = _JWT.decode_complete(
                credential, key, algorithms=[alg], audience=list(issuer.audiences), issuer=name,
                leeway=issuer.leeway, options={"require": ["exp", "iss", "aud"], "verify_iat": True})
        except jwt.PyJWTError as exc:
            return Verification(next(result for kind, result in _ERRORS if isinstance(exc, kind)), name)
        if issuer.require_typ and str(decoded["header"].get("typ", "")).lower() not in ("at+jwt", "application/at+jwt"):
            return Verification("wrong_type", name)
        return self._valid(decoded["payload"], issuer, "jwt")

    def _valid(self, claims: Mapping[str, Any], issuer: IssuerConfig, method: str) -> Verification:
        try:
            token = token_from_claims(claims, issuer.claims)
        except RequestError:
            return Verification("bad_claims", issuer.issuer, method=method)
        exp = claims.get("exp")
        now = time.time()
        limit = now + self.config.cache_ttl
        expires_at = min(float(exp), limit) if isinstance(exp, (int, float)) and not isinstance(exp, bool) else 0.0
        return Verification(VALID, issuer.issuer, token, string_claim(claims, "sub"),
                            string_claim(claims, "client_id", "azp"), expires_at, method)

    async def _introspect(self, credential: str) -> Verification:
        introspector = self.introspector
        assert introspector is not None
        issuer = introspector.issuer
        name = issuer.issuer
        answer = await introspector.introspect(self.session(), credential)
        if not answer["active"]:
            return Verification("inactive", name, expires_at=time.time() + self.config.negative_ttl,
                                method="introspection")
        exp = answer.get("exp")
        if isinstance(exp, (int, float)) and not isinstance(exp, bool) and exp + issuer.leeway < time.time():
            return Verification("expired", name, method="introspection")
        iss = answer.get("iss")
        if iss is not None and iss != name:
            return Verification("wrong_issuer", name, method="introspection")
        aud = answer.get("aud")
        if aud is not None:
            named = {aud} if isinstance(aud, str) else set(aud) if isinstance(aud, list) else set()
            if not named & set(issuer.audiences):
                return Verification("wrong_audience", name, method="introspection")
        outcome = self._valid(answer, issuer, "introspection")
        if outcome.valid and not outcome.expires_at:  # no exp: cache only for the configured maximum
            outcome = Verification(outcome.result, outcome.issuer, outcome.token, outcome.subject,
                                   outcome.client_id, time.time() + self.config.cache_ttl, outcome.method)
        return outcome


async def check_available(verifier: Verifier) -> None:
    """Fetch every issuer's keys once (at start: a failure is logged, not fatal)."""
    await asyncio.gather(*(keys.refresh() for keys in verifier.keys.values() if keys.issuer.uses_keys))


__all__ = ["DESCRIPTIONS", "TokensUnavailable", "Verification", "Verifier", "check_available", "digest"]
