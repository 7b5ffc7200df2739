"""Property tests: the scope hierarchy, Plan's sufficiency and minimality, and migration."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scopesvc.catalog import files as catalog_files
from scopesvc.policy import Engine, Token, TokenFormat

from .helpers import concrete

ENGINE = Engine(catalog_files.load_default())
CATALOG = ENGINE.catalog
SCOPES = list(CATALOG.scopes)
ENDPOINTS = list(CATALOG.endpoints)
EVENTS = list(CATALOG.events)
ITEMS = [e.key for e in ENDPOINTS] + EVENTS + list(CATALOG.features) + SCOPES

scope_sets = st.lists(st.sampled_from(SCOPES), max_size=8, unique=True)
endpoints = st.sampled_from(ENDPOINTS)
settings.register_profile("scopesvc", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("scopesvc")


def allowed(scopes: list[str], endpoint) -> bool:  # type: ignore[no-untyped-def]
    return ENGINE.check(Token(tuple(scopes)), endpoint.method, concrete(endpoint.template)).allowed


@given(scope_sets, endpoints, st.sampled_from(SCOPES))
def test_adding_a_scope_never_removes_access(scopes, endpoint, extra):
    if allowed(scopes, endpoint):
        assert allowed(scopes + [extra], endpoint)


@given(scope_sets, endpoints)
def test_write_satisfies_read(scopes, endpoint):
    upgraded = [s.replace(":read", ":write") if s.replace(":read", ":write") in CATALOG.scopes else s for s in scopes]
    if allowed(scopes, endpoint):
        assert allowed(upgraded, endpoint)


@given(scope_sets, endpoints)
def test_read_never_satisfies_write(scopes, endpoint):
    reads_only = [s for s in scopes if s.endswith(":read")]
    if any(s.endswith(":write") for s in endpoint.scopes):
        assert not allowed(reads_only, endpoint)


@given(scope_sets, endpoints)
def test_adding_missing_scopes_allows(scopes, endpoint):
    decision = ENGINE.check(Token(tuple(scopes)), endpoint.method, concrete(endpoint.template))
    if decision.allowed:
        assert not decision.missing_scopes
    else:
        assert allowed(scopes + list(decision.missing_scopes), endpoint)
        for missing in decision.missing_scopes:  # each one is needed
            assert not allowed(scopes + [m for m in decision.missing_scopes if m != missing], endpoint)


def covers(scopes: tuple[str, ...], item: str) -> bool:
    """Does a token with exactly `scopes` do everything `item` needs?"""
    token = Token(scopes)
    feature = CATALOG.features.get(item)
    parts = [p.item for p in feature.requires] if feature else [item]
    for part in parts:
        if part in CATALOG.events:
            if not ENGINE.check_subscription(token, [part], CATALOG.events[part].subscription_scopes[0]).allowed:
                return False
            if not ENGINE.check_delivery(token, part).allowed:
                return False
        elif part in CATALOG.scopes:
            if not CATALOG.universe.effective(scopes) & CATALOG.universe.bit(part):
                return False
        else:
            method, path = part.split(" ", 1)
            if not ENGINE.check(token, method, concrete(path)).allowed:
                return False
    return True


@given(st.lists(st.sampled_from(ITEMS), min_size=1, max_size=6, unique=True))
def test_plan_is_sufficient_and_minimal(items):
    plan = ENGINE.plan(items)
    assert all(covers(plan.scopes, item) for item in items)
    for dropped in plan.scopes:
        fewer = tuple(s for s in plan.scopes if s != dropped)
        assert not all(covers(fewer, item) for item in items), f"{dropped} is not needed"
    universe = CATALOG.universe
    for scope in plan.scopes:  # never X:read beside X:write, nor any scope implied by another
        others = tuple(s for s in plan.scopes if s != scope)
        assert not universe.effective(others) & universe.bit(scope)
    assert not set(plan.optional_scopes) & set(plan.scopes)


@given(scope_sets, st.sampled_from([TokenFormat.LEGACY, TokenFormat.SCOPED]))
def test_migrated_token_decides_exactly_as_before(scopes, fmt):
    before = Token(tuple(scopes), fmt)
    after = ENGINE.migrate(before)
    assert after.format == TokenFormat.SCOPED
    for endpoint in ENDPOINTS:
        path = concrete(endpoint.template)
        assert ENGINE.check(before, endpoint.method, path).allowed == ENGINE.check(after, endpoint.method, path).allowed


def test_migrated_legacy_scopes_are_minimal():
    legacy = ENGINE.legacy_scopes
    for scope in legacy:  # dropping any one loses some endpoint
        fewer = Token(tuple(s for s in legacy if s != scope))
        assert any(not ENGINE.check(fewer, e.method, e.template).allowed for e in ENDPOINTS), scope
