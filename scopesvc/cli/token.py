"""`scopesvc token inspect`: verify a bearer token as the server would, and say why it is or is not accepted.

The issuers come from the same options as `scopesvc serve` (flags, SCOPESVC_* variables, the
--config file), so an operator can ask about a token with the configuration the server runs with.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from ..ops import config as server_config
from ..ops.metrics import Metrics
from ..policy import Engine, TokenKind
from ..tokens import TokenConfig, TokensUnavailable, Verification, Verifier
from ..tokens.verifier import VALID
from .common import EXIT_ALLOW, EXIT_DENY, UsageError, add_catalog
from .common import engine as engine_of

# The `scopesvc serve` options that say which issuers to trust and how.
ISSUER_OPTIONS = tuple(name for name in server_config.FIELDS
                       if name.startswith(("jwt_issuer", "jwt_audience", "jwt_jwks", "jwt_algorithms", "jwt_leeway",
                                           "jwt_require", "jwt_hmac", "jwt_scope_claim", "jwt_kind", "jwt_max",
                                           "introspection_", "jwks_", "legacy_claim")))


def add_issuer_options(parser: argparse.ArgumentParser) -> None:
    server_config.add_arguments(parser, ISSUER_OPTIONS)


def verify(args: argparse.Namespace, credential: str) -> Verification:
    """Verify `credential` with the issuers the options name; UsageError when none is configured or reachable."""
    tokens = TokenConfig.from_server_config(server_config.resolve(args))
    if not tokens.enabled:
        raise UsageError("no trusted issuer: give --jwt-issuer and --jwt-audience (or --config FILE)")

    async def run() -> Verification:
        verifier = Verifier(tokens, Metrics())  # a throwaway registry: one token, then exit
        try:
            return await verifier.verify(credential)
        finally:
            await verifier.close()

    try:
        return asyncio.run(run())
    except TokensUnavailable as exc:
        raise UsageError(f"cannot verify the token now: {exc}") from None


def report(verification: Verification, engine: Engine) -> dict[str, Any]:
    """What the verification found, as a JSON-ready mapping."""
    token = verification.token
    out: dict[str, Any] = {
        "accepted": verification.valid,
        "result": verification.result,
        "why": "valid: signature, issuer, audience and lifetime check out" if verification.valid
        else verification.description,
        "issuer": verification.issuer,
        "method": verification.method,
    }
    if token is not None:
        fmt = engine.token_format(token)
        out |= {
            "subject": verification.subject,
            "client_id": verification.client_id,
            "scopes": list(token.scopes),
            "kind": TokenKind(token.kind).name if token.kind in TokenKind._value2member_map_ else str(token.kind),
            "format": fmt.name if fmt is not None else f"unknown ({token.format})",
            "issued_at": token.issued_at.isoformat() if token.issued_at else None,
        }
    return out


def cmd_inspect(args: argparse.Namespace) -> int:
    verification = verify(args, args.token)
    found = report(verification, engine_of(args))
    if args.json:
        print(json.dumps(found, indent=2))
    else:
        print(f"{'ACCEPTED' if found['accepted'] else 'REJECTED'} ({found['result']}): {found['why']}")
        for key in ("issuer", "method", "subject", "client_id", "kind", "format", "issued_at"):
            if found.get(key):
                print(f"  {key + ':':<11} {found[key]}")
        if "scopes" in found:
            print(f"  scopes:     {' '.join(found['scopes']) or '(none)'}")
    return EXIT_ALLOW if verification.result == VALID else EXIT_DENY


def register(commands: Any, json_flag: argparse.ArgumentParser) -> None:
    """Add `token inspect` to the top-level subparsers."""
    token = commands.add_parser("token", help="bearer tokens: verify with the configured issuers")
    verbs = token.add_subparsers(dest="verb", required=True, metavar="VERB")
    inspect = verbs.add_parser(
        "inspect", parents=[json_flag], help="verify a token and say why it is or is not accepted (exit 0/1)",
        description="Verify TOKEN against the trusted issuers (the `scopesvc serve` options, variables or "
                    "--config file) and print its issuer, subject, scopes, kind and format.")
    inspect.add_argument("token", metavar="TOKEN", help="the access token (JWT or opaque)")
    add_issuer_options(inspect)
    add_catalog(inspect)
    inspect.set_defaults(func=cmd_inspect)
