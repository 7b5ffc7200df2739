"""Decision logs: one JSON line per Check decision, for audit.

Records go through a bounded queue to a writer thread (the event loop never waits on disk);
when the writer falls behind, records are dropped and counted. A file is rotated at a size
bound, keeping one previous file; `-` writes to stdout. Denials are always logged, allowed
decisions are sampled. A record never holds a token, a query string (it may carry
`access_token=`) or a secret header: identities appear only as a keyed BLAKE2 hash, stable
across restarts and replicas that share the key. With tracing on, a record names its trace (`trace_id`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import logging.handlers
import queue
import random
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..policy import Decision

SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
MAX_PATH = 512
_DEFAULT_KEY = b"scopesvc decision log v1"


class _DroppingQueueHandler(logging.handlers.QueueHandler):
    def __init__(self, records: queue.Queue, on_drop: Callable[[], None]) -> None:
        super().__init__(records)
        self.on_drop = on_drop

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            self.on_drop()

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record  # the message is already a finished JSON line


class DecisionLog:
    """Writes decision records to `target` (a path or '-')."""

    def __init__(self, target: str, sample: float = 1.0, max_bytes: int = 100 * 1024 * 1024,
                 hash_key: str = "", on_drop: Callable[[], None] = lambda: None, queue_size: int = 10000) -> None:
        self.sample = sample
        self._key = hashlib.blake2b(hash_key.encode() or _DEFAULT_KEY, digest_size=32).digest()
        if target == "-":
            handler: logging.Handler = logging.StreamHandler(sys.stdout)
        else:
            handler = logging.handlers.RotatingFileHandler(target, maxBytes=max_bytes, backupCount=1, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(message)s"))
        self._records: queue.Queue = queue.Queue(maxsize=queue_size)
        self._listener = logging.handlers.QueueListener(self._records, handler)
        self._logger = logging.Logger("scopesvc.decisions", logging.INFO)
        self._logger.addHandler(_DroppingQueueHandler(self._records, on_drop))
        self._handler = handler
        self._listener.start()

    def identity(self, *parts: str) -> str:
        """A stable keyed hash standing in for an identity (a scope set, a subject)."""
        digest = hashlib.blake2b(key=self._key, digest_size=12)
        for part in parts:
            digest.update(part.encode("utf-8", "surrogatepass") + b"\0")
        return digest.hexdigest()

    def wanted(self, allowed: bool) -> bool:
        return not allowed or self.sample >= 1.0 or random.random() < self.sample

    def write(self, *, rpc: str, decision: Decision, scopes: Iterable[str], method: str, path: str,
              revision: str, dry_run: bool, cached: bool, seconds: float, subject: str = "",
              client: str = "", attributes: Mapping[str, str] | None = None, trace_id: str = "") -> None:
        record: dict[str, Any] = {
            "ts": round(time.time(), 6),
            "rpc": rpc,
            "allowed": decision.allowed,
            "reason": decision.reason.name,
            "method": method[:32],
            "path": path.split("?", 1)[0][:MAX_PATH],
            "endpoint": decision.endpoint_key,
            "missing_scopes": list(decision.missing_scopes),
            "unknown_scope_count": len(decision.unknown_scopes),
            "token_format": decision.token_format.name,
            "scopes_hash": self.identity(*sorted(set(scopes))),
            "catalog_revision": revision,
            "dry_run": dry_run,
            "cached": cached,
            "duration_us": round(seconds * 1e6, 1),
        }
        if trace_id:
            record["trace_id"] = trace_id
        if subject:
            record["subject_hash"] = self.identity("subject", subject)
        if client:
            record["client_hash"] = self.identity("client", client)
        if attributes:
            record["attributes"] = {k: v[:256] for k, v in attributes.items() if k.lower() not in SECRET_HEADERS}
        self._logger.info(json.dumps(record, separators=(",", ":"), ensure_ascii=False))

    def close(self) -> None:
        """Flush what is queued and close the output."""
        self._listener.stop()
        self._handler.close()
