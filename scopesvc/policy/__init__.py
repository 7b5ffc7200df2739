"""The whole scope policy, free of I/O: compile a catalog, then ask the engine.

    >>> from scopesvc.policy import Engine, Token, compile_catalog
    >>> engine = Engine(compile_catalog(data))
    >>> engine.check(Token(scopes=("users:read",)), "GET", "/users/me").allowed
    True
"""

from .catalog import Catalog, Endpoint, Feature, WebhookEvent, compile_catalog
from .engine import Engine
from .errors import CatalogError, RequestError
from .model import (
    Cause,
    Decision,
    Diagnosis,
    Plan,
    Reason,
    Token,
    TokenFormat,
    TokenKind,
    WebhookDecision,
)

__all__ = [
    "Catalog", "CatalogError", "Cause", "Decision", "Diagnosis", "Endpoint", "Engine", "Feature",
    "Plan", "Reason", "RequestError", "Token", "TokenFormat", "TokenKind", "WebhookDecision",
    "WebhookEvent", "compile_catalog",
]  # fmt: skip
