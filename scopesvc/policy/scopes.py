"""Scope sets as bitsets.

Every catalog scope gets one bit. A token's scope set is an int; the scopes a scope implies
(itself included, transitively) are precomputed per scope, so "does this token cover that
endpoint" is `required & ~effective == 0`, whatever the number of scopes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence


class ScopeUniverse:
    """The catalog's scopes, their bits and their implication closure."""

    __slots__ = ("names", "_bit", "_closure", "_implied_by_other")

    def __init__(self, names: Sequence[str], implies: Mapping[str, Iterable[str]]) -> None:
        """`implies[a]` lists the scopes `a` directly implies; the caller has checked it is acyclic."""
        self.names: tuple[str, ...] = tuple(names)
        self._bit: dict[str, int] = {name: 1 << i for i, name in enumerate(self.names)}
        closure: dict[str, int] = {}

        def close(name: str) -> int:
            if name not in closure:
                mask = self._bit[name]
                for implied in implies.get(name, ()):
                    mask |= close(implied)
                closure[name] = mask
            return closure[name]

        for name in self.names:
            close(name)
        self._closure = closure

    def __contains__(self, name: object) -> bool:
        return name in self._bit

    def bit(self, name: str) -> int:
        return self._bit[name]

    def mask(self, names: Iterable[str]) -> int:
        """The exact set `names` (no implication); unknown names are ignored."""
        bits = self._bit
        mask = 0
        for name in names:
            mask |= bits.get(name, 0)
        return mask

    def effective(self, names: Iterable[str]) -> int:
        """Everything `names` grants: each known scope and all it implies."""
        return self.grant(names)[0]

    def grant(self, names: Iterable[str]) -> tuple[int, tuple[str, ...]]:
        """What `names` grants (as `effective`) and the names that are not catalog scopes (as `unknown`), in one pass."""
        closure = self._closure
        mask = 0
        unknown: dict[str, None] | None = None  # built only when needed: most tokens have none
        for name in names:
            implied = closure.get(name)
            if implied is None:
                if unknown is None:
                    unknown = {}
                unknown[name] = None
            else:
                mask |= implied
        return mask, (tuple(unknown) if unknown else ())

    def closure_of(self, mask: int) -> int:
        """Everything the scopes in `mask` grant."""
        out = 0
        for name in self.iter_names(mask):
            out |= self._closure[name]
        return out

    def unknown(self, names: Iterable[str]) -> list[str]:
        """The names that are not catalog scopes, in order, without repeats."""
        return list(self.grant(names)[1])

    def iter_names(self, mask: int) -> Iterable[str]:
        """Scope names in `mask`, in catalog order."""
        names = self.names
        while mask:
            low = mask & -mask
            yield names[low.bit_length() - 1]
            mask ^= low

    def to_names(self, mask: int) -> list[str]:
        return list(self.iter_names(mask))

    def minimal(self, mask: int) -> int:
        """The smallest subset of `mask` that grants the same: drop every scope another member implies."""
        out = mask
        for name in self.iter_names(mask):
            # What `name` implies adds nothing beside it (no cycles, so `name` itself stays).
            out &= ~(self._closure[name] & ~self._bit[name])
        return out

    def implied_by(self, name: str) -> list[str]:
        """The scopes `name` grants besides itself."""
        return self.to_names(self._closure[name] & ~self._bit[name])
