"""Keys generated for the tests and a real HTTP authorization-server stand-in on loopback.

`KeyServer` is an aiohttp server on its own thread serving OpenID discovery, a JWKS (whose
keys, Cache-Control and failures a test changes while it runs) and an RFC 7662 introspection
endpoint; it counts what it was asked. The oidc-provider end-to-end tests use a certified
provider instead; these exercise the edge cases a real provider cannot be made to produce.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec, rsa

AUDIENCE = "https://api.example.test"


class SigningKey:
    """A generated private key with its public JWK."""

    def __init__(self, kid: str, alg: str = "RS256") -> None:
        self.kid, self.alg = kid, alg
        if alg.startswith("ES"):
            self.private: Any = ec.generate_private_key(ec.SECP256R1())
            algorithm: Any = jwt.algorithms.ECAlgorithm
        else:
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            algorithm = jwt.algorithms.RSAAlgorithm
        self.jwk = json.loads(algorithm.to_jwk(self.private.public_key()))
        self.jwk |= {"kid": kid, "alg": alg, "use": "sig"}

    def sign(self, claims: dict[str, Any], *, headers: dict[str, Any] | None = None, kid: str | None = "") -> str:
        extra = {"kid": self.kid if kid == "" else kid} if kid is not None else {}
        return jwt.encode(claims, self.private, algorithm=self.alg, headers=extra | (headers or {}))


def claims(issuer: str, *, scope: str = "users:read", lifetime: float = 300, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": issuer, "aud": AUDIENCE, "sub": "user-1", "client_id": "app-1", "iat": now,
            "exp": now + lifetime, "scope": scope} | extra


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class KeyServer:
    """An aiohttp server on loopback: discovery, JWKS and introspection, changeable while running."""

    def __init__(self, *keys: SigningKey) -> None:
        self.keys = list(keys)
        self.extra_jwks: list[dict[str, Any]] = []
        self.cache_control = "max-age=300"
        self.failing = False
        self.fetches = 0
        self.introspections: list[dict[str, Any]] = []
        self.active: dict[str, dict[str, Any]] = {}  # opaque token -> its introspection answer
        self.client = ("scopesvc", "s3cret")
        self.oidc = True
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        self.issuer = f"http://127.0.0.1:{self.port}"

    async def _start(self) -> int:
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self._oidc)
        app.router.add_get("/.well-known/oauth-authorization-server", self._metadata)
        app.router.add_get("/jwks", self._jwks)
        app.router.add_post("/introspect", self._introspect)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        return int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]

    def metadata(self) -> dict[str, Any]:
        return {"issuer": self.issuer, "jwks_uri": f"{self.issuer}/jwks",
                "introspection_endpoint": f"{self.issuer}/introspect"}

    async def _oidc(self, request: web.Request) -> web.Response:
        if not self.oidc:
            raise web.HTTPNotFound()
        return web.json_response(self.metadata())

    async def _metadata(self, request: web.Request) -> web.Response:
        return web.json_response(self.metadata())

    async def _jwks(self, request: web.Request) -> web.Response:
        self.fetches += 1
        if self.failing:
            raise web.HTTPServiceUnavailable()
        return web.json_response({"keys": [key.jwk for key in self.keys] + self.extra_jwks},
                                 headers={"cache-control": self.cache_control})

    async def _introspect(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        self.introspections.append({"form": form, "authorization": request.headers.get("authorization", "")})
        if self.failing:
            raise web.HTTPServiceUnavailable()
        basic = "Basic " + base64.b64encode(f"{self.client[0]}:{self.client[1]}".encode()).decode()
        posted = (form.get("client_id"), form.get("client_secret")) == self.client
        if request.headers.get("authorization") != basic and not posted:
            return web.json_response({"error": "invalid_client"}, status=401)
        return web.json_response(self.active.get(str(form.get("token")), {"active": False}))

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
