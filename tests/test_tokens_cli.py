"""`scopesvc token inspect` and `scopesvc check --bearer`, run as commands with a local JWKS file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .token_helpers import AUDIENCE, SigningKey, claims

ISSUER = "https://issuer.example"


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey("cli-1")


@pytest.fixture(scope="module")
def jwks(key: SigningKey, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("jwks") / "jwks.json"
    path.write_text(json.dumps({"keys": [key.jwk]}))
    return path


def scopesvc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "scopesvc", *args], capture_output=True, text=True, timeout=60, check=False,
                          env={"PATH": "/usr/bin:/bin"})


def issuer_flags(jwks: Path) -> list[str]:
    return ["--jwt-issuer", ISSUER, "--jwt-audience", AUDIENCE, "--jwt-jwks-file", str(jwks)]


def test_inspect_says_what_the_token_is_and_why(key: SigningKey, jwks: Path) -> None:
    good = key.sign(claims(ISSUER, scope="users:read groups:read", token_kind="pat"))
    done = scopesvc("token", "inspect", good, *issuer_flags(jwks), "--jwt-kind-claim", "token_kind")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ACCEPTED (valid)")
    assert "scopes:     users:read groups:read" in done.stdout and "PERSONAL_ACCESS_TOKEN" in done.stdout
    as_json = json.loads(scopesvc("token", "inspect", good, *issuer_flags(jwks), "--json").stdout)
    assert as_json["accepted"] and as_json["issuer"] == ISSUER and as_json["format"] == "SCOPED"
    expired = scopesvc("token", "inspect", key.sign(claims(ISSUER, lifetime=-300)), *issuer_flags(jwks), "--json")
    assert expired.returncode == 1
    assert json.loads(expired.stdout) | {"issuer": ""} == {
        "accepted": False, "result": "expired", "why": "the access token has expired", "issuer": "", "method": "jwt"}


def test_inspect_without_an_issuer_is_a_usage_error(key: SigningKey) -> None:
    done = scopesvc("token", "inspect", key.sign(claims(ISSUER)))
    assert done.returncode == 2 and "no trusted issuer" in done.stderr and "Traceback" not in done.stderr


def test_check_with_a_bearer_token(key: SigningKey, jwks: Path) -> None:
    allowed = scopesvc("check", "GET", "/users/me", "--bearer", key.sign(claims(ISSUER)), *issuer_flags(jwks))
    assert allowed.returncode == 0 and allowed.stdout.startswith("ALLOW"), allowed.stderr
    denied = scopesvc("check", "GET", "/groups", "--bearer", key.sign(claims(ISSUER)), *issuer_flags(jwks), "--json")
    assert denied.returncode == 1 and json.loads(denied.stdout)["reason"] == "REASON_INSUFFICIENT_SCOPE"
    invalid = scopesvc("check", "GET", "/users/me", "--bearer", "x.y.z", *issuer_flags(jwks), "--json")
    assert invalid.returncode == 1
    answer = json.loads(invalid.stdout)
    assert answer["reason"] == "REASON_INVALID_TOKEN" and answer["deny"]["http_status"] == 401
    both = scopesvc("check", "GET", "/users/me", "--bearer", "x.y.z", "--scope", "users:read", *issuer_flags(jwks))
    assert both.returncode == 2 and "--bearer" in both.stderr


@pytest.mark.parametrize("flags, complaint", [
    (["--scope-source", "bearer"], "bearer needs a trusted issuer"),
    (["--jwt-issuer", ISSUER], "at least one accepted audience"),
    (["--jwt-issuer", ISSUER, "--jwt-audience", "a", "--jwt-algorithms", "HS256"], "explicit secret"),
    (["--jwt-issuer", ISSUER, "--jwt-audience", "a", "--jwt-algorithms", "none"], "not none"),
    (["--jwt-issuers", "[{issuer: https://a, audience: x}, {issuer: https://a, audience: y}]"], "listed twice"),
])
def test_serve_refuses_unsafe_or_incomplete_issuer_configuration(flags: list[str], complaint: str) -> None:
    done = scopesvc("serve", "--port", "0", "--metrics-port", "0", *flags)
    assert done.returncode == 2 and complaint in done.stderr and "Traceback" not in done.stderr, done.stderr
