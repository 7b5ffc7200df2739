"""Property test: a cached decision is identical to the one the engine makes without a cache.

Requests are drawn from a small pool so the same key repeats (cache hits), with tokens whose
issued_at differs but resolves to the same format, unknown formats and kinds, confused paths
and a catalog swap in the middle (the cache must never answer with the old catalog).
"""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from scopesvc import convert
from scopesvc.catalog import files as catalog_files
from scopesvc.decider import Decider, EngineRef
from scopesvc.ops.cache import DecisionCache
from scopesvc.ops.metrics import Metrics
from scopesvc.policy import Engine, Token
from scopesvc.server.service import ScopeService
from scopesvc.v1 import scopesvc_pb2 as pb

from .test_properties_paths import targets

DEFAULT = Engine(catalog_files.load_default())
STRICT = Engine(catalog_files.load_bytes(
    catalog_files.builtin_path("example-tasks.yaml").read_bytes(), "tasks"))
UTC = dt.timezone.utc
tokens = st.builds(
    Token,
    scopes=st.lists(st.sampled_from(["users:read", "organizations:write", "tasks.read", "projects.admin", "x", ""]),
                    max_size=3).map(tuple),
    format=st.sampled_from([0, 1, 2, 9]),
    issued_at=st.sampled_from([None, dt.datetime(2020, 1, 1, tzinfo=UTC), dt.datetime(2021, 6, 1, tzinfo=UTC),
                               dt.datetime(2027, 1, 1, tzinfo=UTC), dt.datetime(2030, 1, 1, tzinfo=UTC)]),
    kind=st.sampled_from([0, 1, 2, 5]),
)
paths = st.one_of(st.sampled_from(["/users/me", "/users/AB", "/organizations/o1", "/v2/projects", "/v2/projects/",
                                   "/v2/me", "/users/%2e%2e", "/users/me?x"]), targets())
requests = st.tuples(tokens, st.sampled_from(["GET", "HEAD", "POST", "get"]), paths)


@settings(max_examples=300, deadline=None)
@given(st.lists(requests, min_size=1, max_size=30), st.integers(min_value=0, max_value=30))
def test_cached_decisions_equal_uncached(pool, swap_at):
    ref = EngineRef(DEFAULT)
    decider = Decider(ref, DecisionCache(1000, 600), Metrics())
    for i, (token, method, path) in enumerate(pool * 2):
        if i == swap_at:
            ref.engine = STRICT if ref.engine is DEFAULT else DEFAULT
        outcome = decider.decide(token, method, path, rpc="Check")
        assert outcome.decision == ref.engine.check(token, method, path), (token, method, path, outcome.cached)
        assert outcome.revision == ref.engine.catalog.revision


@settings(max_examples=200, deadline=None)
@given(st.lists(requests, min_size=1, max_size=30), st.integers(min_value=0, max_value=30), st.booleans())
def test_serialized_answers_equal_fresh_responses(pool, swap_at, dry_run):
    """Check's once-serialized answers equal a response built afresh, across a catalog swap and in dry-run."""
    ref = EngineRef(DEFAULT)
    service = ScopeService(Decider(ref, DecisionCache(0, 0), Metrics(), dry_run=dry_run))
    service.answers.limit = 8  # small enough that it also empties itself mid-run
    for i, (token, method, path) in enumerate(pool * 2):
        if i == swap_at:
            ref.engine = STRICT if ref.engine is DEFAULT else DEFAULT
        if not method or not path:
            continue
        request = pb.CheckRequest(token=convert.token_to_proto(token), method=method, path=path)
        answer = service.Check(request, None)  # type: ignore[arg-type]
        got = pb.CheckResponse.FromString(answer) if isinstance(answer, bytes) else answer
        outcome = Decider(ref, DecisionCache(0, 0), Metrics(), dry_run=dry_run).decide(token, method, path, rpc="Check")
        assert got == outcome.response(), (token, method, path)
