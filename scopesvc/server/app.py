"""Assembling and running the gRPC server: scopesvc.v1, Envoy ext_authz, health, reflection, metrics and reload.

Life cycle: the health service reports SERVING once the server listens with a catalog loaded
(readiness); on SIGTERM or SIGINT it reports NOT_SERVING first, then the server stops
accepting and gives in-flight RPCs `grace` seconds. SIGHUP reloads the catalog file and empties
the verified-token cache.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import resource
import signal
import time

import grpc
from grpc_health.v1 import health, health_pb2
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc

from ..catalog import files as catalog_files
from ..decider import Decider, EngineRef
from ..gateway import ExtAuthzService, ForwardAuth, GatewayConfig
from ..gateway.authzen import Authzen
from ..gateway.authzen_http import AuthzenRoutes
from ..gateway.ext_authz import SERVICE as EXT_AUTHZ_SERVICE
from ..gateway.http import HttpFrontEnd, HttpLimits
from ..ops import tracing
from ..ops.cache import DecisionCache
from ..ops.config import ServerConfig
from ..ops.decision_log import DecisionLog
from ..ops.listen import ListenError, bind_tcp
from ..ops.metrics import Metrics
from ..ops.reload import CatalogReloader
from ..policy import Engine
from ..tokens import TokenConfig, Verifier
from ..tokens.verifier import Verification, check_available
from .admission import Admission, channelz_outstanding, create_server
from .handlers import GenericOnly, add_to_server
from .service import SERVICE, ScopeService
from .tls import TlsFiles

__all__ = ["Server", "ServerConfig", "run"]

log = logging.getLogger(__name__)

SERVICE_NAME = SERVICE.full_name
HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"]


def _tcp_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


class Server:
    """A scopesvc gRPC server: its engine reference, decider, metrics and listeners."""

    def __init__(self, config: ServerConfig, engine: Engine, load_seconds: float = 0.0) -> None:
        config.validate()
        self.config = config
        self.ref = EngineRef(engine)
        self.metrics = Metrics()
        self.metrics.set_catalog(engine.catalog, load_seconds)
        self.cache = DecisionCache(config.cache_size, config.cache_ttl)
        self.metrics.cache_entries.set_function(lambda: len(self.cache))
        self.decision_log = (
            DecisionLog(config.decision_log, config.decision_log_sample, config.decision_log_max_bytes,
                        config.decision_log_hash_key, on_drop=self.metrics.decision_log_dropped.inc)
            if config.decision_log else None
        )
        self.tracing = tracing.start() if config.tracing else None
        self.decider = Decider(self.ref, self.cache, self.metrics, self.decision_log, config.dry_run, self.tracing)
        tokens = TokenConfig.from_server_config(config)
        self.verifier = Verifier(tokens, self.metrics) if tokens.enabled else None
        if self.verifier is not None and self.tracing is not None:
            self.verifier.observers.append(_trace_verification)
        self.reloader = (
            CatalogReloader(config.catalog, self.ref, self.metrics, config.reload_interval,
                            on_swap=lambda _engine: self.cache.clear())
            if config.catalog else None
        )
        self.health = health.aio.HealthServicer()
        self.tls = TlsFiles(config) if config.tls_cert else None  # before the gRPC server: may raise
        # gRPC listens with SO_REUSEPORT unless told not to, and a second server on the same port
        # would then share its connections: only the workers of one --workers server do that.
        options = [("grpc.max_receive_message_length", config.max_message_bytes),
                   ("grpc.max_send_message_length", config.max_message_bytes),
                   ("grpc.so_reuseport", 1 if config.reuse_port else 0)]
        self.admission: Admission | None = None
        if config.max_concurrent_rpcs:
            self.grpc, server_id = create_server(lambda: grpc.aio.server(options=options))
            self.admission = Admission(config.max_concurrent_rpcs, channelz_outstanding(server_id))
        else:
            self.grpc = grpc.aio.server(options=options)
        add_to_server(ScopeService(self.decider, self.verifier), self.grpc, SERVICE, self.metrics, self.admission,
                      tracing=self.tracing)
        self.gateway = GatewayConfig.from_server_config(config)
        add_to_server(ExtAuthzService(self.decider, self.gateway, self.verifier), self.grpc, EXT_AUTHZ_SERVICE,
                      self.metrics, self.admission, tracing=self.tracing, carrier=ExtAuthzService.trace_carrier)
        self.forward_auth: HttpFrontEnd | None = None
        if config.forward_auth_port:
            self.forward_auth = HttpFrontEnd("forward-auth", config.forward_auth_host, config.forward_auth_port,
                                             HttpLimits.from_server_config(config), config.grace)
            ForwardAuth(self.decider, self.gateway, verifier=self.verifier).install(self.forward_auth)
            if config.authzen:
                AuthzenRoutes(Authzen(self.decider, self.verifier), config.authzen_pdp_url).add_to(
                    self.forward_auth.add_route)
        add_to_server(self.health, self.grpc, HEALTH_SERVICE, self.metrics, self.admission, exempt=True)
        reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
            reflection.aio.ReflectionServicer(
                (SERVICE_NAME, EXT_AUTHZ_SERVICE.full_name, HEALTH_SERVICE.full_name, reflection.SERVICE_NAME)),
            GenericOnly(self.grpc),
        )
        self.port = 0
        self.metrics_port = 0
        self._tls_watch: asyncio.Task[None] | None = None

    def _listen_grpc(self) -> None:
        """Add the gRPC listeners; `ListenError` naming the one that cannot listen."""
        config = self.config
        if config.host:
            address = _tcp_address(config.host, config.port)
            if config.port and not config.reuse_port:
                bind_tcp("gRPC", config.host, config.port).close()  # a clear error before gRPC logs its own
            try:
                if self.tls is not None:
                    self.port = self.grpc.add_secure_port(address, self.tls.credentials)
                else:
                    self.port = self.grpc.add_insecure_port(address)
            except RuntimeError:
                self.port = 0
            if self.port == 0:
                raise ListenError(f"cannot listen on {address} (gRPC)")
        if config.uds:
            try:
                bound = self.grpc.add_insecure_port(f"unix:{config.uds}")
            except RuntimeError:
                bound = 0
            if bound == 0:
                raise ListenError(f"cannot listen on unix socket {config.uds} (gRPC)")

    async def start(self) -> None:
        """Listen on every port and serve; on `ListenError` nothing is left listening."""
        try:
            self._listen_grpc()
            await self.grpc.start()
            if self.config.metrics_port:
                try:
                    self.metrics_port = self.metrics.serve_http(self.config.metrics_host, self.config.metrics_port)
                except OSError as exc:
                    address = _tcp_address(self.config.metrics_host, self.config.metrics_port)
                    raise ListenError(f"cannot listen on {address} (metrics): {exc.strerror or exc}") from None
            if self.forward_auth is not None:
                await self.forward_auth.start()
        except BaseException:
            await self.grpc.stop(None)
            self.metrics.stop_http()
            if self.decision_log is not None:
                self.decision_log.close()
            await asyncio.to_thread(tracing.stop, self.tracing)
            raise
        if self.reloader is not None:
            self.reloader.start()
        if self.verifier is not None:
            await check_available(self.verifier)  # a failure is logged; requests retry it
        if self.tls is not None and self.config.reload_interval > 0:
            self._tls_watch = asyncio.get_running_loop().create_task(self._watch_tls(self.tls), name="tls-reload")
        for name in ("", SERVICE_NAME):  # readiness: listening with a catalog loaded
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        catalog = self.ref.engine.catalog
        listeners = [f"{'tls' if self.config.tls_cert else 'tcp'} {_tcp_address(self.config.host, self.port)}"
                     ] if self.config.host else []
        listeners += [f"unix {self.config.uds}"] if self.config.uds else []
        if self.forward_auth is not None:
            listeners.append(f"forward-auth{' and AuthZEN' if self.config.authzen else ''} "
                             f"http://{_tcp_address(self.config.forward_auth_host, self.forward_auth.port)}")
        if self.metrics_port:
            listeners.append(f"metrics http://{_tcp_address(self.config.metrics_host, self.metrics_port)}/metrics")
        log.info("serving catalog %s (%s) on %s%s%s", catalog.name, catalog.revision, ", ".join(listeners),
                 " in DRY-RUN mode: every request is allowed" if self.config.dry_run else "",
                 ", tracing on" if self.tracing is not None else "")

    async def _watch_tls(self, tls: TlsFiles) -> None:
        while True:
            await asyncio.sleep(self.config.reload_interval)
            tls.reload()

    async def reload(self, cause: str) -> bool:
        """Reload the catalog file and TLS files now (SIGHUP); True when a new catalog is serving."""
        if self.tls is not None:
            self.tls.reload(force=True)
        if self.verifier is not None:
            self.verifier.clear()
        if self.reloader is None:
            log.info("catalog reload (%s): serving the embedded catalog, nothing to reload", cause)
            return False
        return await self.reloader.reload(cause)

    async def stop(self) -> None:
        """NOT_SERVING first, then stop accepting and drain in-flight RPCs for up to `grace` seconds."""
        await self.health.enter_graceful_shutdown()
        # Keep accepting while health-checking clients and load balancers move to a peer: calls
        # still queued in the transport when the server stops accepting would be cancelled.
        await asyncio.sleep(self.config.drain_delay)
        await asyncio.gather(self.grpc.stop(self.config.grace),
                             *([self.forward_auth.stop()] if self.forward_auth is not None else []))
        if self.reloader is not None:
            await self.reloader.stop()
        if self._tls_watch is not None:
            self._tls_watch.cancel()
        self.metrics.stop_http()
        if self.verifier is not None:
            await self.verifier.close()
        if self.decision_log is not None:
            self.decision_log.close()
        await asyncio.to_thread(tracing.stop, self.tracing)


def raise_fd_limit() -> int:
    """Raise the soft limit on open files to the hard one (each HTTP connection is one); return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:  # an unlimited hard limit is above what the kernel takes
            log.debug("cannot raise the open-file limit from %d to %d: %s", soft, hard, exc)
    return soft


async def run(config: ServerConfig) -> None:
    """Serve until SIGTERM or SIGINT, then stop gracefully; reload the catalog on SIGHUP.

    The signal handlers are in place before the catalog is read and the server listens: a signal
    sent once its ports answer (a supervisor's SIGTERM, an operator's SIGHUP) is never the default
    one that kills it. SIGTERM while starting stops it as soon as it has started; SIGHUP while
    starting reloads once it has started (the catalog may have changed after it was read).
    """
    stop, started = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    reloads: set[asyncio.Task[bool]] = set()

    async def reload_once_started() -> bool:
        await started.wait()
        return await server.reload("SIGHUP")

    def on_sighup() -> None:
        task = loop.create_task(reload_once_started())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, on_sighup)
    raise_fd_limit()
    start = time.perf_counter()
    engine = Engine(catalog_files.load(config.catalog))
    server = Server(config, engine, time.perf_counter() - start)
    await server.start()
    # What starting made (modules, gRPC's and protobuf's descriptors, the catalog's engine: some 60,000
    # objects) lives as long as the process: out of the garbage collector's sight, its full passes,
    # which stop the event loop, look only at what connections and requests make (half as long under
    # an HTTP attack of thousands of connections). A catalog reload's engine is freed by reference
    # counting as before (an engine holds no reference cycles).
    gc.collect()
    gc.freeze()
    started.set()
    await stop.wait()
    log.info("stopping: NOT_SERVING, draining in-flight RPCs for up to %.1fs", config.grace)
    await server.stop()
    log.info("stopped")


def _trace_verification(verification: Verification, seconds: float) -> None:
    """A token verification (not a cache hit) as an event on the current span: its result and issuer only."""
    tracing.event("scopesvc.token.verification", {
        "scopesvc.token.result": verification.result, "scopesvc.token.issuer": verification.issuer,
        "scopesvc.token.method": verification.method, "scopesvc.token.seconds": seconds})
