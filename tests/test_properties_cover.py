"""Property tests: the any-of cover search agrees with trying every choice.

The reference enumerates every way to pick one alternative per requirement, scores each by the
number of scopes to add (the union of the picked alternatives, less what is granted, less what
another picked scope implies) and keeps the first with the fewest, in the order the choices are
listed; among as few, the first of those granting the fewest scopes (implications included).
Implications are random (acyclic), so broader scopes can absorb narrower ones.
"""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from scopesvc.policy.cover import minimum_cover
from scopesvc.policy.scopes import ScopeUniverse

NAMES = [f"s{i}" for i in range(7)]


@st.composite
def problems(draw):  # type: ignore[no-untyped-def]
    implies = {name: draw(st.lists(st.sampled_from(NAMES[:i]), unique=True, max_size=2)) if i else []
               for i, name in enumerate(NAMES)}
    alternative = st.lists(st.sampled_from(NAMES), min_size=1, max_size=3, unique=True)
    requirements = draw(st.lists(st.lists(alternative, min_size=1, max_size=3), max_size=5))
    granted = draw(st.lists(st.sampled_from(NAMES), max_size=2, unique=True))
    return implies, requirements, granted


def grants(implies: dict[str, list[str]], names: set[str]) -> set[str]:
    out = set(names)
    while True:
        more = {i for n in out for i in implies[n]} - out
        if not more:
            return out
        out |= more


def reference(implies, requirements, granted) -> set[str]:  # type: ignore[no-untyped-def]
    have = grants(implies, set(granted))
    best: tuple[int, int] | None = None
    answer: set[str] = set()
    for picks in itertools.product(*requirements):
        union = set().union(*map(set, picks)) - have
        add = {s for s in union if not any(s in grants(implies, {o}) for o in union if o != s)}
        score = (len(add), len(grants(implies, add) - have))
        if best is None or score < best:
            best, answer = score, add
    return answer


@settings(max_examples=600, deadline=None)
@given(problems())
def test_search_finds_the_first_smallest_cover(problem):
    implies, requirements, granted = problem
    universe = ScopeUniverse(NAMES, implies)
    cover = minimum_cover(universe, [[universe.mask(a) for a in r] for r in requirements], universe.effective(granted))
    assert cover.exact
    assert set(universe.iter_names(cover.mask)) == reference(implies, requirements, granted), problem


@settings(max_examples=200, deadline=None)
@given(problems())
def test_a_search_cut_short_still_covers_everything(problem):
    implies, requirements, granted = problem
    universe = ScopeUniverse(NAMES, implies)
    masks = [[universe.mask(a) for a in r] for r in requirements]
    have = universe.effective(granted)
    cover = minimum_cover(universe, masks, have, max_steps=1)
    total = have | universe.closure_of(cover.mask)
    assert all(any(not m & ~total for m in r) for r in masks)
    assert cover.exact or sum(len(r) > 1 for r in requirements) > 0
