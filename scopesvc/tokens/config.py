"""Trusted issuers and how their tokens are verified, from `scopesvc serve` options.

One issuer comes from the `--jwt-*` and `--introspection-*` flags; several from `jwt_issuers`
in the --config file (a list of mappings whose keys are the flag names without the `jwt_`
prefix). Defaults are the safe ones: asymmetric algorithms only, `exp` required, at least one
audience, HMAC only with a secret given in a file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..ops.config import ConfigError, ServerConfig
from .claims import ClaimMapping

ASYMMETRIC = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
HMAC = ("HS256", "HS384", "HS512")
AUTH_METHODS = ("client_secret_basic", "client_secret_post")
DISCOVER = "discover"


def _words(value: Any, where: str) -> tuple[str, ...]:
    """A list from a YAML list or a space/comma-separated string."""
    if isinstance(value, str):
        return tuple(part for part in value.replace(",", " ").split() if part)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise ConfigError(f"{where}: expected a list of strings or a space-separated string")


@dataclass(frozen=True)
class IssuerConfig:
    """One trusted issuer: where its keys are, what its tokens must say, how to introspect."""

    issuer: str
    audiences: tuple[str, ...]
    jwks_uri: str = ""  # empty (and no jwks_file): OIDC discovery, then RFC 8414 metadata
    jwks_file: str = ""
    algorithms: tuple[str, ...] = ASYMMETRIC
    leeway: float = 30.0
    require_typ: bool = False  # RFC 9068: the header's typ must be at+jwt
    hmac_secret: bytes = field(default=b"", repr=False)
    claims: ClaimMapping = field(default_factory=ClaimMapping)
    introspection_endpoint: str = ""  # a URL, "discover" (from the metadata), or empty: no introspection
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    auth_method: str = "client_secret_basic"

    def __post_init__(self) -> None:
        where = f"issuer {self.issuer!r}"
        if not self.issuer.startswith(("https://", "http://")):
            raise ConfigError(f"{where}: the issuer must be an http(s) URL")
        if not self.audiences:
            raise ConfigError(f"{where}: give at least one accepted audience (jwt_audience)")
        if self.jwks_uri and self.jwks_file:
            raise ConfigError(f"{where}: give jwks_uri or jwks_file, not both")
        unknown = [alg for alg in self.algorithms if alg not in ASYMMETRIC + HMAC]
        if unknown or not self.algorithms:
            raise ConfigError(f"{where}: algorithms must be among {', '.join(ASYMMETRIC + HMAC)} (not none)")
        hmac = [alg for alg in self.algorithms if alg in HMAC]
        if hmac and not self.hmac_secret:
            raise ConfigError(f"{where}: {', '.join(hmac)} need an explicit secret (jwt_hmac_secret_file)")
        if self.hmac_secret and not hmac:
            raise ConfigError(f"{where}: an HMAC secret is given but no HS* algorithm is allowed")
        if self.leeway < 0 or self.leeway > 300:
            raise ConfigError(f"{where}: leeway must be 0..300 seconds")
        if self.auth_method not in AUTH_METHODS:
            raise ConfigError(f"{where}: auth_method must be one of {', '.join(AUTH_METHODS)}")
        if self.introspection_endpoint and not self.client_id:
            raise ConfigError(f"{where}: introspection needs a client_id (and its secret file)")

    @property
    def uses_keys(self) -> bool:
        """True when its JWTs are checked with a public key set (not only an HMAC secret)."""
        return any(alg in ASYMMETRIC for alg in self.algorithms)


@dataclass(frozen=True)
class TokenConfig:
    """Every issuer, plus the bounds that apply to all of them."""

    issuers: tuple[IssuerConfig, ...] = ()
    max_bytes: int = 8192
    cache_size: int = 10000
    cache_ttl: float = 300.0
    negative_ttl: float = 10.0
    refresh_min: float = 15.0
    refresh_max: float = 3600.0
    refresh_default: float = 300.0
    grace: float = 3600.0
    fetch_timeout: float = 5.0
    file_interval: float = 2.0

    def __post_init__(self) -> None:
        names = [issuer.issuer for issuer in self.issuers]
        if len(set(names)) != len(names):
            raise ConfigError("jwt_issuers: an issuer is listed twice")
        if sum(1 for issuer in self.issuers if issuer.introspection_endpoint) > 1:
            raise ConfigError("jwt_issuers: at most one issuer may introspect opaque tokens "
                              "(an opaque token says nothing about who issued it)")
        if not 0 < self.refresh_min <= self.refresh_max:
            raise ConfigError("jwks_refresh_min: must be positive and at most jwks_refresh_max")

    @property
    def enabled(self) -> bool:
        return bool(self.issuers)

    @classmethod
    def from_server_config(cls, config: ServerConfig) -> TokenConfig:
        """The issuers of `scopesvc serve` options: the flags' one, then the config file's list."""
        issuers: list[IssuerConfig] = []
        legacy = config.legacy_claim
        if config.jwt_issuer:
            issuers.append(_issuer({
                "issuer": config.jwt_issuer, "jwks_uri": config.jwt_jwks_uri, "jwks_file": config.jwt_jwks_file,
                "audience": config.jwt_audience, "algorithms": config.jwt_algorithms, "leeway": config.jwt_leeway,
                "require_typ": config.jwt_require_typ, "hmac_secret_file": config.jwt_hmac_secret_file,
                "scope_claim": config.jwt_scope_claim, "kind_claim": config.jwt_kind_claim,
                "introspection_endpoint": config.introspection_endpoint,
                "client_id": config.introspection_client_id,
                "client_secret_file": config.introspection_client_secret_file,
                "auth_method": config.introspection_auth_method,
            }, "jwt_issuer", legacy))
        elif config.jwt_jwks_uri or config.jwt_jwks_file or config.introspection_endpoint:
            raise ConfigError("jwt_issuer: required with jwt_jwks_uri, jwt_jwks_file or introspection_endpoint")
        for i, item in enumerate(config.jwt_issuers):
            if not isinstance(item, Mapping):
                raise ConfigError(f"jwt_issuers[{i}]: expected a mapping")
            issuers.append(_issuer(item, f"jwt_issuers[{i}]", legacy))
        return cls(tuple(issuers), max_bytes=config.jwt_max_bytes, cache_size=config.token_cache_size,
                   cache_ttl=config.token_cache_ttl, refresh_min=config.jwks_refresh_min,
                   refresh_max=config.jwks_refresh_max, grace=config.jwks_grace,
                   fetch_timeout=config.jwks_timeout, file_interval=config.reload_interval)


_KEYS = {"issuer", "jwks_uri", "jwks_file", "audience", "audiences", "algorithms", "leeway", "require_typ",
         "hmac_secret_file", "scope_claim", "kind_claim", "legacy_claim", "introspection_endpoint", "client_id",
         "client_secret_file", "auth_method"}


def _read_secret(path: str, where: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            secret = handle.read().strip()
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {path}: {exc.strerror or exc}") from None
    if not secret:
        raise ConfigError(f"{where}: {path} is empty")
    return secret


def _issuer(item: Mapping[str, Any], where: str, legacy_claim: str) -> IssuerConfig:
    values = {str(key).replace("-", "_"): value for key, value in item.items()}
    unknown = sorted(set(values) - _KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")

    def text(name: str) -> str:
        value = values.get(name) or ""
        if not isinstance(value, str):
            raise ConfigError(f"{where}.{name}: expected a string")
        return value

    try:
        leeway = float(values.get("leeway", 30.0))
    except (TypeError, ValueError):
        raise ConfigError(f"{where}.leeway: expected a number of seconds") from None
    algorithms = values.get("algorithms") or ""
    secret_file = text("hmac_secret_file")
    client_secret_file = text("client_secret_file")
    require_typ = values.get("require_typ", False)
    if not isinstance(require_typ, bool):
        raise ConfigError(f"{where}.require_typ: expected true or false")
    try:
        return IssuerConfig(
            issuer=text("issuer"),
            audiences=_words(values.get("audiences", values.get("audience", "")), f"{where}.audience"),
            jwks_uri=text("jwks_uri"), jwks_file=text("jwks_file"),
            algorithms=_words(algorithms, f"{where}.algorithms") if algorithms else ASYMMETRIC,
            leeway=leeway, require_typ=require_typ,
            hmac_secret=_read_secret(secret_file, f"{where}.hmac_secret_file").encode() if secret_file else b"",
            claims=ClaimMapping(text("scope_claim"), text("kind_claim"), text("legacy_claim") or legacy_claim),
            introspection_endpoint=text("introspection_endpoint"), client_id=text("client_id"),
            client_secret=_read_secret(client_secret_file, f"{where}.client_secret_file") if client_secret_file else "",
            auth_method=text("auth_method") or "client_secret_basic",
        )
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
