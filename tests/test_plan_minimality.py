"""Plan's answer is the least a token needs, on a catalog where that is not obvious.

The default catalog gives almost every endpoint one scope, where any sane planner is right. This
catalog has endpoints needing two scopes, implications beyond write -> read (an `admin` scope that
implies both writes), and item sets where a greedy set-cover (take the scope that covers the most
needs first) answers `admin`: fewer scopes, but a wider grant. The property is checked against every
subset of the catalog's scopes, and the checker is shown to catch deliberately broken planners.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scopesvc.policy import Engine, Token, compile_catalog

CATALOG = compile_catalog({
    "format": "scopesvc.catalog/v1",
    "name": "minimality",
    "scopes": [{"name": "a:read"}, {"name": "a:write"}, {"name": "b:read"}, {"name": "b:write"}, {"name": "c:read"},
               {"name": "admin", "implies": ["a:write", "b:write"]}],
    "endpoints": [
        {"method": "GET", "path": "/a", "scopes": ["a:read"]},
        {"method": "PUT", "path": "/a", "scopes": ["a:write"]},
        {"method": "PUT", "path": "/b", "scopes": ["b:write"]},
        {"method": "GET", "path": "/ab", "scopes": ["a:read", "b:read"]},
        {"method": "POST", "path": "/ab", "scopes": ["a:write", "b:read"]},
        {"method": "GET", "path": "/bc", "scopes": ["b:read", "c:read"]},
        {"method": "DELETE", "path": "/everything", "scopes": ["admin"]},
    ],
})
ENGINE = Engine(CATALOG)
SCOPES = list(CATALOG.scopes)
ITEMS = [e.key for e in CATALOG.endpoints]
Planner = Callable[[Sequence[str]], tuple[str, ...]]


def covers(scopes: Sequence[str], items: Sequence[str]) -> bool:
    token = Token(tuple(scopes))
    return all(ENGINE.check(token, *item.split(" ", 1)).allowed for item in items)


def grant(scopes: Sequence[str]) -> int:
    return CATALOG.universe.effective(scopes)


def assert_least(scopes: Sequence[str], items: Sequence[str]) -> None:
    """`scopes` do everything `items` need, grant nothing a covering set could leave out, and are fewest for that."""
    assert covers(scopes, items), f"{scopes} do not cover {items}"
    covering = [s for n in range(len(SCOPES) + 1) for s in itertools.combinations(SCOPES, n) if covers(s, items)]
    least = min(covering, key=lambda s: (grant(s).bit_count(), len(s)))
    # The least grant is unique (every covering set grants at least what the items need, and that covers them).
    assert all(grant(s) & grant(least) == grant(least) for s in covering)
    assert grant(scopes) == grant(least), f"{scopes} grant more than {least} for {items}"
    assert len(scopes) == len(least), f"{scopes} name more scopes than {least} for {items}"


@given(st.lists(st.sampled_from(ITEMS), min_size=1, max_size=5, unique=True))
def test_plan_is_the_least_grant_in_the_fewest_scopes(items):
    assert_least(ENGINE.plan(items).scopes, items)


def test_two_writes_are_not_answered_with_admin():
    assert sorted(ENGINE.plan(["PUT /a", "PUT /b"]).scopes) == ["a:write", "b:write"]
    assert sorted(ENGINE.plan(["GET /ab", "POST /ab"]).scopes) == ["a:write", "b:read"]


# -- the checker fails on planners that are wrong --------------------------------------------------


def union_of_required(items: Sequence[str]) -> tuple[str, ...]:
    """Every scope any item lists, also those another one implies (a:read beside a:write)."""
    return tuple(dict.fromkeys(s for item in items for s in CATALOG.find_endpoint(*item.split(" ", 1)).scopes))


def greedy_cover(items: Sequence[str]) -> tuple[str, ...]:
    """Set cover: repeatedly take the scope that grants the most still-needed scopes."""
    needed = CATALOG.universe.mask(union_of_required(items))
    chosen: list[str] = []
    while needed & ~grant(chosen):
        chosen.append(max(SCOPES, key=lambda s: (grant([s]) & needed & ~grant(chosen)).bit_count()))
    return tuple(chosen)


def first_scope_only(items: Sequence[str]) -> tuple[str, ...]:
    """Takes one scope per endpoint, missing the second scope of a two-scope endpoint."""
    return tuple(dict.fromkeys(CATALOG.find_endpoint(*item.split(" ", 1)).scopes[0] for item in items))


@pytest.mark.parametrize("broken", [union_of_required, greedy_cover, first_scope_only])
def test_the_check_catches_a_broken_planner(broken: Planner):
    failures = 0
    for items in itertools.combinations(ITEMS, 2):
        try:
            assert_least(broken(items), items)
        except AssertionError:
            failures += 1
    assert failures, f"{broken.__name__} passed every case: the property could not fail"
