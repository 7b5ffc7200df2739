"""Bearer tokens: what verifying them costs, in process and as Check throughput (`./bench/run tokens`).

In one run, on one machine, with one load generator (h2load) at the same concurrency, in
alternating rounds so a shared machine's drift hits every target alike:

- scopesvc Check on the metadata path: a `Token` with the scopes (what jwt_authn hands over);
- scopesvc Check with `bearer_token`, an RS256 and an ES256 JWT, verified-token cache on (each
  request after the first is a hit) and off (each request verified: first sight);
- Cerbos CheckResources given the same RS256 JWT in `auxData`, verified against the same JWKS
  (with Cerbos's own verified-token cache, its default).

The decision cache is off everywhere (the bodies repeat; real traffic's ids vary). In process:
microseconds per uncached verification (RS256, ES256) and per cache hit. Target: the cached bearer
path at 0.9x the metadata path's throughput or more.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path
from typing import Any

import jwt
import yaml
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from scopesvc.ops.metrics import Metrics
from scopesvc.tokens import IssuerConfig, TokenConfig, Verifier
from scopesvc.v1 import scopesvc_pb2 as pb

from .. import h2load, protos, servers, tools
from ..context import IN_FLIGHT, Context
from ..report import HEAD, row, target_rows
from ..workload import grpc_frame

NAME = "tokens"
TITLE = "Bearer tokens: verification cost, cached and uncached, beside the metadata path and Cerbos"
METADATA = "scopesvc metadata path (Token)"
TARGET = 0.9  # the cached bearer path's throughput against the metadata path's

ISSUER, AUDIENCE = "https://issuer.bench", "https://api.bench"
METHOD, PATH, SCOPES = "GET", "/users/me", "users:read"
CHECK = "/scopesvc.v1.ScopeService/Check"
CERBOS_CHECK = "/cerbos.svc.v1.CerbosService/CheckResources"


def signing_keys(workdir: Path) -> tuple[dict[str, str], Path]:
    """An RS256 and an ES256 token (valid for an hour) and the JWKS file that verifies them."""
    keys = {"RS256": rsa.generate_private_key(public_exponent=65537, key_size=2048),
            "ES256": ec.generate_private_key(ec.SECP256R1())}
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "bench", "iat": now, "exp": now + 3600, "scope": SCOPES}
    tokens = {alg: jwt.encode(claims, key, algorithm=alg, headers={"kid": alg}) for alg, key in keys.items()}
    jwks = {"keys": [
        json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(keys["RS256"].public_key())) | {"kid": "RS256", "alg": "RS256"},
        json.loads(jwt.algorithms.ECAlgorithm.to_jwk(keys["ES256"].public_key())) | {"kid": "ES256", "alg": "ES256"},
    ]}
    path = workdir / "jwks.json"
    path.write_text(json.dumps(jwks))
    return tokens, path


def inprocess_us(tokens: dict[str, str], jwks: Path, n: int) -> dict[str, float]:
    """Microseconds per verification without the cache (PyJWT, key lookup, claims) and per cache hit."""
    issuer = IssuerConfig(ISSUER, (AUDIENCE,), jwks_file=str(jwks))
    verifier = Verifier(TokenConfig((issuer,), file_interval=0), Metrics())

    async def run() -> dict[str, float]:
        out: dict[str, float] = {}
        for alg, token in tokens.items():
            assert (await verifier.verify(token)).valid
            start = time.perf_counter()
            for _ in range(n):
                await verifier.verify(token)  # verify() never reads the cache: every call is first sight
            out[f"uncached {alg}"] = (time.perf_counter() - start) / n * 1e6
            start = time.perf_counter()
            for _ in range(n):
                verifier.cached(token)
            out[f"cached {alg}"] = (time.perf_counter() - start) / n * 1e6
        await verifier.close()
        return out

    return asyncio.run(run())


def scopesvc_cmd(port: int, metrics_port: int, jwks: Path, token_cache: int) -> list[str]:
    return [*servers.scopesvc_cmd(port, metrics_port, cache_size=0), "--jwt-issuer", ISSUER,
            "--jwt-audience", AUDIENCE, "--jwt-jwks-file", str(jwks), "--token-cache-size", str(token_cache)]


def cerbos_cmd(binary: Path, workdir: Path, jwks: Path, grpc_port: int, http_port: int) -> list[str]:
    """Cerbos with a policy allowing GET /users/me to a JWT whose scope holds users:read."""
    policies = workdir / "cerbos-policies"
    policies.mkdir()
    (policies / "api.yaml").write_text(yaml.safe_dump({"apiVersion": "api.cerbos.dev/v1", "resourcePolicy": {
        "version": "default", "resource": "api", "rules": [{
            "actions": [f"{METHOD} {PATH}"], "effect": "EFFECT_ALLOW", "roles": ["scoped"],
            "condition": {"match": {"expr": f'"{SCOPES}" in request.auxData.jwt.scope.split(" ")'}}}]}}))
    config = workdir / "cerbos.yaml"
    config.write_text(yaml.safe_dump({
        "server": {"httpListenAddr": f"127.0.0.1:{http_port}", "grpcListenAddr": f"127.0.0.1:{grpc_port}"},
        "storage": {"driver": "disk", "disk": {"directory": str(policies), "watchForChanges": False}},
        "auxData": {"jwt": {"keySets": [{"id": "bench", "local": {"file": str(jwks)}}]}},
        "audit": {"enabled": False}, "telemetry": {"disabled": True}}))
    return [str(binary), "server", f"--config={config}", "--log-level=warn"]


def cerbos_body(token: str) -> bytes:
    m = protos.cerbos()
    request = m.CheckResourcesRequest(
        request_id="bench", principal=m.Principal(id="app", roles=["scoped"]),
        resources=[m.CheckResourcesRequest.ResourceEntry(actions=[f"{METHOD} {PATH}"],
                                                        resource=m.Resource(kind="api", id="r1"))],
        aux_data=m.AuxData(jwt=m.AuxData.JWT(token=token, key_set_id="bench")))
    return request.SerializeToString()


def load(port: int, method: str, body: bytes, check: Any) -> h2load.Load:
    """The h2load load for one body, after checking the answer once outside h2load."""
    reply = servers.raw_call(port, method, body)
    check(reply)
    return h2load.Load(f"http://127.0.0.1:{port}{method}", grpc_frame(body), frame=5 + len(reply))


def allowed_check(reply: bytes) -> None:
    response = pb.CheckResponse.FromString(reply)
    if not response.allowed:
        raise SystemExit(f"bench: scopesvc did not allow the benchmark request: {response}")


def cerbos_allowed(reply: bytes) -> None:
    m = protos.cerbos()
    if m.CheckResourcesResponse.FromString(reply).results[0].actions[f"{METHOD} {PATH}"] != m.EFFECT_ALLOW:
        raise SystemExit("bench: Cerbos did not allow the benchmark request (JWT in auxData)")


def run(ctx: Context) -> dict[str, Any]:
    settings = ctx.settings
    tools.h2load()
    result: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        workdir = ctx.workdir / "tokens"
        workdir.mkdir(parents=True, exist_ok=True)
        tokens, jwks = signing_keys(workdir)
        result["verification_us"] = inprocess_us(tokens, jwks, 200 if settings.quick else 3000)
        targets: dict[str, h2load.Load] = {}
        for name, cache in (("cached", 10000), ("uncached", 0)):
            port, metrics_port = servers.free_port(), servers.free_port()
            stack.enter_context(servers.running(scopesvc_cmd(port, metrics_port, jwks, cache), port,
                                                workdir / f"scopesvc-{name}.log"))
            if name == "cached":
                metadata = pb.CheckRequest(token=pb.Token(scopes=[SCOPES]), method=METHOD, path=PATH)
                targets[METADATA] = load(port, CHECK, metadata.SerializeToString(), allowed_check)
            for alg, token in tokens.items():
                request = pb.CheckRequest(bearer_token=token, method=METHOD, path=PATH)
                targets[f"scopesvc bearer {alg} {name}"] = load(port, CHECK, request.SerializeToString(),
                                                                allowed_check)
        binary = tools.cerbos() if settings.cerbos else None
        if binary is not None:
            grpc_port, http_port = servers.free_port(), servers.free_port()
            stack.enter_context(servers.running(cerbos_cmd(binary, workdir, jwks, grpc_port, http_port), grpc_port,
                                                workdir / "cerbos.log"))
            targets["Cerbos, RS256 JWT in auxData"] = load(grpc_port, CERBOS_CHECK, cerbos_body(tokens["RS256"]),
                                                          cerbos_allowed)
        runs: dict[str, list[h2load.Result]] = {name: [] for name in targets}
        for _ in range(settings.rounds):  # alternating, so the machine's other load hits every target alike
            for name, target in targets.items():
                runs[name].append(h2load.run(name, [target], streams=IN_FLIGHT, seconds=settings.seconds))
    result["runs"] = {name: h2load.merge(name, rounds) for name, rounds in runs.items()}
    return result


def correct(results: dict[str, Any]) -> bool:
    return all(r.correct for r in results["runs"].values())


def _ratios(results: dict[str, Any]) -> dict[str, float]:
    runs = results["runs"]
    base = runs[METADATA].rps
    return {name: r.rps / base for name, r in runs.items() if base}


def report(results: dict[str, Any], ctx: Context) -> list[str]:
    us = results["verification_us"]
    ratios = _ratios(results)
    cached = [name for name in ratios if name.endswith(" cached")]
    lines = [
        ("One endpoint (GET /users/me, users:read), decision cache off; the bearer tokens are verified by "
         "scopesvc against a local JWKS file. `cached`: scopesvc's verified-token cache on (every request after "
         "the first a hit); `uncached`: off (every request a first sight). Cerbos verifies the same RS256 JWT "
         "given in `auxData` (with its own default token cache)."), "",
        "| in process | µs per token |", "|---|---:|",
        *[f"| {name} | {value:.1f} |" for name, value in us.items()], "",
        HEAD, *[row(name, r) for name, r in results["runs"].items()], "",
        "| against the metadata path | throughput |", "|---|---:|",
        *[f"| {name} | {ratio:.2f}x |" for name, ratio in ratios.items() if name != METADATA], "",
    ]
    lines += target_rows([(f"cached bearer ({name}) >= {TARGET}x the metadata path", f"{ratios[name]:.2f}x",
                           f"{ratios[name]:.2f}", ratios[name] >= TARGET) for name in cached])
    return lines


def summary(results: dict[str, Any]) -> list[str]:
    ratios = _ratios(results)
    return [f"{name}: {value:.1f} us" for name, value in results["verification_us"].items()] + [
        f"{name}: {r.rps:,.0f} req/s ({ratios.get(name, 0):.2f}x metadata) correct={r.correct}"
        for name, r in results["runs"].items()]
