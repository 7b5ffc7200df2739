"""The tracing switch, and the hooks any part of scopesvc may call whether tracing is on or off.

Tracing is off unless `scopesvc serve --tracing` (or `SCOPESVC_TRACING`, or `tracing:` in the
config file) turns it on; `OTEL_SDK_DISABLED=true` keeps it off. Off means free: the OpenTelemetry
SDK is not imported, front ends hold `None` instead of a `Tracing` and skip all trace work behind
one `is None` test, and the hooks below return at once.

The hooks are for code far from a front end that has something to say inside the current
request's span or beside it: token verification (`event("scopesvc.token.verified", ...)`), catalog
reloads (`span("scopesvc.catalog.reload")`). They reach the process's one active `Tracing`: the
tracer provider is a process-wide thing, as each worker of `--workers N` is a process of its own.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .otel import Tracing

_active: Tracing | None = None


def disabled_by_environment(environ: Mapping[str, str] | None = None) -> bool:
    """True when OTEL_SDK_DISABLED says so (the OpenTelemetry switch that overrides every other)."""
    environ = os.environ if environ is None else environ
    return environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def start(environ: Mapping[str, str] | None = None) -> Tracing | None:
    """The process's `Tracing`, configured from `OTEL_*` variables; None when OTEL_SDK_DISABLED is true."""
    global _active
    if disabled_by_environment(environ):
        return None
    from .otel import Tracing

    _active = Tracing(environ)
    return _active


def stop(tracing: Tracing | None) -> None:
    """Flush and shut down `tracing` (from `start`); the hooks go quiet."""
    global _active
    if tracing is None:
        return
    if _active is tracing:
        _active = None
    tracing.shutdown()


def event(name: str, attributes: Mapping[str, Any] | None = None) -> None:
    """Add an event to the current span when tracing is on. Never pass a token, scope or subject."""
    if _active is not None:
        _active.event(name, attributes)


def span(name: str, attributes: Mapping[str, Any] | None = None) -> AbstractContextManager[Any]:
    """A span for some work outside a request (a catalog reload), or nothing when tracing is off."""
    if _active is None:
        return contextlib.nullcontext()
    return _active.span(name, attributes)
