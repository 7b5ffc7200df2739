"""The fewest scopes that meet several any-of requirements at once.

A requirement is a sequence of alternatives (scope masks, in catalog order), any one of which
suffices; `scopes: [a, b]` is a requirement with one alternative. Plan (the scopes to request for
some features), MigrateToken (a scope set as good as a legacy token) and the webhook checks (what a
token lacks for several events) all ask the same question: choose one alternative per requirement
so that the scopes to add are as few as possible.

The answer is drawn from the chosen alternatives only (never a broader scope that no requirement
names), in minimal form (no scope beside one that implies it). It is the fewest scopes; among
choices with as few, the first in order (requirements as given, each one's alternatives in
catalog order). The search is exact: a depth-first walk over the choices that skips a choice
already met, a state already seen, and a branch whose lower bound is no better than the best
found. Catalogs have a handful of alternatives per endpoint, so it takes a few hundred steps; after
`MAX_STEPS` it stops and returns the best cover found so far, marked inexact.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

from .scopes import ScopeUniverse

MAX_STEPS = 100_000


class Cover(NamedTuple):
    mask: int  # the scopes to add, minimal form
    exact: bool  # False when the search stopped after MAX_STEPS: a cover, maybe not the smallest
    chosen: int  # every scope of the alternatives chosen (what is required, granted or not)


def met(alternatives: Sequence[int], granted: int) -> bool:
    """Does `granted` (a closure) meet one of the alternatives?"""
    return any(not alternative & ~granted for alternative in alternatives)


def closest(universe: ScopeUniverse, alternatives: Sequence[int], granted: int) -> tuple[int, int]:
    """(index, scopes to add) of the alternative `granted` (a closure) comes closest to: the
    fewest scopes to add, in minimal form; among as few, the one whose scopes grant the fewest
    (least privilege); then the first in catalog order. A met alternative adds nothing."""
    best, best_add, best_score = 0, 0, (-1, -1)
    for index, alternative in enumerate(alternatives):
        add = universe.minimal(alternative & ~granted)
        if not add:
            return index, 0
        score = (add.bit_count(), universe.closure_of(add).bit_count())
        if best_score[0] < 0 or score < best_score:
            best, best_add, best_score = index, add, score
    return best, best_add


def minimum_cover(universe: ScopeUniverse, requirements: Iterable[Sequence[int]], granted: int = 0,
                  max_steps: int = MAX_STEPS) -> Cover:
    """The fewest scopes to add to `granted` (a closure) so that every requirement is met."""
    fixed = 0
    choices: list[tuple[int, ...]] = []
    for alternatives in requirements:
        if len(alternatives) == 1:
            fixed |= alternatives[0]
        elif alternatives:
            choices.append(tuple(alternatives))
    search = _Search(universe, list(dict.fromkeys(choices)), granted, max_steps)
    exact = search.walk(0, fixed)
    return Cover(universe.minimal(search.best & ~granted), exact, search.best)


class _Search:
    """Branch and bound over one alternative per requirement, for the fewest scopes to add and,
    among as few, the fewest scopes they grant (least privilege); the first in order among equals."""

    def __init__(self, universe: ScopeUniverse, choices: list[tuple[int, ...]], granted: int, max_steps: int) -> None:
        self.universe = universe
        self.choices = choices
        self.granted = granted
        self.steps_left = max_steps
        self.best = -1
        self.best_score = (0, 0)
        self.seen: set[tuple[int, int]] = set()
        # The scopes the alternatives still to choose could imply besides themselves: what the
        # current choice needs outside them stays in the answer, a lower bound on its size.
        self.absorbable = [0] * (len(choices) + 1)
        for depth in range(len(choices) - 1, -1, -1):
            mask = self.absorbable[depth + 1]
            for alternative in choices[depth]:
                for name in universe.iter_names(alternative):
                    bit = universe.bit(name)
                    mask |= universe.closure_of(bit) & ~bit
            self.absorbable[depth] = mask

    def walk(self, depth: int, chosen: int) -> bool:
        """Visit the choices from `depth` on; False when the step budget ran out."""
        if (depth, chosen) in self.seen:
            return True
        self.seen.add((depth, chosen))
        self.steps_left -= 1
        if self.steps_left < 0 and self.best >= 0:
            return False
        universe, granted = self.universe, self.granted
        needed = universe.minimal(chosen & ~granted)
        # Whatever is chosen later, the answer grants at least what `chosen` needs.
        bound = ((needed & ~self.absorbable[depth]).bit_count(),
                 (universe.closure_of(needed) & ~granted).bit_count())
        if self.best >= 0 and (bound[0] > self.best_score[0] or bound == self.best_score or (
                bound[0] == self.best_score[0] and bound[1] > self.best_score[1])):
            return True
        if depth == len(self.choices):
            self.best, self.best_score = chosen, bound
            return True
        for alternative in self.choices[depth]:
            if not self.walk(depth + 1, chosen | alternative):
                return False
        return True
