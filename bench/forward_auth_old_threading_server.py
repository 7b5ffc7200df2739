"""BENCH BASELINE ONLY: the forward-auth server scopesvc shipped before aiohttp (http.server's
ThreadingHTTPServer, a thread per connection, decisions handed to the event loop), kept verbatim
but for its tracing hook so bench/forward_auth.py can measure the old server beside the new one.
Not part of scopesvc: never import it outside bench/.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
from email.message import Message
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from scopesvc.decider import Decider
from scopesvc.gateway.attributes import Answer, GatewayConfig, decide, token_from_header
from scopesvc.policy import RequestError, Token

log = logging.getLogger(__name__)

DENY_BODY_HEADER = "x-scopesvc-deny-body"
TIMEOUT = 10.0
_FORWARD_AUTH_STATUSES = (200, 401, 403)


class BadForwardRequest(ValueError):
    """The forward-auth request does not say clearly which request to decide."""


def original_request(headers: Message) -> tuple[str, str]:
    """The original (method, URI) from the forward-auth request headers; see the module docstring."""
    for name in ("x-original-method", "x-original-uri", "x-forwarded-method", "x-forwarded-uri"):
        if len(headers.get_all(name, ())) > 1:
            raise BadForwardRequest(f"{name} is sent more than once")
    original = (headers.get("x-original-method"), headers.get("x-original-uri"))
    forwarded = (headers.get("x-forwarded-method"), headers.get("x-forwarded-uri"))
    chosen = original if original != (None, None) else forwarded
    method, uri = chosen
    if not method or not uri:
        raise BadForwardRequest("send the original request as X-Original-Method and X-Original-URI "
                                "(or X-Forwarded-Method and X-Forwarded-Uri)")
    if chosen is original and forwarded != (None, None) and forwarded != original:
        raise BadForwardRequest("X-Original-* and X-Forwarded-* name different requests")
    return method, uri


class _Handler(BaseHTTPRequestHandler):
    server: ForwardAuthServer
    protocol_version = "HTTP/1.1"
    timeout = TIMEOUT
    server_version = "scopesvc"
    sys_version = ""

    def _decide(self) -> None:
        if self.headers.get("content-length", "0") != "0" or "transfer-encoding" in self.headers:
            self.close_connection = True  # the body is never read, so this connection cannot be reused
        try:
            method, uri = original_request(self.headers)
            if len(self.headers.get_all(self.server.config.scope_header, ())) > 1:
                raise BadForwardRequest(f"{self.server.config.scope_header} is sent more than once")
            scopes = self.headers.get(self.server.config.scope_header)
            token = None if scopes is None else token_from_header(scopes, self.server.config)
            answer = self.server.decide(token, method, uri, self.headers)
        except (BadForwardRequest, RequestError) as exc:
            self._send(HTTPStatus.BAD_REQUEST, (("content-type", "application/json"),),
                       json.dumps({"title": "Bad request", "message": str(exc)}, separators=(",", ":")))
            return
        except Exception:
            log.exception("internal error in forward-auth")
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, (), "")
            return
        self._answer(answer)

    def _answer(self, answer: Answer) -> None:
        headers = answer.headers
        if not answer.allowed:
            headers += ((DENY_BODY_HEADER, answer.body),)
        status = answer.status if answer.status in _FORWARD_AUTH_STATUSES else HTTPStatus.FORBIDDEN
        self._send(status, headers, answer.body)

    def _send(self, status: int, headers: tuple[tuple[str, str], ...], body: str) -> None:
        data = body.encode()
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _decide

    def log_message(self, format: str, *args: object) -> None:
        log.debug("forward-auth %s: " + format, self.address_string(), *args)


class ForwardAuthServer(ThreadingHTTPServer):
    """The forward-auth endpoint, answering through `decider` on its own threads."""

    daemon_threads = True

    def __init__(self, host: str, port: int, decider: Decider, config: GatewayConfig,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.decider = decider
        self.config = config
        self.loop = loop
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, port), _Handler)
        self._thread = threading.Thread(target=self.serve_forever, name="forward-auth", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def decide(self, token: Token | None, method: str, uri: str, headers: Message) -> Answer:
        """Decide on the event loop's thread and wait for the answer (bounded by TIMEOUT)."""

        async def on_loop() -> Answer:
            return decide(self.decider, token, method, uri, self.config, rpc="forward_auth", headers=headers)

        return asyncio.run_coroutine_threadsafe(on_loop(), self.loop).result(TIMEOUT)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting and close the socket (blocks until the serving loop has returned)."""
        self.shutdown()
        self.server_close()
        self._thread.join()
