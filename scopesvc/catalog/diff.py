"""What changed in access between two compiled catalogs (`scopesvc catalog diff OLD NEW`).

Changes are found by meaning, not by text: each endpoint (paired by method and path shape) and
each webhook event is asked, in both catalogs, about the tokens that could tell the two apart.
A requirement is met by a token when its scopes, with everything they imply *in that catalog*,
cover one alternative. Both answers only grow with the token's scopes, so if some token is allowed
by NEW and denied by OLD, then one of NEW's smallest allowed tokens (one scope or one scope implying
it, for each scope of one alternative) is too; those are the witnesses tried, and the first one
found is shown. The change is `loosens` when some token gains access, `tightens` when some token
loses it, and both labels are given when both happen. Renames and descriptions are `neutral`.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..policy import Catalog
from ..policy.paths import MalformedPath

LOOSENS, TIGHTENS, NEUTRAL = "loosens", "tightens", "neutral"
_MAX_WITNESSES = 4096  # smallest tokens tried per alternative; real alternatives have a handful


@dataclass(frozen=True)
class Requirement:
    """What one catalog asks of a token for one endpoint or event, with that catalog's implications."""

    catalog: Catalog
    public: bool
    alternatives: tuple[frozenset[str], ...]  # any one, all of its scopes; () with public=False: nothing allows

    def allows(self, token: frozenset[str] | None) -> bool:
        """`token` None is "no token at all"; a token without a scope this catalog knows is refused."""
        if self.public:
            return True
        universe = self.catalog.universe
        granted = universe.grant(token or ())[0]
        return bool(granted) and any(all(s in universe and universe.bit(s) & granted for s in alternative)
                   for alternative in self.alternatives)

    def smallest_tokens(self) -> Iterable[frozenset[str] | None]:
        """Every smallest token this requirement allows (None: no token, when public)."""
        if self.public:
            yield None
            return
        universe = self.catalog.universe
        for alternative in self.alternatives:
            if not alternative:  # a token, no particular scope: any one scope of this catalog
                yield from (frozenset((name,)) for name in universe.names)
                continue
            granters = [[s] + [x for x in universe.names if x != s and s in universe.implied_by(x)]
                        for s in sorted(alternative)]
            for choice in itertools.islice(itertools.product(*granters), _MAX_WITNESSES):
                yield frozenset(choice)

    def describe(self) -> str:
        if self.public:
            return "public (no token)"
        if not self.alternatives:
            return "no endpoint"
        if self.alternatives == (frozenset(),):
            return "a token, no scope"
        return " | ".join("[" + " ".join(sorted(a)) + "]" for a in self.alternatives)



def _requirement(catalog: Catalog, thing: Any, extra_mask: int = 0) -> Requirement:
    """The requirement of a compiled endpoint or event (events are never public); None needs what nothing has."""
    if thing is None:
        return Requirement(catalog, False, ())
    universe = catalog.universe
    return Requirement(catalog, bool(getattr(thing, "public", False)),
                       tuple(frozenset(universe.iter_names(m | extra_mask)) for m in thing.alternatives))


def _token(token: frozenset[str] | None) -> str:
    return "no token" if token is None else "a token with " + " ".join(sorted(token))


def _witness(gains: Requirement, loses: Requirement) -> frozenset[str] | None | bool:
    """A token `gains` allows and `loses` denies, or False when there is none."""
    for token in gains.smallest_tokens():
        if not loses.allows(token):
            return token
    return False


@dataclass(frozen=True)
class Change:
    kind: str  # endpoint | event | subscription | scope | catalog
    item: str
    labels: tuple[str, ...]  # (loosens,), (tightens,), (loosens, tightens) or (neutral,)
    what: str
    examples: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "item": self.item, "labels": list(self.labels), "what": self.what,
                "examples": list(self.examples)}


@dataclass
class Diff:
    old: Catalog
    new: Catalog
    changes: list[Change] = field(default_factory=list)

    def count(self, label: str) -> int:
        return sum(1 for c in self.changes if label in c.labels)

    @property
    def decisions_can_differ(self) -> bool:
        return bool(self.count(LOOSENS) or self.count(TIGHTENS))

    def to_json(self) -> dict[str, Any]:
        return {"old": self.old.source, "new": self.new.source, "loosens": self.count(LOOSENS),
                "tightens": self.count(TIGHTENS), "neutral": self.count(NEUTRAL),
                "decisions_can_differ": self.decisions_can_differ, "changes": [c.to_json() for c in self.changes]}

    def human(self) -> str:
        counts = f"{self.count(LOOSENS)} loosening, {self.count(TIGHTENS)} tightening, {self.count(NEUTRAL)} neutral"
        lines = [f"{self.old.source} -> {self.new.source}: {counts} change(s)"]
        for change in self.changes:
            lines.append(f"  {'+'.join(change.labels):<17} {change.kind} {change.item}: {change.what}")
            lines += [f"{'':20}{example}" for example in change.examples]
        if not self.decisions_can_differ:
            lines.append("no decision can differ")
        return "\n".join(lines)


def _compare(kind: str, item: str, old: Requirement, new: Requirement, what: str = "") -> Change | None:
    gained, lost = _witness(new, old), _witness(old, new)
    labels = tuple(label for label, found in ((LOOSENS, gained), (TIGHTENS, lost)) if found is not False)
    if not labels:
        return None
    examples = []
    if gained is not False:
        examples.append(f"{_token(gained)} gains access")  # type: ignore[arg-type]
    if lost is not False:
        examples.append(f"{_token(lost)} loses access")  # type: ignore[arg-type]
    if not what:
        what = f"{old.describe()} -> {new.describe()}" if old.describe() != new.describe() else \
            f"{new.describe()}, but what grants it changed (implications)"
    return Change(kind, item, labels, what, tuple(examples))


def _shape(method: str, template: str) -> str:
    erased = re.sub(r"\{[^}=]*(=[^}]*)?\}", lambda m: "{**}" if m.group(1) else "{}", template)
    return f"{method} {erased}"


def _served(catalog: Catalog, method: str, template: str) -> Any:
    """The endpoint of `catalog` that a request to another catalog's template reaches, if any."""
    try:
        return catalog.find_endpoint(method, template)
    except MalformedPath:
        return None


def _endpoints(old: Catalog, new: Catalog) -> list[Change]:
    changes: list[Change] = []
    old_by = {_shape(e.method, e.template): e for e in old.endpoints}
    new_by = {_shape(e.method, e.template): e for e in new.endpoints}
    for key in dict.fromkeys([*old_by, *new_by]):
        before, after = old_by.get(key), new_by.get(key)
        item = (after or before).key
        if before is None:
            before = _served(old, after.method, after.template)
            what = f"added (before: {'served by ' + before.key if before else 'no endpoint'})"
        elif after is None:
            after = _served(new, before.method, before.template)
            what = f"removed (now: {'served by ' + after.key if after else 'no endpoint'})"
        else:
            what = ""
            if before.template != after.template:
                changes.append(Change("endpoint", item, (NEUTRAL,), f"template {before.template} -> {after.template}"))
        old_req, new_req = _requirement(old, before), _requirement(new, after)
        change = _compare("endpoint", item, old_req, new_req,
                          f"{what}: {old_req.describe()} -> {new_req.describe()}" if what else "")
        if change is not None:
            changes.append(change)
        elif what:
            changes.append(Change("endpoint", item, (NEUTRAL,), f"{what}, with the same requirement"))
    return changes


def _events(old: Catalog, new: Catalog) -> list[Change]:
    changes: list[Change] = []
    for name in dict.fromkeys([*old.events, *new.events]):
        before, after = old.events.get(name), new.events.get(name)
        for kind, old_req, new_req in (
            ("event", _requirement(old, before), _requirement(new, after)),
            ("subscription", _requirement(old, before, old.subscribe_mask if before else 0),
             _requirement(new, after, new.subscribe_mask if after else 0)),
        ):
            change = _compare(kind, name, old_req, new_req)
            if change is not None:
                changes.append(change)
        levels_before = set(before.subscription_scopes) if before else set()
        levels_after = set(after.subscription_scopes) if after else set()
        if before and after and levels_before != levels_after:
            labels = tuple(label for label, found in ((LOOSENS, levels_after - levels_before),
                                                      (TIGHTENS, levels_before - levels_after)) if found)
            changes.append(Change("subscription", name, labels, f"levels {'/'.join(sorted(levels_before))} -> "
                                                                f"{'/'.join(sorted(levels_after))}"))
    return changes


def _scopes(old: Catalog, new: Catalog) -> list[Change]:
    changes: list[Change] = []
    for name in dict.fromkeys([*old.scopes, *new.scopes]):
        if name not in old.scopes or name not in new.scopes:
            what = "declared" if name not in old.scopes else "no longer declared"
            changes.append(Change("scope", name, (NEUTRAL,), f"{what} (its endpoints are compared above)"))
            continue
        before, after = set(old.universe.implied_by(name)), set(new.universe.implied_by(name))
        if before != after:
            labels = tuple(label for label, found in ((LOOSENS, after - before), (TIGHTENS, before - after)) if found)
            parts = [f"now grants {' '.join(sorted(after - before))}" if after - before else "",
                     f"no longer grants {' '.join(sorted(before - after))}" if before - after else ""]
            changes.append(Change("scope", name, labels, "; ".join(p for p in parts if p)))
        elif old.scopes[name].description != new.scopes[name].description:
            changes.append(Change("scope", name, (NEUTRAL,), "description changed"))
    return changes


def _settings(old: Catalog, new: Catalog) -> list[Change]:
    changes: list[Change] = []
    before, after = old.scopes_introduced_at, new.scopes_introduced_at
    if before != after:
        # Tokens of unset format issued before the cut-over are legacy, with full access.
        later = after is not None and (before is None or after > before)
        changes.append(Change("catalog", "oauth.scopes_introduced_at", (LOOSENS if later else TIGHTENS,),
                              f"legacy cut-over {before.date() if before else 'none'} -> "
                              f"{after.date() if after else 'none'}: tokens issued in between "
                              f"{'become legacy (full access)' if later else 'are no longer legacy'}"))
    flags: Sequence[tuple[str, bool, bool, str]] = (
        ("paths.head_as_get", old.head_as_get, new.head_as_get, "HEAD may use GET endpoints"),
        ("paths.trailing_slash", old.strip_trailing_slash, new.strip_trailing_slash, "a trailing slash is stripped"),
        ("paths.case_insensitive", old.case_insensitive, new.case_insensitive, "static segments match in any case"),
    )
    for item, was, now, meaning in flags:
        if was != now:
            changes.append(Change("catalog", item, (LOOSENS if now else TIGHTENS,),
                                  f"{meaning}: {'now' if now else 'no longer'}"))
    return changes


def diff(old: Catalog, new: Catalog) -> Diff:
    """Every change in access from `old` to `new`, catalog settings first, then endpoints, events, scopes."""
    return Diff(old, new, _settings(old, new) + _endpoints(old, new) + _events(old, new) + _scopes(old, new))
