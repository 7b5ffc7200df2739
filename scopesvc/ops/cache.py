"""A bounded, expiring cache of Check decisions that can never answer differently from the engine.

The key holds everything `Engine.check` reads: the catalog revision (whose digest changes with
the file's bytes), the token's scopes in order, its format as resolved against the catalog (so
`issued_at` counts only through the format it decides, not as a raw timestamp), its kind, the
method and the exact path. Decisions are immutable values; exceptions are never cached.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable

from cachetools import TTLCache

from ..policy import Decision, Engine, Token


def decision_key(engine: Engine, token: Token | None, method: str, path: str) -> Hashable:
    """What a Check decision depends on, as a hashable key (`token` None: no credentials)."""
    if token is None:
        return (engine.catalog.revision, None, method, path)
    fmt = engine.token_format(token)
    # An unknown format is answered with its number in the message, so it keys on the number.
    format_key: Hashable = int(fmt) if fmt is not None else ("unknown", token.format)
    return (engine.catalog.revision, token.scopes, format_key, token.kind, method, path)


class DecisionCache:
    """Thread-safe TTL cache of decisions; size 0 turns it off."""

    def __init__(self, size: int, ttl: float) -> None:
        self.enabled = size > 0
        self._cache: TTLCache[Hashable, Decision] = TTLCache(maxsize=max(size, 1), ttl=ttl or 1.0)
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Decision | None:
        with self._lock:
            return self._cache.get(key)

    def put(self, key: Hashable, decision: Decision) -> None:
        with self._lock:
            self._cache[key] = decision

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def __len__(self) -> int:
        with self._lock:
            self._cache.expire()
            return len(self._cache)
