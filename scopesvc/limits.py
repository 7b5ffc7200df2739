"""What one request may hold: the bounds every adapter enforces before the engine sees it.

The gRPC conversion (`convert`), AuthZEN and verified token claims (`tokens.claims`) read
requests from different wire forms; the same bounds, and the same error naming the field that
broke them, keep a request that one front end refuses from being accepted by another.
"""

from __future__ import annotations

from collections.abc import Sequence

from .policy import RequestError

MAX_SCOPES = 1000
MAX_SCOPE_LENGTH = 1024
MAX_METHOD_LENGTH = 32
MAX_BATCH = 1000
MAX_FEATURES = 1000
MAX_ITEM_LENGTH = 8192


def subfield(field: str, name: str) -> str:
    """`name` inside the message `field` names (just `name` at the top level)."""
    return f"{field}.{name}" if field else name


def check_strings(values: Sequence[str], field: str, limit: int, length: int = MAX_ITEM_LENGTH,
                  parent: str = "") -> None:
    """Bound a repeated string field: at most `limit` entries of at most `length` characters.

    `parent` names the message holding `field` in errors (the name is only built for one).
    """
    if len(values) > limit:
        raise RequestError(subfield(parent, field), f"at most {limit} entries, got {len(values)}")
    if values and max(map(len, values)) > length:
        i = next(i for i, value in enumerate(values) if len(value) > length)
        raise RequestError(f"{subfield(parent, field)}[{i}]", f"longer than {length} characters")
