"""Bearer token verification: a credential in, the engine's `Token` out (or why it is not one).

Outside the pure policy core: this package holds keys, fetches over the network and keeps a
cache. `config` (issuers), `keys` (JWKS discovery, fetch, rotation), `introspection`
(RFC 7662), `claims` (claims to `Token`), `verifier` (the whole check and its cache).
"""

from .config import IssuerConfig, TokenConfig
from .errors import TokensUnavailable
from .verifier import Verification, Verifier

__all__ = ["IssuerConfig", "TokenConfig", "TokensUnavailable", "Verification", "Verifier"]
