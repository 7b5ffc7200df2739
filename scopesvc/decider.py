"""The one place a Check decision is made for every front end: scopesvc.v1 Check and CheckBatch,
and the gateway adapters (Envoy ext_authz, HTTP forward-auth).

`Decider.decide()` wraps the current engine with the decision cache, metrics, the decision log
and dry-run mode, so all front ends cache, count, log and shadow alike. Front ends convert
their request into (Token, method, path), call `decide()` or `decide_many()` (one engine for
the whole batch, so a reload cannot mix two catalogs in one answer), and enforce
`Outcome.allowed` — never `Outcome.decision.allowed`, which is the policy's verdict before
dry-run. The deny answer (status, WWW-Authenticate, body) comes from `Outcome.decision`.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple

from . import convert
from .ops.cache import DecisionCache, decision_key
from .ops.decision_log import DecisionLog
from .ops.metrics import Metrics
from .ops.reload import EngineRef
from .policy import Decision, Engine, Token
from .policy.engine import invalid_token
from .tokens.verifier import Verification
from .v1 import scopesvc_pb2 as pb

if TYPE_CHECKING:
    from .ops.otel import Tracing


class Outcome(NamedTuple):
    """One decision as served (a NamedTuple: built on every request, and cheaper than a dataclass)."""

    decision: Decision  # the policy's verdict and deny answer
    revision: str  # the catalog revision it was made with
    allowed: bool  # what to enforce: the verdict, or True in dry-run mode
    dry_run: bool  # True when dry-run mode allowed a request the policy denies
    cached: bool

    def response(self) -> pb.CheckResponse:
        """The scopesvc.v1 CheckResponse; in dry-run, allowed with the policy's reason kept."""
        response = convert.check_response(self.decision, self.revision)
        if self.dry_run:
            response.allowed = True
            response.dry_run = True
            response.ClearField("deny")
        return response


class Decider:
    """Engine + cache + metrics + decision log + dry-run + tracing, shared by every front end.

    With `tracing` (None: off), each decision is described on the current span - the one its front
    end opened for the call - and its trace id goes into the decision log line.
    """

    def __init__(self, ref: EngineRef, cache: DecisionCache, metrics: Metrics,
                 log: DecisionLog | None = None, dry_run: bool = False, tracing: Tracing | None = None) -> None:
        self.ref = ref
        self.cache = cache
        self.metrics = metrics
        self.log = log
        self.dry_run = dry_run
        self.tracing = tracing

    def decide(self, token: Token | None, method: str, path: str, *, rpc: str, subject: str = "", client: str = "",
               attributes: Mapping[str, str] | None = None, engine: Engine | None = None,
               route: str = "", headers: Collection[str] = ()) -> Outcome:
        """Decide one request. `rpc` names the front end (a fixed string: it is a metric label).

        `token` None is a request with no credentials at all: the engine decides it too
        (MISSING_TOKEN, 401), so it is counted, logged and shadowed like every other.

        `subject` (e.g. a JWT `sub`) and `client` (its `client_id`) appear in the decision log only as keyed hashes;
        `attributes` (e.g. a request id) are logged as given, minus secret headers; `engine`
        is the one serving now unless given (`decide_many` holds one for a whole batch).
        Gateway front ends pass the endpoint their route names (`route`) and the request's
        `headers`: the engine decides the request as the upstream will receive it
        (`Engine.gateway_target`), and a request it cannot decide so is denied here like any other.
        Raises what the engine raises (nothing is cached then); the caller maps it to an error.
        """
        if engine is None:
            engine = self.ref.engine
        start = time.perf_counter()
        revision = engine.catalog.revision
        target: str | Decision = path
        if route or headers:
            target = engine.gateway_target(token, method, path, route, headers)
        if not isinstance(target, str):
            decision, cached = target, False
        elif not self.cache.enabled:
            decision, cached = engine.check(token, method, target), False
        else:
            key = decision_key(engine, token, method, target)
            hit = self.cache.get(key)
            cached = hit is not None
            if hit is None:
                self.metrics.cache_misses.inc()
                decision = engine.check(token, method, target)
                self.cache.put(key, decision)  # reached only when the engine answered: errors are not cached
            else:
                self.metrics.cache_hits.inc()
                decision = hit
        return self._served(decision, revision, token.scopes if token else (), method, path, rpc=rpc, cached=cached,
                            start=start, subject=subject, client=client, attributes=attributes)

    def decide_verified(self, verification: Verification, method: str, path: str, *, rpc: str,
                        attributes: Mapping[str, str] | None = None, engine: Engine | None = None,
                        route: str = "", headers: Collection[str] = (), subject: str = "") -> Outcome:
        """Decide for a verified bearer credential: its token's decision, or the invalid-token deny (401).

        The decision log's subject is the token's `sub` unless the caller names one (`subject`).

        The deny is counted, logged and shadowed by dry-run like any decision, and never cached
        here (the verifier keeps its own cache of verified tokens). Like a missing token, an
        invalid one is answered before the request's route or headers are looked at.
        """
        if verification.token is not None:
            return self.decide(verification.token, method, path, rpc=rpc, subject=subject or verification.subject,
                               client=verification.client_id, attributes=attributes, engine=engine,
                               route=route, headers=headers)
        start = time.perf_counter()
        revision = (engine or self.ref.engine).catalog.revision
        return self._served(invalid_token(verification.description), revision, (), method, path, rpc=rpc,
                            cached=False, start=start, attributes=attributes)

    def _served(self, decision: Decision, revision: str, scopes: Sequence[str], method: str, path: str, *,
                rpc: str, cached: bool, start: float, subject: str = "", client: str = "",
                attributes: Mapping[str, str] | None = None) -> Outcome:
        """Count, log and shadow one decision: what every decision goes through."""
        shadowed = self.dry_run and not decision.allowed
        seconds = time.perf_counter() - start
        self.metrics.record_decision(rpc, decision.allowed, decision.reason, seconds)
        if shadowed:
            self.metrics.dry_run_allowed.labels(rpc).inc()
        trace_id = ""
        if self.tracing is not None:
            trace_id = self.tracing.annotate(rpc, decision, revision, decision.allowed or self.dry_run, shadowed,
                                             ("hit" if cached else "miss") if self.cache.enabled else "")
        if self.log is not None and self.log.wanted(decision.allowed):
            self.log.write(rpc=rpc, decision=decision, scopes=scopes, method=method, path=path,
                           revision=revision, dry_run=shadowed, cached=cached, seconds=seconds,
                           subject=subject, client=client, attributes=attributes, trace_id=trace_id)
        return Outcome(decision, revision, decision.allowed or self.dry_run, shadowed, cached)

    def decide_item(self, token: Token | Verification | None, method: str, path: str, *, rpc: str, engine: Engine,
                    subject: str = "", attributes: Mapping[str, str] | None = None) -> Outcome:
        """One decision of several answered together with `engine`: `decide` (or `decide_verified` for a
        verified bearer credential), in a span of its own when tracing."""
        if self.tracing is None:
            return self._decide_any(token, method, path, rpc, engine, subject, attributes)
        with self.tracing.span("scopesvc.decision"):
            return self._decide_any(token, method, path, rpc, engine, subject, attributes)

    def decide_many(self, checks: Sequence[tuple[Token | Verification | None, str, str]], *,
                    rpc: str) -> list[Outcome]:
        """Decide several (token or verified bearer credential, method, path) requests against one catalog."""
        engine = self.ref.engine
        return [self.decide_item(token, method, path, rpc=rpc, engine=engine) for token, method, path in checks]

    def _decide_any(self, token: Token | Verification | None, method: str, path: str, rpc: str, engine: Engine,
                    subject: str, attributes: Mapping[str, str] | None) -> Outcome:
        if isinstance(token, Verification):
            return self.decide_verified(token, method, path, rpc=rpc, engine=engine, attributes=attributes,
                                        subject=subject)
        return self.decide(token, method, path, rpc=rpc, subject=subject, attributes=attributes, engine=engine)
