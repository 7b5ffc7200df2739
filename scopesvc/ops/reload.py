"""Catalog hot reload: on a file change (polled) and on SIGHUP.

The watched path is resolved on every poll, so a Kubernetes ConfigMap update — an atomic swap
of the `..data` symlink to a new directory — is seen like an in-place rewrite. A change is
noticed by (real path, inode, size, mtime); the catalog revision, which carries a hash of the
file's bytes, then decides whether the catalog really changed. Compiling runs in a worker thread, off the event loop; the new engine replaces
the old one in a single reference store, so each request sees one catalog or the other. A bad
catalog is logged and counted and the old one keeps serving; it is not retried until the file
changes again (or SIGHUP).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable

from ..catalog import files as catalog_files
from ..policy import CatalogError, Engine
from . import tracing
from .metrics import Metrics

log = logging.getLogger(__name__)

Fingerprint = tuple[str, int, int, int]


class EngineRef:
    """The engine currently serving. A reload replaces it whole (one attribute store is atomic)."""

    __slots__ = ("engine",)

    def __init__(self, engine: Engine) -> None:
        self.engine = engine


def fingerprint(path: str) -> Fingerprint | None:
    """What identifies the file's current version cheaply; None when it cannot be read."""
    try:
        real = os.path.realpath(path)
        st = os.stat(real)
    except OSError:
        return None
    return (real, st.st_ino, st.st_size, st.st_mtime_ns)


def compile_file(path: str) -> tuple[Engine, float]:
    """Read and compile a catalog file: (engine, seconds taken). Blocking."""
    start = time.perf_counter()
    engine = Engine(catalog_files.load_file(path))
    return engine, time.perf_counter() - start


class CatalogReloader:
    """Watches `path` and swaps `ref.engine` when the catalog changes; `on_swap` runs after each swap."""

    def __init__(self, path: str, ref: EngineRef, metrics: Metrics, interval: float,
                 on_swap: Callable[[Engine], None]) -> None:
        self.path = path
        self.ref = ref
        self.metrics = metrics
        self.interval = interval
        self.on_swap = on_swap
        self._seen = fingerprint(path)
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.interval > 0:
            self._task = asyncio.get_running_loop().create_task(self._poll(), name="catalog-reload")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if fingerprint(self.path) != self._seen:
                try:
                    await self.reload("file change")
                except Exception:  # keep watching whatever went wrong
                    log.exception("catalog reload failed")

    async def reload(self, cause: str) -> bool:
        """Load the file now; swap when its bytes differ. True when a new catalog is serving.

        With tracing on, each reload is a span of its own whose event says how it ended.
        """
        async with self._lock:
            with tracing.span("scopesvc.catalog.reload", {"scopesvc.reload.cause": cause}):
                return await self._reload(cause)

    async def _reload(self, cause: str) -> bool:
        self._seen = fingerprint(self.path)
        old = self.ref.engine.catalog
        try:
            engine, seconds = await asyncio.to_thread(compile_file, self.path)
        except CatalogError as exc:
            self.metrics.catalog_reload_failures.inc()
            tracing.event("scopesvc.catalog.rejected", {"scopesvc.catalog.revision": old.revision})
            log.error("catalog reload (%s) rejected, still serving %s revision %s: %s",
                      cause, old.name, old.revision, exc)
            return False
        except Exception:
            self.metrics.catalog_reload_failures.inc()
            tracing.event("scopesvc.catalog.failed", {"scopesvc.catalog.revision": old.revision})
            log.exception("catalog reload (%s) failed, still serving %s revision %s", cause, old.name, old.revision)
            return False
        if engine.catalog.revision == old.revision:
            tracing.event("scopesvc.catalog.unchanged", {"scopesvc.catalog.revision": old.revision})
            log.info("catalog reload (%s): %s unchanged", cause, self.path)
            return False
        self.ref.engine = engine
        self.metrics.catalog_reloads.inc()
        self.metrics.set_catalog(engine.catalog, seconds)
        self.on_swap(engine)
        tracing.event("scopesvc.catalog.reloaded", {"scopesvc.catalog.revision": engine.catalog.revision,
                                                    "scopesvc.catalog.previous_revision": old.revision})
        log.info("catalog reloaded (%s): %s revision %s -> %s revision %s in %.3fs", cause,
                 old.name, old.revision, engine.catalog.name, engine.catalog.revision, seconds)
        return True
