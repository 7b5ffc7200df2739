"""Property tests: no token ever gets an endpoint its scopes do not cover.

Decisions are compared with a deliberately simple reference model written here from the catalog
document itself (never from the compiled catalog): a token's grants are the fixpoint of its
scopes under the write->read rule and the declared implications; an endpoint is allowed when one
of its required sets (its `scopes`, or any one of its `any_of` alternatives) is inside the grants,
and a `public: true` one always, even with no token at all. Catalogs are generated at random,
with rich path templates (literal text around a parameter, custom verbs, multi-segment
parameters, case-insensitive matching), and the embedded default catalog is also checked through
the real gRPC server.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from scopesvc.catalog.builtin import __file__ as _catalogs_init
from scopesvc.policy import Engine, Reason, Token, TokenFormat, compile_catalog
from scopesvc.v1 import scopesvc_pb2 as pb

from .test_properties_paths import reference_ambiguous, reference_match, reference_split, shape, targets

# -- the reference model ------------------------------------------------------------------


class Reference:
    """Grants and required sets straight from a catalog document."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.scopes = [s["name"] for s in doc["scopes"]]
        write_read = doc.get("hierarchy", {}).get("write_implies_read", True)
        self.implies: dict[str, set[str]] = {s["name"]: set(s.get("implies") or ()) for s in doc["scopes"]}
        if write_read:
            for name in self.scopes:
                if name.endswith(":write") and name[:-6] + ":read" in self.implies:
                    self.implies[name].add(name[:-6] + ":read")
        # Each endpoint's alternatives (any one suffices); None for a public endpoint.
        self.endpoints: dict[tuple[str, str], list[set[str]] | None] = {
            (e["method"], e["path"]): None if e.get("public") else
            [set(a) for a in e["any_of"]] if "any_of" in e else [set(e["scopes"])]
            for e in doc["endpoints"]
        }
        self.strip = doc.get("paths", {}).get("trailing_slash", "strip") == "strip"
        self.head_as_get = doc.get("paths", {}).get("head_as_get", True)
        self.case_insensitive = doc.get("paths", {}).get("case_insensitive", False)
        cutover = doc.get("oauth", {}).get("scopes_introduced_at")
        self.cutover = None if cutover is None else dt.datetime.fromisoformat(str(cutover)).replace(tzinfo=dt.timezone.utc)

    def grants(self, scopes: list[str]) -> set[str]:
        granted = {s for s in scopes if s in self.implies}
        while True:
            more = set().union(*(self.implies[s] for s in granted)) - granted if granted else set()
            if not more:
                return granted
            granted |= more

    def endpoint(self, method: str, path: str) -> tuple[str, str] | None:
        segments = reference_split(path, self.strip)
        if segments is None:
            return None
        template = reference_match(sorted({t for _, t in self.endpoints}), segments, self.case_insensitive)
        if template is None:
            return None
        # The method must be on the most specific template's shape (any template of that shape).
        wanted_shape = shape(template, self.case_insensitive)
        same_shape = {t for _, t in self.endpoints if shape(t, self.case_insensitive) == wanted_shape}
        for wanted in (method, "GET" if method == "HEAD" and self.head_as_get else None):
            for t in same_shape:
                if (wanted, t) in self.endpoints:
                    return (wanted, t)
        return None

    def allows(self, scopes: list[str] | None, fmt: int, issued_at: dt.datetime | None, method: str,
               path: str) -> bool:
        """`scopes` None: a request with no token at all."""
        key = self.endpoint(method, path)
        if key is None:
            return False
        if self.endpoints[key] is None:
            return True  # public: no token needed
        if scopes is None:
            return False
        legacy = fmt == TokenFormat.LEGACY or (
            fmt == TokenFormat.UNSPECIFIED and issued_at is not None and self.cutover is not None and issued_at < self.cutover
        )
        if legacy:
            return True
        if fmt not in (TokenFormat.SCOPED, TokenFormat.UNSPECIFIED) or not self.grants(scopes):
            return False  # no known scope is no scope: no access at all
        return any(alternative <= self.grants(scopes) for alternative in self.endpoints[key] or ())

    def fewest_to_add(self, scopes: list[str], key: tuple[str, str]) -> int:
        """The fewest scopes to add to complete one alternative (none beside one implying it)."""
        have = self.grants(scopes)
        counts = []
        for alternative in self.endpoints[key] or ():
            lacking = alternative - have
            counts.append(len({s for s in lacking if not any(s in self.grants([o]) for o in lacking if o != s)}))
        return min(counts)


# -- random catalogs ----------------------------------------------------------------------

SCOPE_POOL = ["a:read", "a:write", "b:read", "b:write", "c:write", "d:read", "e.admin", "f.read", "f.write", "g"]
METHODS = ["GET", "POST", "DELETE", "HEAD"]
template = st.builds(
    lambda parts, last: "/" + "/".join(parts + ([last] if last else [])),
    st.lists(st.sampled_from(["users", "Users", "me", "a", "b", "{x}", "{y}", "{x}.json", "v{x}", "{y}:cancel"]),
             max_size=3),
    st.sampled_from(["", "", "", "{n=**}", "{n=**}:run"]),
)


def _concrete(path: str, value: str) -> str:
    path = re.sub(r"\{[a-z]+=\*\*\}", "p/" + value, path)
    return re.sub(r"\{[a-z]+\}", value, path)


@st.composite
def catalogs(draw) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    names = draw(st.lists(st.sampled_from(SCOPE_POOL), min_size=1, max_size=len(SCOPE_POOL), unique=True))
    scopes = []
    for i, name in enumerate(names):
        # Only earlier scopes may be implied, so the graph is acyclic...
        implies = draw(st.lists(st.sampled_from(names[:i]), unique=True, max_size=3)) if i else []
        scopes.append({"name": name, "implies": implies})
    write_read = draw(st.booleans())
    if write_read:
        # ...and the write->read rule must not close a cycle with a declared implication.
        index = {n: i for i, n in enumerate(names)}
        for entry in scopes:
            read = entry["name"][:-6] + ":read" if entry["name"].endswith(":write") else None
            if read in index and index[read] > index[entry["name"]]:
                write_read = False
    case_insensitive = draw(st.booleans())
    endpoints: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for method, path in draw(st.lists(st.tuples(st.sampled_from(METHODS), template), min_size=1, max_size=10)):
        if (method, shape(path, case_insensitive)) in seen or any(
                reference_ambiguous(path, e["path"], case_insensitive) for e in endpoints):
            continue
        seen.add((method, shape(path, case_insensitive)))
        alternative = st.lists(st.sampled_from(names), unique=True, max_size=3)
        requirement = draw(st.sampled_from(["scopes", "scopes", "any_of", "public"]))
        entry: dict[str, Any] = {"method": method, "path": path}
        if requirement == "public":
            entry["public"] = True
        elif requirement == "any_of":
            entry["any_of"] = draw(st.lists(alternative, min_size=1, max_size=3, unique_by=frozenset))
        else:
            entry["scopes"] = draw(alternative)
        endpoints.append(entry)
    return {
        "format": "scopesvc.catalog/v1",
        "name": "generated",
        "oauth": {"scopes_introduced_at": "2026-03-03"},
        "paths": {"trailing_slash": draw(st.sampled_from(["strip", "strict"])), "head_as_get": draw(st.booleans()),
                  "case_insensitive": case_insensitive},
        "hierarchy": {"write_implies_read": write_read},
        "scopes": scopes,
        "endpoints": endpoints,
    }


token_scopes = st.lists(st.sampled_from(SCOPE_POOL + ["unknown", "A:READ", "a:read ", ""]), max_size=5)
formats = st.sampled_from([TokenFormat.UNSPECIFIED, TokenFormat.SCOPED, TokenFormat.SCOPED, TokenFormat.LEGACY, 3, -1])
issued = st.one_of(st.none(), st.sampled_from([dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc),
                                               dt.datetime(2026, 3, 3, tzinfo=dt.timezone.utc),
                                               dt.datetime(2027, 1, 1, tzinfo=dt.timezone.utc)]))


@st.composite
def requests(draw, doc: dict[str, Any]) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """A method and a path: mostly concrete paths of the catalog's templates, sometimes anything."""
    endpoint = draw(st.sampled_from(doc["endpoints"]))
    value = draw(st.sampled_from(["1", "me", "users", "a", "%61", "x%2Fy", "..", "{x}", "b;c", "Q.json", "USERS"]))
    path = _concrete(endpoint["path"], value) + draw(st.sampled_from(["", "/", "?q=1", "//"]))
    path = draw(st.one_of(st.just(path), st.just(path.upper()), targets()))
    method = draw(st.sampled_from([endpoint["method"], "GET", "HEAD", "get", "PUT"]))
    return method, path


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_engine_agrees_with_reference_on_random_catalogs(data):
    doc = data.draw(catalogs())
    engine = Engine(compile_catalog(doc))
    ref = Reference(doc)
    for _ in range(5):
        scopes = data.draw(token_scopes)
        fmt, when = data.draw(formats), data.draw(issued)
        method, path = data.draw(requests(doc))
        decision = engine.check(Token(tuple(scopes), fmt, when), method, path)
        expected = ref.allows(scopes, fmt, when, method, path)
        assert decision.allowed == expected, (doc, scopes, fmt, when, method, path, decision)
        anonymous = engine.check(None, method, path)
        assert anonymous.allowed == ref.allows(None, fmt, when, method, path), (doc, method, path, anonymous)
        assert anonymous.allowed == (anonymous.reason == Reason.ALLOWED_PUBLIC)
        if not decision.allowed:
            assert decision.reason not in (Reason.ALLOWED, Reason.ALLOWED_LEGACY_TOKEN) and decision.message
            assert decision.http_status in (400, 401, 403)
        if decision.reason == Reason.INSUFFICIENT_SCOPE:
            # What is reported missing completes the alternative the answer names, and no
            # alternative could be completed with fewer scopes.
            key = (decision.endpoint.method, decision.endpoint.template)
            required = set(decision.required_scopes)
            assert required in ref.endpoints[key]
            assert set(decision.missing_scopes) <= required - ref.grants(scopes) | _implying(ref, required)
            assert required <= ref.grants(scopes + list(decision.missing_scopes))
            assert len(decision.missing_scopes) == ref.fewest_to_add(scopes, key)
            assert f'scope="{" ".join(decision.required_scopes)}"' in decision.www_authenticate
            assert decision.body.endswith(f'"required_scopes":{_json_list(decision.required_scopes)}}}')


def _json_list(names: tuple[str, ...]) -> str:
    return "[" + ",".join(f'"{n}"' for n in names) + "]"


def _implying(ref: Reference, required: set[str]) -> set[str]:
    """The scopes granting part of `required`."""
    return {s for s in ref.scopes if ref.grants([s]) & required}


# -- the default catalog, through the real server ----------------------------------------

DEFAULT_DOC = yaml.safe_load(open(_catalogs_init.replace("__init__.py", "calendly.yaml"), encoding="utf-8"))
DEFAULT_REF = Reference(DEFAULT_DOC)


@settings(max_examples=600, deadline=None)
@given(st.data())
def test_server_never_allows_beyond_the_reference(stub, data):
    scopes = data.draw(st.lists(st.sampled_from(DEFAULT_REF.scopes + ["invitees:read", "admin", "*"]), max_size=6))
    method, path = data.draw(requests(DEFAULT_DOC))
    fmt = data.draw(st.sampled_from([0, 1, 1, 2, 7]))
    stamp = data.draw(st.sampled_from([None, 1_700_000_000, 1_790_000_000]))
    message = pb.Token(scopes=scopes, format=fmt)
    when = None
    if stamp is not None:
        message.issued_at.seconds = stamp
        when = dt.datetime.fromtimestamp(stamp, dt.timezone.utc)
    if not path:
        return  # an empty path is INVALID_ARGUMENT (tests/test_hardening_grpc.py), not a decision
    response = stub.Check(pb.CheckRequest(token=message, method=method, path=path))
    expected = DEFAULT_REF.allows(scopes, fmt, when, method, path)
    assert response.allowed == expected, (scopes, fmt, stamp, method, path, response)
    if not response.allowed:
        assert response.deny.http_status in (400, 401, 403) and response.message
