"""Token verification against generated keys served by a real HTTP server on loopback.

Each edge case is a token a real attacker or a misconfigured issuer could send; the verifier
must name why it is refused, and only key-source failures may be the service's own failure.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from prometheus_client import generate_latest

from scopesvc.ops.metrics import Metrics
from scopesvc.policy import TokenFormat, TokenKind
from scopesvc.tokens import IssuerConfig, TokenConfig, TokensUnavailable, Verifier
from scopesvc.tokens.claims import ClaimMapping

from .token_helpers import AUDIENCE, KeyServer, SigningKey, b64, claims


@pytest.fixture(scope="module")
def rsa_key() -> SigningKey:
    return SigningKey("rsa-1")


@pytest.fixture(scope="module")
def ec_key() -> SigningKey:
    return SigningKey("ec-1", "ES256")


@pytest.fixture
def keys(rsa_key: SigningKey, ec_key: SigningKey) -> Iterator[KeyServer]:
    server = KeyServer(rsa_key, ec_key)
    yield server
    server.close()


def make(server: KeyServer, **options: Any) -> tuple[Verifier, Metrics]:
    issuer_options = {k: options.pop(k) for k in list(options) if k in IssuerConfig.__dataclass_fields__}
    issuer = IssuerConfig(server.issuer, (AUDIENCE,), **issuer_options)
    metrics = Metrics()
    return Verifier(TokenConfig((issuer,), **options), metrics), metrics


def run(verifier: Verifier, *credentials: str) -> list[Any]:
    """Verify each credential in turn on one loop; a TokensUnavailable is returned, not raised."""

    async def main() -> list[Any]:
        results: list[Any] = []
        try:
            for credential in credentials:
                try:
                    results.append(verifier.cached(credential) or await verifier.verify(credential))
                except TokensUnavailable as exc:
                    results.append(exc)
        finally:
            await verifier.close()
        return results

    return asyncio.run(main())


def results(verifier: Verifier, *credentials: str) -> list[str]:
    return [getattr(outcome, "result", "unavailable") for outcome in run(verifier, *credentials)]


def test_valid_rs256_and_es256_tokens_become_the_engines_token(keys: KeyServer, rsa_key: SigningKey,
                                                                ec_key: SigningKey) -> None:
    verifier, metrics = make(keys)
    rs, es = run(verifier, rsa_key.sign(claims(keys.issuer, scope="users:read groups:read")),
                 ec_key.sign(claims(keys.issuer, scp=["a:read", "b:write"], scope=None)))
    assert rs.valid and rs.token.scopes == ("users:read", "groups:read")
    assert (rs.subject, rs.client_id, rs.issuer) == ("user-1", "app-1", keys.issuer)
    assert rs.token.issued_at is not None and rs.token.format == TokenFormat.UNSPECIFIED
    assert es.valid and es.token.scopes == ("a:read", "b:write")
    text = generate_latest(metrics.registry).decode()
    assert f'scopesvc_token_verifications_total{{issuer="{keys.issuer}",result="valid"}} 2.0' in text
    assert keys.fetches == 1  # discovery once, the key set once, for both tokens


def test_edge_cases_are_named(keys: KeyServer, rsa_key: SigningKey) -> None:
    issuer = keys.issuer
    now = int(time.time())
    public_pem = rsa_key.private.public_key().public_bytes(
        encoding=serialization.Encoding.PEM, format=serialization.PublicFormat.SubjectPublicKeyInfo)
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": rsa_key.kid}).encode())
    body = b64(json.dumps(claims(issuer)).encode())
    hs_with_public_key = f"{header}.{body}." + b64(hmac.new(public_pem, f"{header}.{body}".encode(),
                                                            hashlib.sha256).digest())
    alg_none = f"{b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{body}."
    good = rsa_key.sign(claims(issuer))
    head, _payload, signature = good.split(".")
    forged = f"{head}.{b64(json.dumps(claims(issuer, scope='admin')).encode())}.{signature}"
    duplicate = jwt.PyJWS().encode(
        f'{{"iss":"{issuer}","aud":"{AUDIENCE}","exp":{now + 300},"scope":"users:read","scope":"admin"}}'.encode(),
        rsa_key.private, algorithm="RS256", headers={"kid": rsa_key.kid})
    cases = {
        "expired": rsa_key.sign(claims(issuer, lifetime=-120)),
        "not_yet_valid": rsa_key.sign(claims(issuer, nbf=now + 600)),
        "wrong_audience": rsa_key.sign(claims(issuer, aud="https://other.example")),
        "wrong_issuer": rsa_key.sign(claims("https://evil.example")),
        "bad_algorithm": alg_none,
        "unknown_kid": rsa_key.sign(claims(issuer), kid="nobody"),
        "bad_signature": forged,
        "oversized": rsa_key.sign(claims(issuer, padding="x" * 9000)),
        "malformed": duplicate,
        "missing_claim": rsa_key.sign({k: v for k, v in claims(issuer).items() if k != "exp"}),
    }
    verifier, metrics = make(keys)
    got = results(verifier, *cases.values(), hs_with_public_key, "not-a-token", good)
    assert got == [*cases, "bad_algorithm", "malformed", "valid"]
    text = generate_latest(metrics.registry).decode()
    assert 'result="unknown_kid"' in text and 'issuer="unknown",result="wrong_issuer"' in text


def test_required_typ_and_configured_hmac_secret(keys: KeyServer, rsa_key: SigningKey) -> None:
    verifier, _ = make(keys, require_typ=True)
    assert results(verifier, rsa_key.sign(claims(keys.issuer)),
                   rsa_key.sign(claims(keys.issuer), headers={"typ": "at+jwt"})) == ["wrong_type", "valid"]
    secret = b"a-secret-of-at-least-32-bytes-long!!"
    verifier, _ = make(keys, algorithms=("HS256",), hmac_secret=secret)
    good = jwt.encode(claims(keys.issuer), secret, algorithm="HS256")
    other = jwt.encode(claims(keys.issuer), b"another-secret-of-at-least-32-bytes", algorithm="HS256")
    assert results(verifier, good, other, rsa_key.sign(claims(keys.issuer))) == [
        "valid", "bad_signature", "bad_algorithm"]


def test_claim_mapping_nested_scopes_kind_and_legacy(keys: KeyServer, rsa_key: SigningKey) -> None:
    mapping = ClaimMapping(scope_claim="realm_access.roles", kind_claim="token_kind", legacy_claim="legacy")
    verifier, _ = make(keys, claims=mapping)
    outcome, = run(verifier, rsa_key.sign(claims(keys.issuer, realm_access={"roles": ["users:read", "x:y"]},
                                                 token_kind="PAT", legacy=True, azp="app-2", client_id=None)))
    assert outcome.token.scopes == ("users:read", "x:y")  # `scope` is not read when a claim is configured
    assert outcome.token.kind == TokenKind.PERSONAL_ACCESS_TOKEN and outcome.token.format == TokenFormat.LEGACY
    assert outcome.client_id == "app-2"
    verifier, _ = make(keys)
    assert results(verifier, rsa_key.sign(claims(keys.issuer, scope=7))) == ["bad_claims"]


def test_rfc8414_metadata_when_there_is_no_openid_configuration(keys: KeyServer, rsa_key: SigningKey) -> None:
    keys.oidc = False
    verifier, _ = make(keys)
    assert results(verifier, rsa_key.sign(claims(keys.issuer))) == ["valid"]


def test_symmetric_keys_in_a_jwks_are_never_used(keys: KeyServer) -> None:
    secret = b"shared-secret-in-the-jwks-000000000"
    keys.extra_jwks = [{"kty": "oct", "kid": "sym", "alg": "HS256", "k": b64(secret)}]
    verifier, _ = make(keys, algorithms=("RS256", "HS256"), hmac_secret=b"the-configured-secret-000000000000")
    forged = jwt.encode(claims(keys.issuer), secret, algorithm="HS256", headers={"kid": "sym"})
    assert results(verifier, forged) == ["bad_signature"]


def test_unknown_kid_burst_fetches_at_most_once_per_interval(keys: KeyServer, rsa_key: SigningKey) -> None:
    verifier, _ = make(keys, refresh_min=60.0)
    tokens = [rsa_key.sign(claims(keys.issuer), kid=f"random-{i}") for i in range(200)]
    got = results(verifier, rsa_key.sign(claims(keys.issuer)), *tokens)
    assert got == ["valid"] + ["unknown_kid"] * 200
    assert keys.fetches == 1  # the first fetch was within the interval: no refetch for any of the 200 kids


def test_rotation_is_picked_up_on_first_sight_of_the_new_kid(keys: KeyServer, rsa_key: SigningKey) -> None:
    verifier, _ = make(keys, refresh_min=0.05)
    new = SigningKey("rsa-2")
    old_token = rsa_key.sign(claims(keys.issuer))

    async def main() -> list[str]:
        try:
            first = await verifier.verify(old_token)
            assert len(verifier.cache) == 1
            keys.keys = [new]  # rotated: the old key withdrawn, the new one published
            await asyncio.sleep(0.06)
            # Concurrent requests with the new kid share one refetch; none fails.
            outcomes = await asyncio.gather(*(verifier.verify(new.sign(claims(keys.issuer, jti=str(i))))
                                              for i in range(20)))
            assert len(verifier.cache) == 20, [o.result for o in outcomes]  # the key-set change emptied the old token
            after = await verifier.verify(old_token)
            return [first.result, *{o.result for o in outcomes}, after.result]
        finally:
            await verifier.close()

    assert asyncio.run(main()) == ["valid", "valid", "unknown_kid"]
    assert keys.fetches <= 3


def test_outage_serves_the_last_good_keys_for_the_grace_period_then_fails_closed(
        keys: KeyServer, rsa_key: SigningKey) -> None:
    keys.cache_control = "max-age=0"
    verifier, metrics = make(keys, refresh_min=0.05, grace=0.5)

    async def main() -> list[str]:
        out = []
        try:
            out.append((await verifier.verify(rsa_key.sign(claims(keys.issuer)))).result)
            keys.failing = True
            await asyncio.sleep(0.1)
            out.append((await verifier.verify(rsa_key.sign(claims(keys.issuer, jti="a")))).result)
            await asyncio.sleep(0.6)
            try:
                await verifier.verify(rsa_key.sign(claims(keys.issuer, jti="b")))
                out.append("answered")
            except TokensUnavailable:
                out.append("unavailable")
            keys.failing = False
            await asyncio.sleep(0.1)
            out.append((await verifier.verify(rsa_key.sign(claims(keys.issuer, jti="c")))).result)
        finally:
            await verifier.close()
        return out

    assert asyncio.run(main()) == ["valid", "valid", "unavailable", "valid"]
    text = generate_latest(metrics.registry).decode()
    assert f'scopesvc_jwks_fetches_total{{issuer="{keys.issuer}",result="error"}}' in text


def test_cache_control_max_age_is_honoured_within_bounds(keys: KeyServer, rsa_key: SigningKey) -> None:
    keys.cache_control = "public, max-age=0"
    verifier, _ = make(keys, refresh_min=30.0)  # max-age 0 is raised to the lower bound
    results(verifier, *(rsa_key.sign(claims(keys.issuer, jti=str(i))) for i in range(5)))
    assert keys.fetches == 1


def test_no_key_source_at_all_is_unavailable_not_a_deny(rsa_key: SigningKey) -> None:
    issuer = IssuerConfig("http://127.0.0.1:9", (AUDIENCE,))
    verifier = Verifier(TokenConfig((issuer,), fetch_timeout=1.0), Metrics())
    assert results(verifier, rsa_key.sign(claims(issuer.issuer))) == ["unavailable"]


def test_local_jwks_file_is_reloaded(tmp_path: Any, rsa_key: SigningKey) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [rsa_key.jwk]}))
    issuer = IssuerConfig("https://issuer.example", (AUDIENCE,), jwks_file=str(path))
    verifier = Verifier(TokenConfig((issuer,), file_interval=0.05, refresh_min=0.05), Metrics())
    new = SigningKey("rsa-2")

    async def main() -> list[str]:
        try:
            first = await verifier.verify(rsa_key.sign(claims(issuer.issuer)))
            path.write_text(json.dumps({"keys": [new.jwk]}))
            os.utime(path)
            await asyncio.sleep(0.1)
            second = await verifier.verify(new.sign(claims(issuer.issuer)))
            old = await verifier.verify(rsa_key.sign(claims(issuer.issuer, jti="x")))
            return [first.result, second.result, old.result]
        finally:
            await verifier.close()

    assert asyncio.run(main()) == ["valid", "valid", "unknown_kid"]


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_introspection_of_opaque_tokens(keys: KeyServer, method: str) -> None:
    now = int(time.time())
    keys.active["opaque-1"] = {"active": True, "scope": "users:read", "sub": "u", "client_id": "c",
                               "exp": now + 600, "iss": keys.issuer, "aud": AUDIENCE}
    keys.active["opaque-expired"] = {"active": True, "scope": "users:read", "exp": now - 600}
    verifier, metrics = make(keys, introspection_endpoint="discover", client_id="scopesvc",
                             client_secret="s3cret", auth_method=method)
    got = run(verifier, "opaque-1", "opaque-1", "opaque-2", "opaque-2", "opaque-expired")
    assert [o.result for o in got] == ["valid", "valid", "inactive", "inactive", "expired"]
    assert got[0].token.scopes == ("users:read",) and got[0].subject == "u"
    assert len(keys.introspections) == 3  # cached by digest: valid and inactive answers alike
    assert all("opaque" not in repr(key) for key in verifier.cache)  # digests, never the token
    text = generate_latest(metrics.registry).decode()
    assert "scopesvc_introspection_seconds_count" in text and "scopesvc_token_cache_hits_total 2.0" in text


def test_introspection_outage_is_unavailable(keys: KeyServer) -> None:
    keys.failing = True
    verifier, _ = make(keys, introspection_endpoint=f"{keys.issuer}/introspect", client_id="scopesvc",
                       client_secret="s3cret")
    assert results(verifier, "opaque-1") == ["unavailable"]
    keys.failing = False
    keys.client = ("scopesvc", "other")  # wrong credentials: the endpoint refuses scopesvc itself
    verifier, _ = make(keys, introspection_endpoint=f"{keys.issuer}/introspect", client_id="scopesvc",
                       client_secret="s3cret")
    assert results(verifier, "opaque-1") == ["unavailable"]
