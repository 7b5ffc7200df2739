"""Assembling and running the gRPC server: scopesvc.v1, health and reflection.

The health service reports SERVING once a catalog is loaded; on SIGTERM or SIGINT it reports
NOT_SERVING first, then the server stops accepting and gives in-flight RPCs `grace` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from . import catalog_files
from .policy import Engine
from .service import EngineRef, ScopeService
from .v1 import scopesvc_pb2 as pb
from .v1 import scopesvc_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["ScopeService"].full_name


@dataclass
class ServerConfig:
    """How to run the server; `scopesvc serve --help` documents each field."""

    host: str = "127.0.0.1"
    port: int = 50051
    catalog: str = ""
    grace: float = 10.0


class Server:
    """A running scopesvc gRPC server."""

    def __init__(self, config: ServerConfig, engine: Engine) -> None:
        self.config = config
        self.ref = EngineRef(engine)
        self.health = health.aio.HealthServicer()
        self.grpc = grpc.aio.server()
        pb_grpc.add_ScopeServiceServicer_to_server(ScopeService(self.ref), self.grpc)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.grpc)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
            self.grpc,
        )
        self.port = self.grpc.add_insecure_port(f"{config.host}:{config.port}")
        if self.port == 0:
            raise OSError(f"cannot listen on {config.host}:{config.port}")

    async def set_serving(self, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in ("", SERVICE_NAME):
            await self.health.set(name, status)

    async def start(self) -> None:
        await self.grpc.start()
        await self.set_serving(True)
        log.info("serving catalog %s (%s) on %s:%d", self.ref.engine.catalog.name,
                 self.ref.engine.catalog.revision, self.config.host, self.port)

    async def stop(self) -> None:
        await self.set_serving(False)
        await self.grpc.stop(self.config.grace)


async def run(config: ServerConfig) -> None:
    """Serve until SIGTERM or SIGINT, then stop gracefully."""
    engine = Engine(catalog_files.load(config.catalog))
    server = Server(config, engine)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping: draining in-flight RPCs for up to %.1fs", config.grace)
    await server.stop()
