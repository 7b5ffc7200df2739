"""Real Envoy running `scopesvc export envoy --bootstrap` answers every request as the engine decides.

For a catalog, Envoy starts once with the exported configuration (its own jwt_authn verifying
tokens signed here, RBAC, local replies) in front of an upstream that echoes what it received.
Hundreds of requests (every endpoint with concrete ids, query strings, trailing slashes and
percent-encoded spellings, other methods, unknown, malformed and traversal paths) go through it
with every kind of token, and each answer is compared with the engine's decision for the same
request, made by the same adapter code scopesvc's ext_authz uses to read a verified JWT payload:
the status always; the challenge and the JSON body where the export carries them (docs/export.md).
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
import yaml
from hypothesis import HealthCheck, given, settings

from scopesvc.catalog import files as catalog_files
from scopesvc.export import envoy
from scopesvc.export.model import granting, iat_bounds
from scopesvc.gateway.attributes import GatewayConfig, token_from_payload
from scopesvc.policy import Catalog, Engine, Reason, RequestError, compile_catalog

from ..test_export_rules import exportable
from ..test_properties_decisions import catalogs
from .conftest import AUDIENCE, ISSUER, Keys, Process, Upstream, envoy_binary, free_port

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "scopesvc" / "catalog" / "builtin" / "example-tasks.yaml"
LEGACY_CLAIM = "legacy"
ADAPTER = GatewayConfig(legacy_claim=LEGACY_CLAIM)


# -- tokens -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    kind: str
    header: str | None  # the Authorization header value; None: no token
    payload: dict[str, Any] | None  # None: Envoy must reject the token (invalid)


class Minter:
    def __init__(self, keys: Keys) -> None:
        self.keys = keys
        self.now = int(time.time())

    def token(self, kind: str, drop: tuple[str, ...] = (), signer: Any = None, valid: bool = True,
              **claims: Any) -> Token:
        payload = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-1", "iat": self.now, "exp": self.now + 3600} | claims
        for name in drop:
            payload.pop(name)
        encoded = jwt.encode(payload, signer or self.keys.rsa_key, algorithm="RS256", headers={"kid": "rsa"})
        return Token(kind, f"Bearer {encoded}", payload if valid else None)


IAT = iat_bounds(None)  # where the adapters can read `iat` as a time


def tokens_for(catalog: Catalog, required: tuple[str, ...], minter: Minter) -> list[Token]:
    """Every kind of token, aimed at an endpoint requiring `required`."""
    names = list(catalog.universe.names)
    other = next((n for n in names if not any(n in granting(catalog, r) for r in required)), None)
    grants = " ".join(required) or names[0]  # what the endpoint requires, else some scope
    out = [
        Token("none", None, None),
        Token("not bearer", "Basic dXNlcjpwYXNz", None),
        minter.token("exact", scope=grants),
        minter.token("scp list", scp=list(required) or [names[0]]),
        minter.token("scope list", scope=[grants]),
        minter.token("odd whitespace", scope="\u2003".join(required) + "\t" if required else "\x1c" + names[0]),
        minter.token("no iat", drop=("iat",), scope=grants),
        minter.token("empty", scope=""),
        minter.token("no scope claim"),
        minter.token("unknown", scope="nonsense:read A:READ"),
        minter.token("legacy claim", legacy=True),
        minter.token("legacy claim string", legacy="legacy"),
        minter.token("legacy claim other", legacy="yes"),
        minter.token("expired", valid=False, exp=minter.now - 600, scope=" ".join(required)),
        minter.token("wrong audience", valid=False, aud="someone-else", scope=" ".join(required)),
        minter.token("stranger's key", valid=False, signer=minter.keys.stranger, scope=" ".join(required)),
    ]
    # An `iat` no time can hold: the adapters refuse the token, whatever it grants (and the last one that can).
    out += [minter.token(f"iat {when}", iat=iat, scope=grants) for when, iat in (
        ("before year 1", IAT.valid_start - 1), ("past year 9999", IAT.valid_end),
        ("the largest double", sys.float_info.max), ("the last readable second", IAT.valid_end - 1))]
    implied = [next((g for g in granting(catalog, r) if g != r), None) for r in required]
    if required and all(implied):
        out.append(minter.token("implied", scope=" ".join(dict.fromkeys(implied))))  # type: ignore[arg-type]
    if required:
        out.append(minter.token("missing one", scope=" ".join(required[:-1] + ((other,) if other else ()))))
    if other:
        out.append(minter.token("other scope", scope=other))
    cutover = catalog.scopes_introduced_at
    if cutover is not None:
        cut = cutover.timestamp()
        out += [
            minter.token("legacy by iat", iat=int(cut) - 86400),
            minter.token("legacy by iat, a second before", iat=int(cut) - 1),
            minter.token("at the cut-over", iat=int(cut)),
            minter.token("after the cut-over", iat=int(cut) + 86400, scope=other or ""),
            minter.token("legacy by fractional iat", iat=cut - 0.25),
        ]
    return out


# -- requests ---------------------------------------------------------------------------------


def concrete(template: str, value: str) -> str:
    return re.sub(r"\{[^}]+\}", value, template)


def paths_for(template: str) -> list[str]:
    base = concrete(template, "abc123")
    out = [base, base + "?q=1&r=%2F", concrete(template, "%41b"), concrete(template, "x.y~z"), template,
           base.upper(), base.swapcase() + "?Q"]
    out.append(base + "/" if base != "/" else "/?x")
    literal = next((i for i, c in enumerate(base) if c.isalpha()), None)
    if literal is not None:  # one literal character percent-encoded, as some clients send it
        out.append(base[:literal] + f"%{ord(base[literal]):02x}" + base[literal + 1:])
        out.append(base[:literal] + f"%{ord(base[literal].swapcase()):02X}" + base[literal + 1:])
    if "=**}" in template:  # a multi-segment parameter over several segments, and over none
        out += [concrete(re.sub(r"\{[^}=]+=\*\*\}", "p/Q/r", template), "abc123"),
                concrete(re.sub(r"\{[^}=]+=\*\*\}", "", template), "abc123")]
    if "}" in template and not template.endswith("}"):  # a parameter with nothing in it
        out.append(concrete(template, ""))
    return out


MALFORMED = [
    "/..", "/../etc/passwd", "/a/./b", "/%2e%2e/x", "/%2E/x", "//x", "/x//", "/x%2Fy", "/x%5cy", "/x;y", "/x/%zz",
    "/x/%4", "/x/%25", "/x/%C3", "/x/%C0%AF", "/x/%3F", "/x/%23", "/x/%00", "/x/%7F", "/{1}", "/x/%252e",
]
CODEC = ["/x y", "/x\\y", "/x#frag", "/é"]  # raw bytes Envoy's HTTP/1 codec may refuse before any filter


def unknown_paths(catalog: Catalog) -> list[str]:
    long_tail = "/zz-no-such-thing/" + "a" * 230
    return ["/zz-no-such-thing", "/zz-no-such-thing?x=\"quoted\"", long_tail, "/" + "a" * 8200]


# Headers that would rewrite the method or path upstream (the engine refuses them, in any spelling).
REWRITES = [("X-HTTP-Method-Override: DELETE",), ("x_original_url: /admin",), ("X-Rewrite-Url: /x", "X-Other: 1"),
            ("X-Methodish: GET",)]

# The token kinds every other spelling of a request is also sent with (all kinds go to the first).
VARIANT_KINDS = {"none", "exact", "missing one", "legacy by iat"}


Request = tuple[str, str, tuple[str, ...], bool]


def requests_for(catalog: Catalog, more: tuple[Request, ...] = ()) -> list[Request]:
    """(method, path, required scopes of the endpoint aimed at, every token kind?) worth asking."""
    out: list[Request] = list(more)
    for endpoint in catalog.endpoints:
        for i, path in enumerate(paths_for(endpoint.template)):
            out.append((endpoint.method, path, endpoint.scopes, i == 0))
        base = concrete(endpoint.template, "abc123")
        for scopes in endpoint.any_of[1:]:  # every token kind aimed at each other alternative too
            out.append((endpoint.method, base, scopes, True))
        for method in ("HEAD", "OPTIONS", "PUT", "get"):
            if method != endpoint.method:
                out.append((method, base, endpoint.scopes, False))
    for path in MALFORMED + CODEC + unknown_paths(catalog):
        out.append(("GET", path, (), False))
    return out


# -- sending byte for byte --------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


def send(port: int, method: str, path: str, authorization: str | None, extra: tuple[str, ...] = ()) -> Reply:
    lines = [f"{method} {path} HTTP/1.1", "host: api.test", "connection: close", *extra]
    if authorization is not None:
        lines.append(f"authorization: {authorization}")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8"))
        response = http.client.HTTPResponse(sock, method=method)
        response.begin()
        body = response.read()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, body)


# -- the comparison ---------------------------------------------------------------------------


def check(engine: Engine, upstream: Upstream, port: int, method: str, path: str, token: Token,
          extra: tuple[str, ...] = ()) -> str:
    """'' when Envoy answered as the engine decides, else what differs (`extra`: more header lines)."""
    reply = send(port, method, path, token.header, extra)
    where = f"{method} {path[:80]} with {token.kind} token: "
    anonymous = token.header is None or token.header.startswith("Basic")  # jwt_authn finds no bearer token
    if token.payload is None and not anonymous:
        if reply.status == 401 and 'error="invalid_token"' in reply.headers.get("www-authenticate", ""):
            return ""
        return where + f"invalid token answered {reply.status} {reply.headers.get('www-authenticate')}"
    try:
        engine_token = None if anonymous else token_from_payload(token.payload or {}, ADAPTER)
    except RequestError:  # the adapters refuse a payload they cannot read: Envoy must not let it through
        return "" if reply.status in (401, 403) else where + f"unreadable token answered {reply.status}"
    names = [line.partition(":")[0].lower() for line in extra]
    target = engine.gateway_target(engine_token, method, path, "", names)
    decision = target if not isinstance(target, str) else engine.check(engine_token, method, target)
    if reply.status == 400 and reply.body in (b"", b"Bad Request"):
        # Envoy refused the request line before any filter (its codec; a '#' fragment): the engine
        # must not allow it either.
        return "" if not decision.allowed else where + "Envoy refused what the engine allows"
    if decision.allowed:
        if reply.status != 200 or reply.headers.get("content-type") != "application/json":
            return where + f"engine allows, Envoy answered {reply.status} {reply.body[:200]!r}"
        if upstream.seen[-1][:2] != (method, path):
            return where + f"upstream saw {upstream.seen[-1][:2]}"
        return ""
    body = json.loads(decision.body)
    carried = {Reason.MALFORMED_PATH: envoy.MALFORMED_BODY, Reason.REWRITE_HEADER: envoy.REWRITE_BODY}
    if decision.reason in carried:  # the export carries the status and title, not the reason's details
        body["message"] = json.loads(carried[decision.reason])["message"]
    expected = (decision.http_status, decision.www_authenticate or None, body)
    got_body = None
    if method != "HEAD" and reply.body:
        try:
            got_body = json.loads(reply.body)
        except ValueError:
            got_body = reply.body
    got = (reply.status, reply.headers.get("www-authenticate"), got_body if method != "HEAD" else expected[2])
    return "" if got == expected else where + f"expected {expected}, Envoy answered {got}"


def start_exported(tmp: Path, catalog_file: Path | None, keys: Keys, upstream_port: int) -> tuple[Process, int]:
    """Envoy with the bootstrap `scopesvc export envoy --bootstrap` writes (the CLI, as operators run it)."""
    binary = envoy_binary()
    jwks = tmp / "jwks.json"
    jwks.write_text(keys.jwks())
    port = free_port()
    config = tmp / "envoy.yaml"
    argv = [sys.executable, "-m", "scopesvc", "export", "envoy", "--bootstrap", "--listen-port", str(port),
            "--upstream", f"127.0.0.1:{upstream_port}", "--jwt-issuer", ISSUER, "--jwt-audience", AUDIENCE,
            "--jwt-jwks-file", str(jwks), "--legacy-claim", LEGACY_CLAIM, "-o", str(config)]
    if catalog_file is not None:
        argv += ["--catalog", str(catalog_file)]
    subprocess.run(argv, check=True, timeout=60)
    process = Process([binary, "-c", str(config), "--disable-hot-restart", "--concurrency", "1",
                       "--log-level", "error"], tmp / "envoy.log", [port])
    return process, port


def differential(tmp: Path, catalog_file: Path | None, keys: Keys, upstream: Upstream,
                 more: tuple[Request, ...] = ()) -> int:
    catalog = catalog_files.load(str(catalog_file or ""))
    engine = Engine(catalog)
    minter = Minter(keys)
    process, port = start_exported(tmp, catalog_file, keys, upstream.port)
    problems, count = [], 0
    try:
        tokens: dict[tuple[str, ...], list[Token]] = {}
        for method, path, required, every_kind in requests_for(catalog, more):
            if required not in tokens:
                tokens[required] = tokens_for(catalog, required, minter)
            for token in tokens[required]:
                if not every_kind and token.kind not in VARIANT_KINDS:
                    continue
                count += 1
                problem = check(engine, upstream, port, method, path, token)
                if problem:
                    problems.append(problem)
        endpoint = catalog.endpoints[0]
        for extra in REWRITES:
            for token in tokens[endpoint.scopes]:
                if token.kind in VARIANT_KINDS:
                    count += 1
                    path = concrete(endpoint.template, "abc123")
                    problem = check(engine, upstream, port, endpoint.method, path, token, extra)
                    if problem:
                        problems.append(problem)
    finally:
        process.stop()
    assert not problems, f"{len(problems)} of {count} answers differ:\n" + "\n".join(problems[:40])
    return count


def test_embedded_catalog(tmp_path: Path, keys: Keys, upstream: Upstream) -> None:
    assert differential(tmp_path, None, keys, upstream) > 1000


def test_example_catalog(tmp_path: Path, keys: Keys, upstream: Upstream) -> None:
    assert differential(tmp_path, EXAMPLE, keys, upstream) > 200


# Alternatives whose deny names a different alternative depending on the token's scopes, and public
# endpoints beside scoped ones on the same template shape.
ALTERNATIVES = {
    "format": "scopesvc.catalog/v1", "name": "alternatives", "oauth": {"scopes_introduced_at": "2026-03-03"},
    "hierarchy": {"write_implies_read": True},
    "scopes": [{"name": "a:read"}, {"name": "a:write"}, {"name": "b:read"}, {"name": "b:write"},
               {"name": "admin", "implies": ["a:write", "b:write"]}, {"name": "c"}],
    "endpoints": [
        {"method": "GET", "path": "/docs/{id}", "any_of": [["a:read", "b:read"], ["admin"], ["c", "a:write"]]},
        {"method": "POST", "path": "/docs/{id}", "any_of": [["b:write"], ["a:write", "c"]]},
        {"method": "GET", "path": "/docs/public", "public": True},
        {"method": "GET", "path": "/health", "public": True},
        {"method": "DELETE", "path": "/health", "scopes": ["admin"]},
        {"method": "GET", "path": "/docs/{id}/any", "any_of": [[], ["c"]]},
    ],
}


def test_alternatives_and_public_endpoints(tmp_path: Path, keys: Keys, upstream: Upstream) -> None:
    compile_catalog(ALTERNATIVES)
    (tmp_path / "catalog.yaml").write_text(yaml.safe_dump(ALTERNATIVES))
    assert differential(tmp_path, tmp_path / "catalog.yaml", keys, upstream) > 200


# Shapes whose literal first segments prefix one another, beside shapes whose first segment is a
# parameter, and paths that only match after backtracking out of the literal branch: the export's
# longest-prefix map on the raw path must never skip a shape the engine would pick.
DISPATCH = {
    "format": "scopesvc.catalog/v1", "name": "dispatch", "scopes": [{"name": "s:read"}, {"name": "t"}],
    "endpoints": [
        {"method": "GET", "path": "/", "scopes": ["s:read"]},
        {"method": "GET", "path": "/users/me", "scopes": ["s:read"]},
        {"method": "DELETE", "path": "/users/me", "scopes": ["t"]},
        {"method": "GET", "path": "/users/{id}", "scopes": ["s:read"]},
        {"method": "GET", "path": "/user/x", "scopes": ["s:read"]},
        {"method": "GET", "path": "/users_x/{id}", "scopes": ["s:read"]},
        {"method": "GET", "path": "/{org}/b", "scopes": ["t"]},
        {"method": "GET", "path": "/{a}/{b}/c", "scopes": ["s:read"]},
    ],
}
DISPATCH_PATHS = ["/users/me/c", "/usersX/b", "/users%5Fx/1", "/users_x/1/c", "/%75sers/me", "/USERS/me", "/user/x",
                  "/user/x/c", "/users", "/users?x=1", "/user", "/u/b", "/users/b/c", "/users_x", "/users_x/1/2/c"]


def test_dispatch_never_skips_a_shape(tmp_path: Path, keys: Keys, upstream: Upstream) -> None:
    compile_catalog(DISPATCH)
    (tmp_path / "catalog.yaml").write_text(yaml.safe_dump(DISPATCH))
    more = tuple(("GET", path, ("s:read",), True) for path in DISPATCH_PATHS)
    assert differential(tmp_path, tmp_path / "catalog.yaml", keys, upstream, more) > 200


# Every template kind and precedence case (docs/paths.md): literal text around a parameter (more text
# first), custom verbs, multi-segment parameters (longer suffix first, after a plain parameter, with
# backtracking), a method defined only on the template that wins.
RICH = {
    "format": "scopesvc.catalog/v1", "name": "rich", "oauth": {"scopes_introduced_at": "2026-03-03"},
    "hierarchy": {"write_implies_read": True},
    "scopes": [{"name": "files:read"}, {"name": "files:write"}, {"name": "ops:write"},
               {"name": "admin", "implies": ["files:write", "ops:write"]}],
    "endpoints": [
        {"method": "GET", "path": "/Files/{id}", "scopes": ["files:read"]},
        {"method": "GET", "path": "/Files/{id}.json", "scopes": ["files:write"]},
        {"method": "GET", "path": "/Files/v{n}.json", "scopes": ["admin"]},
        {"method": "GET", "path": "/Files/thumbnail.{ext}", "scopes": ["files:read", "ops:write"]},
        {"method": "GET", "path": "/Files/thumbnail.png", "public": True},
        {"method": "POST", "path": "/ops/{name}:cancel", "scopes": ["ops:write"]},
        {"method": "GET", "path": "/ops/{id}/status", "scopes": ["files:read"]},
        {"method": "GET", "path": "/ops/{name=**}", "scopes": ["files:read"]},
        {"method": "POST", "path": "/ops/{name=**}:cancel", "scopes": ["admin"]},
        {"method": "POST", "path": "/ops/{name=**}:c", "scopes": ["files:write"]},
        {"method": "DELETE", "path": "/{all=**}", "any_of": [["admin"], ["ops:write", "files:read"]]},
        {"method": "GET", "path": "/", "public": True},  # the no-token answer is not this one's
    ],
}
RICH_PATHS = [
    "/Files/thumbnail.json", "/Files/v1.json", "/Files/v.json", "/Files/.json", "/Files/thumbnail.", "/ops/x:cancel",
    "/ops/a/x:cancel", "/ops/a/b:c", "/ops/a/:cancel", "/ops/:cancel", "/ops/a/status", "/ops/a/b/status",
    "/ops/a/status/x", "/ops/%61/%73tatus", "/ops/a/b%3Acancel", "/ops/a/b%3acancel/", "/FILES/V1.JSON",
    "/files/thumbnail.PNG", "/Files/thumbnail%2Epng", "/Files/a%2Fb.json", "/ops", "/ops/", "/x/y%41:c",
]


@pytest.mark.parametrize("paths", [{"trailing_slash": "strip"},
                                   {"trailing_slash": "strict", "case_insensitive": True, "head_as_get": False}])
def test_rich_templates(tmp_path: Path, keys: Keys, upstream: Upstream, paths: dict[str, Any]) -> None:
    doc = dict(RICH, paths=paths)
    every = tuple(compile_catalog(doc).universe.names)
    (tmp_path / "catalog.yaml").write_text(yaml.safe_dump(doc))
    more = tuple((method, path, every, False) for path in RICH_PATHS for method in ("GET", "POST", "DELETE"))
    assert differential(tmp_path, tmp_path / "catalog.yaml", keys, upstream, more) > 500


@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
@given(doc=catalogs())
def test_random_catalogs(tmp_path_factory: pytest.TempPathFactory, keys: Keys, upstream: Upstream, doc: dict[str, Any]) -> None:
    doc = exportable(doc, alternatives=True)
    compile_catalog(doc)
    tmp = tmp_path_factory.mktemp("random")
    (tmp / "catalog.yaml").write_text(yaml.safe_dump(doc))
    assert differential(tmp, tmp / "catalog.yaml", keys, upstream) > 50


def test_other_local_replies_pass_through(tmp_path: Path, keys: Keys) -> None:
    """A local reply that is not a decision's 403 (here the router's 503, the upstream being down)
    reaches the client as Envoy made it: the export's replies rewrite only what the decision denied,
    even for a request the decision named (allowed requests carry their endpoint's name too)."""
    process, port = start_exported(tmp_path, EXAMPLE, keys, free_port())  # nothing listens there
    try:
        reply = send(port, "GET", "/v2/me", Minter(keys).token("comments only", scope="comments.write").header)
    finally:
        process.stop()
    assert reply.status == 503, reply
    assert "www-authenticate" not in reply.headers and reply.headers.get("content-type") == "text/plain"
    assert reply.body.startswith(b"upstream connect error"), reply.body


# -- rolling in a new catalog -------------------------------------------------------------------


def export_cli(*argv: str) -> None:
    subprocess.run([sys.executable, "-m", "scopesvc", "export", "envoy", "--jwt-issuer", ISSUER,
                    "--jwt-audience", AUDIENCE, *argv], check=True, timeout=60)


def test_hot_update_under_load(tmp_path: Path, keys: Keys, upstream: Upstream) -> None:
    """A new catalog's listener, renamed over the LDS file, takes over with no request failing."""
    binary = envoy_binary()
    jwks = tmp_path / "jwks.json"
    jwks.write_text(keys.jwks())
    stricter = yaml.safe_load(EXAMPLE.read_text())
    for endpoint in stricter["endpoints"]:
        if endpoint["path"] == "/v2/me":
            endpoint["scopes"] = ["tasks.read"]  # was []: the next catalog asks more of GET /v2/me
    (tmp_path / "v2.yaml").write_text(yaml.safe_dump(stricter))
    port = free_port()
    lds, config = tmp_path / "lds.yaml", tmp_path / "envoy.yaml"
    common = ["--jwt-jwks-file", str(jwks), "--listen-port", str(port)]
    export_cli(*common, "--catalog", str(EXAMPLE), "--lds", "-o", str(lds))
    export_cli(*common, "--bootstrap", "--upstream", f"127.0.0.1:{upstream.port}", "--lds-path", str(lds),
               "-o", str(config))
    process = Process([binary, "-c", str(config), "--disable-hot-restart", "--concurrency", "1",
                       "--log-level", "error", "--drain-time-s", "1"], tmp_path / "envoy.log", [port])
    token = Minter(keys).token("comments only", scope="comments.write").header
    answers: list[int | str] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                answers.append(send(port, "GET", "/v2/me", token).status)
            except OSError as exc:
                answers.append(f"{type(exc).__name__}: {exc}")

    workers = [threading.Thread(target=load) for _ in range(3)]
    try:
        for worker in workers:
            worker.start()
        deadline = time.monotonic() + 30
        while len(answers) < 30 and time.monotonic() < deadline:
            time.sleep(0.05)
        before = len(answers)
        export_cli(*common, "--catalog", str(tmp_path / "v2.yaml"), "--lds", "-o", str(lds))
        deadline = time.monotonic() + 15
        while 403 not in answers[before:] and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(2.5)  # past the old listener's drain (--drain-time-s 1), however loaded the machine
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=15)
        process.stop()
    failed = [a for a in answers if a not in (200, 403)]
    assert not failed, f"{len(failed)} of {len(answers)} requests failed: {failed[:5]}"
    assert answers[:before].count(200) == before >= 30, "the first catalog allows GET /v2/me to any known scope"
    switched = answers.index(403)
    # Requests already on the draining old listener may still answer 200 just after the switch; the last
    # ones (sent well after the drain) must all be the new catalog's.
    assert switched >= before and set(answers[-10:]) == {403}, "the new catalog took over for good"
