"""The values the engine takes and gives: tokens, reasons and decisions.

Enum numbers are those of the `scopesvc.v1` proto, so adapters convert by value.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from typing import NamedTuple

from .catalog import Endpoint


class TokenFormat(enum.IntEnum):
    UNSPECIFIED = 0
    SCOPED = 1
    LEGACY = 2


class TokenKind(enum.IntEnum):
    UNSPECIFIED = 0
    OAUTH_APP = 1
    PERSONAL_ACCESS_TOKEN = 2


class Reason(enum.IntEnum):
    UNSPECIFIED = 0
    ALLOWED = 1
    ALLOWED_LEGACY_TOKEN = 2
    INSUFFICIENT_SCOPE = 3
    NO_SCOPES = 4
    UNKNOWN_ENDPOINT = 5
    MALFORMED_PATH = 6
    UNKNOWN_TOKEN_FORMAT = 7
    UNKNOWN_EVENT = 8
    SUBSCRIPTION_SCOPE_NOT_ALLOWED = 9
    ROUTE_METHOD_MISMATCH = 10
    MISSING_TOKEN = 11
    INVALID_TOKEN = 12
    REWRITE_HEADER = 13
    ALLOWED_PUBLIC = 14


# Headers some frameworks read to change a request's method or path after the gateway decided it
# (method overrides; IIS/Zend/Symfony URL rewrites). A request carrying one is denied (REWRITE_HEADER):
# the upstream could serve another endpoint than the one decided. Lower case, as gateways send them.
REWRITE_HEADERS = (
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "x-original-url",
    "x-rewrite-url",
)


class Token(NamedTuple):
    """An access token as the engine sees it (a request with no credentials at all is `None`, not a Token).

    `format` is an int so a value no enum member has (from a newer client) is still carried
    and answered with UNKNOWN_TOKEN_FORMAT instead of failing to convert. A NamedTuple: one is
    built for every request, at half the cost of a frozen dataclass.
    """

    scopes: tuple[str, ...] = ()
    format: int = TokenFormat.UNSPECIFIED
    issued_at: dt.datetime | None = None
    kind: int = TokenKind.UNSPECIFIED


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to Check, with what a gateway sends back on deny."""

    allowed: bool
    reason: Reason
    message: str
    endpoint: Endpoint | None
    missing_scopes: tuple[str, ...]
    unknown_scopes: tuple[str, ...]
    token_format: TokenFormat
    http_status: int
    www_authenticate: str
    body: str
    # True when the engine answers every equal question with this same object, so an adapter
    # may keep what it derives from it (a serialized response) by identity.
    shared: bool = field(default=False, compare=False)
    # Which of the endpoint's alternatives the decision is about: the one met (allowed) or the
    # one closest to being met (denied), whose scopes the deny answer names.
    alternative: int = 0

    @property
    def endpoint_key(self) -> str:
        return self.endpoint.key if self.endpoint else ""

    @property
    def required_scopes(self) -> tuple[str, ...]:
        """The scopes of the alternative decided on (every scope of a single-set endpoint)."""
        endpoint = self.endpoint
        if endpoint is None:
            return ()
        return endpoint.any_of[self.alternative] if endpoint.any_of else endpoint.scopes


@dataclass(frozen=True, slots=True)
class WebhookDecision:
    """The answer to a webhook subscription or delivery question."""

    allowed: bool
    reason: Reason
    message: str
    required_scopes: tuple[str, ...]
    missing_scopes: tuple[str, ...]
    unknown_scopes: tuple[str, ...]
    token_format: TokenFormat
    unknown_events: tuple[str, ...] = ()
    # (event, the subscription scopes it does allow) for each event the requested one does not fit
    disallowed_events: tuple[tuple[str, tuple[str, ...]], ...] = ()


class Cause(enum.IntEnum):
    UNSPECIFIED = 0
    NOT_REQUESTED = 1
    DECLINED = 2


@dataclass(frozen=True, slots=True)
class MissingScope:
    scope: str
    cause: Cause
    action: str
    requested_as: tuple[str, ...] = ()  # DECLINED: the requested scopes that grant `scope`


@dataclass(frozen=True, slots=True)
class Diagnosis:
    target: str
    required_scopes: tuple[str, ...]
    missing: tuple[MissingScope, ...]
    needs_reauthorization: bool
    summary: str
    steps: tuple[str, ...]
    unknown_scopes: tuple[str, ...]
    granted_not_requested: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ScopeUse:
    scope: str
    needed_by: tuple[str, ...]
    optional: bool


@dataclass(frozen=True, slots=True)
class OverBroad:
    scope: str
    note: str


@dataclass(frozen=True, slots=True)
class Plan:
    scopes: tuple[str, ...]
    optional_scopes: tuple[str, ...]
    uses: tuple[ScopeUse, ...]
    over_broad: tuple[OverBroad, ...]
    missing_from_existing: tuple[str, ...]
    unknown_scopes: tuple[str, ...]
    notes: tuple[str, ...]
    authorize_url: str
