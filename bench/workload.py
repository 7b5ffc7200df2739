"""The requests the benchmark asks: concrete paths and a realistic mix of tokens, from a catalog.

Every endpoint is asked with concrete ids (and a query string on collection reads) by each kind
of token that applies to it:
- `exact`: the token holds exactly the scopes the endpoint requires (allowed);
- `write_implies_read`: an `X:write` token calling an `X:read` endpoint (allowed by implication);
- `missing`: a token holding other scopes (denied, insufficient scope);
- `legacy`: a pre-scopes token (allowed, full access);
- `unknown`: a token holding strings the catalog does not know, e.g. `invitees:read` (denied).
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass

from scopesvc.policy import Catalog, Endpoint, Token
from scopesvc.policy.model import TokenFormat
from scopesvc.v1 import scopesvc_pb2 as pb

KINDS = ("exact", "write_implies_read", "missing", "legacy", "unknown")
# The representative set a load generator sends, one request per body: every kind, twice the common ones.
H2LOAD_KINDS = ("exact", "write_implies_read", "missing", "legacy", "unknown", "exact", "missing", "write_implies_read")


@dataclass(frozen=True)
class Case:
    kind: str
    endpoint: Endpoint
    token: Token
    method: str
    path: str

    def request(self) -> pb.CheckRequest:
        token = pb.Token(scopes=self.token.scopes, format=self.token.format)  # type: ignore[arg-type]
        return pb.CheckRequest(token=token, method=self.method, path=self.path)

    @property
    def label(self) -> str:
        return f"{self.kind}: {self.method} {self.path}"


def grpc_frame(payload: bytes) -> bytes:
    """A gRPC length-prefixed message (uncompressed), as sent on the wire."""
    return struct.pack(">BI", 0, len(payload)) + payload


def concrete_path(endpoint: Endpoint, rng: random.Random) -> str:
    segments = [
        rng.randbytes(8).hex().upper() if s.startswith("{") else s for s in endpoint.template.split("/")
    ]
    path = "/".join(segments)
    if endpoint.method == "GET" and not endpoint.template.endswith("}"):
        path += f"?count={rng.choice((10, 20, 100))}&page_token={rng.randbytes(6).hex()}&sort=created_at:asc"
    return path


def _token(case_kind: str, endpoint: Endpoint, catalog: Catalog, rng: random.Random) -> Token | None:
    scoped = TokenFormat.SCOPED
    if case_kind == "exact":
        return Token(endpoint.scopes, scoped)
    if case_kind == "write_implies_read":
        writes = tuple(s.replace(":read", ":write") for s in endpoint.scopes)
        if writes == endpoint.scopes or not all(w in catalog.universe for w in writes):
            return None
        return Token(writes, scoped)
    if case_kind == "missing":
        universe = catalog.universe
        others = [s for s in universe.names if not universe.effective([s]) & endpoint.mask]
        return Token(tuple(rng.sample(others, min(3, len(others)))), scoped) if others else None
    if case_kind == "legacy":
        return Token((), TokenFormat.LEGACY)
    if case_kind == "unknown":
        return Token(("invitees:read", "admin", "calendar.readonly"), scoped)
    raise ValueError(case_kind)


def full_mix(catalog: Catalog, seed: int = 5, max_endpoints: int = 500) -> list[Case]:
    """Every endpoint (a seeded sample of `max_endpoints` in bigger catalogs) asked by every token kind that applies."""
    rng = random.Random(seed)
    endpoints = catalog.endpoints
    if len(endpoints) > max_endpoints:
        endpoints = tuple(rng.sample(endpoints, max_endpoints))
    cases = []
    for endpoint in endpoints:
        for kind in KINDS:
            token = _token(kind, endpoint, catalog, rng)
            if token is not None:
                cases.append(Case(kind, endpoint, token, endpoint.method, concrete_path(endpoint, rng)))
    rng.shuffle(cases)
    return cases


def representative(cases: list[Case]) -> list[Case]:
    """One case per entry of H2LOAD_KINDS, each on a different endpoint (the first in shuffled order)."""
    chosen: list[Case] = []
    used: set[str] = set()
    for kind in H2LOAD_KINDS:
        case = next(c for c in cases if c.kind == kind and c.endpoint.key not in used)
        used.add(case.endpoint.key)
        chosen.append(case)
    return chosen
