"""Shared fixtures: the default catalog, its engine, and a real scopesvc gRPC server on loopback."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from scopesvc.catalog import files as catalog_files
from scopesvc.policy import Engine
from scopesvc.server.app import Server, ServerConfig
from scopesvc.v1 import scopesvc_pb2_grpc as pb_grpc

from .token_helpers import KeyServer, SigningKey

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "tests" / "data" / "calendly-scopes.json"  # see tests/data/README.md for its source


@pytest.fixture(scope="session")
def reference() -> dict:
    """The reference facts of the Calendly scope model, carried in tests/data."""
    return json.loads(REFERENCE.read_text())


@pytest.fixture(scope="session")
def engine() -> Engine:
    return Engine(catalog_files.load_default())


class RunningServer:
    """A scopesvc server on its own event loop in a background thread, on a loopback port."""

    def __init__(self, config: ServerConfig) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        engine = Engine(catalog_files.load(config.catalog))
        self.server: Server = self.call(self._make(config, engine))
        self.address = f"127.0.0.1:{self.server.port}"

    async def _make(self, config: ServerConfig, engine: Engine) -> Server:
        server = Server(config, engine)
        await server.start()
        return server

    def call(self, coro):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def close(self) -> None:
        self.call(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def server() -> Iterator[RunningServer]:
    running = RunningServer(ServerConfig(host="127.0.0.1", port=0, grace=1.0))
    yield running
    running.close()


@pytest.fixture(scope="session")
def channel(server: RunningServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.address) as ch:
        grpc.channel_ready_future(ch).result(timeout=10)
        yield ch


@pytest.fixture(scope="session")
def stub(channel: grpc.Channel) -> pb_grpc.ScopeServiceStub:
    return pb_grpc.ScopeServiceStub(channel)


@pytest.fixture(scope="module")
def key() -> SigningKey:
    """A module's ES256 signing key (a module may define its own)."""
    return SigningKey("k1", "ES256")


@pytest.fixture(scope="module")
def issuer(key: SigningKey) -> Iterator[KeyServer]:
    """Discovery, JWKS and introspection for `key` on loopback; the opaque token `opaque-good` is
    active with `users:read` (tests change the server while it runs)."""
    server = KeyServer(key)
    server.active["opaque-good"] = {"active": True, "scope": "users:read", "exp": int(time.time()) + 600}
    yield server
    server.close()
