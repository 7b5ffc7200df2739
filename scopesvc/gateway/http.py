"""The project's HTTP front end: aiohttp's server on the gRPC server's event loop, with hard limits.

Every HTTP endpoint (forward-auth today) is a route of an `HttpFrontEnd`: one aiohttp application
on one listening socket, served by the same asyncio loop as grpc.aio, so a handler calls the
Decider directly (no threads) and may await (token verification, say). aiohttp because its
request parser is llhttp in C, run strictly, and the same package is the project's HTTP client;
bench/forward_auth.py measures it against uvicorn + httptools.

Add endpoints with `add_route(method, path, handler)` before `start()`; `fallback` answers every
path no route matches (forward-auth answers on any path, as gateways are configured to call it).
`reply`, `bad_request` and `read_json` are the answers and body reading every handler shares.

What a client cannot do here (each limit is a `scopesvc serve` option, see docs/operations.md):
- hold a connection without sending a request: the request line and headers must arrive in full
  within `header_timeout` seconds (75 to 100% of it, spread) of the connection opening or of the
  request's first byte,
  else 408 and the connection closes (slow-header attacks); idle keep-alive connections close
  after `keepalive_timeout`, and after `keepalive_requests` requests a response says close;
- open connections without bound: past `max_connections` a new connection gets 503 and is
  closed at once (a gateway's established keep-alive connections are not affected);
- send headers without bound: more than `max_header_bytes` before the end of the headers is 431,
  more than `max_headers` headers or a line over `max_field_bytes` is 400 (aiohttp's parser sees
  a connection's first request once its headers are complete, so an unfinished line counts
  towards `max_header_bytes` until then);
- make the server pay for a connection it has not been sent a request on: until the first
  request's headers are complete a connection is a few objects and its bytes, no parser or task;
- smuggle a request: aiohttp's parser is strict (duplicate or conflicting Content-Length,
  Content-Length with Transfer-Encoding, whitespace before a colon, obs-folded lines, bare LF):
  400 and the connection closes; a request body a handler leaves unread also closes it;
- fill the log: a bad request or a client that goes away is one debug line, not a traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import resource
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields, replace
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler

from ..ops.config import ServerConfig
from ..ops.listen import bind_tcp

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SERVER_NAME = "scopesvc"
FD_RESERVE = 256  # file descriptors kept for everything but HTTP connections

_REFUSED = b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
_TIMED_OUT = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
_TOO_LARGE = b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
_END_OF_HEADERS = b"\r\n\r\n"
_REASON_CHARS = 120  # of aiohttp's reason for a request it cannot parse (its first line)


@dataclass(frozen=True)
class HttpLimits:
    """The limits of every HTTP listener; the `http_*` options of `scopesvc serve` document each."""

    backlog: int = 4096
    max_connections: int = 4096
    header_timeout: float = 10.0
    keepalive_timeout: float = 120.0
    keepalive_requests: int = 1000
    max_header_bytes: int = 64 * 1024
    max_headers: int = 100
    max_field_bytes: int = 16 * 1024
    max_body_bytes: int = 1024 * 1024
    # Seconds an unread request body is still read (and dropped) after the answer, so closing the
    # connection does not reset it before the client has the answer.
    lingering_time: float = 2.0

    @classmethod
    def from_server_config(cls, config: ServerConfig) -> HttpLimits:
        """The `http_*` options of `scopesvc serve`, with the connection bound lowered, if needed, to
        leave `FD_RESERVE` file descriptors of the process's limit to everything else (gRPC, files)."""
        names = [f.name for f in fields(cls) if hasattr(config, "http_" + f.name)]
        limits = cls(**{name: getattr(config, "http_" + name) for name in names})
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if soft != resource.RLIM_INFINITY and limits.max_connections > soft - FD_RESERVE:
            fitting = max(1, soft - FD_RESERVE)
            log.warning("http_max_connections %d lowered to %d: the process may open %d files (ulimit -n)",
                        limits.max_connections, fitting, soft)
            limits = replace(limits, max_connections=fitting)
        return limits


class _QuietClientErrors(logging.LoggerAdapter):  # type: ignore[type-arg]
    """aiohttp's server log: what a client does wrong (a malformed request, a connection that goes
    away) is one debug line; anything else keeps its traceback, being the server's own fault."""

    def log(self, level: int, msg: object, *args: object, exc_info: Any = None, **kwargs: Any) -> None:
        exc = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1] if exc_info else None
        if isinstance(exc, (HttpProcessingError, ConnectionError, TimeoutError)):
            if not self.logger.isEnabledFor(logging.DEBUG):
                return  # an attack makes many: not even formatted
            self.logger.debug("%s: %s", str(msg) % args if args else msg, " ".join(str(exc).split()))
            return
        self.logger.log(level, msg, *args, exc_info=exc_info, **kwargs)


class _Protocol(RequestHandler):
    """aiohttp's protocol for one connection, whose answer to a request it cannot parse looks like
    the front end's: `Server: scopesvc` rather than Python's and aiohttp's versions, and a short JSON
    reason rather than the request's own bytes echoed back."""

    __slots__ = ()

    def handle_error(self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        super().handle_error(request, status, exc, message)  # logs it; raises if an answer has begun
        if status >= 500:
            title, reason = "Internal error", "the server failed to answer this request"
        else:
            title = "Bad request"
            reason = (message or "malformed HTTP request").split("\n", 1)[0].rstrip(": ")[:_REASON_CHARS]
        response = web.json_response({"title": title, "message": reason}, status=status,
                                     headers={"Server": SERVER_NAME})
        response.force_close()
        return response


# Where a connection is in its current request: waiting for one, reading its headers, being
# answered, or closing after a body the handler left unread.
_IDLE, _HEADERS, _BUSY, _CLOSING = range(4)


class _Connection(asyncio.Protocol):
    """One accepted connection: the limits aiohttp has no setting for, in front of its protocol.

    aiohttp's protocol for the connection (its parser, a task, timers: some 25 objects the garbage
    collector tracks) is made only once the first request's line and headers are complete; until
    then they are kept here as bytes. A connection that never completes them (a slow- or
    large-header attack, thousands at once) so costs this object, its transport and its bytes: the
    collector's full passes, which stop the event loop, stay short while it lasts.
    """

    __slots__ = ("eof", "front", "head", "header_bytes", "inner", "phase", "refused", "requests", "tail", "timer",
                 "transport")

    def __init__(self, front: HttpFrontEnd) -> None:
        self.front = front
        self.inner: RequestHandler | None = None
        self.head = bytearray()  # the first request's bytes, until its headers are complete
        self.transport: asyncio.Transport | None = None
        self.phase = _IDLE
        self.refused = False
        self.header_bytes = 0
        self.tail = b""
        self.timer: asyncio.TimerHandle | None = None
        self.requests = 0
        self.eof = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        front = self.front
        front.open_connections += 1
        if front.open_connections > front.limits.max_connections:
            self.refused = True
            front.refused_connections += 1
            self._answer_and_close(_REFUSED)
            return
        front.connections[transport] = self
        self._begin_request()

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return
        if self.phase == _IDLE and data:
            self._begin_request()
        if self.phase == _HEADERS and not self._count_headers(data):
            return
        if self.inner is None:
            if self.phase != _BUSY:  # the headers go on (or the connection is closing)
                if self.phase == _HEADERS:
                    self.head += data
                return
            if self.head:
                data, self.head = bytes(self.head + data), bytearray()
            self.inner = self.front.protocol()
            self.inner.connection_made(self.transport)  # type: ignore[arg-type]
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        """A client that stops sending (half-close) after a whole request still gets the answer."""
        if self.refused or self.phase in (_IDLE, _HEADERS):
            return None  # nothing to answer: close
        self.eof = True
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.front.open_connections -= 1
        self._stop_timer()
        if self.refused:
            return
        self.front.connections.pop(self.transport, None)
        if self.inner is not None:
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()

    def close_unanswered(self) -> None:
        """Close the connection if no request on it reached aiohttp (which closes the others on stop)."""
        if self.inner is None and self.transport is not None:
            self.transport.close()

    def _begin_request(self) -> None:
        self.phase = _HEADERS
        self.header_bytes = 0
        self.tail = b""
        self._stop_timer()
        # Spread over the last quarter of the timeout: connections an attacker opened together do not
        # all time out (and come back) in the same instant, which would stall everything else.
        timeout = self.front.limits.header_timeout * (1.0 - random.random() / 4)
        self.timer = asyncio.get_running_loop().call_later(timeout, self._headers_late)

    def _count_headers(self, data: bytes) -> bool:
        """Count header bytes up to the blank line; False when the connection was closed for too many."""
        if not self.header_bytes:
            data = data.lstrip(b"\r\n")  # empty lines before a request line are allowed (RFC 9112 2.2)
        seen = self.tail + data
        end = seen.find(_END_OF_HEADERS)
        self.header_bytes += (len(data) if end < 0 else end + len(_END_OF_HEADERS) - len(self.tail))
        if self.header_bytes > self.front.limits.max_header_bytes:
            self._answer_and_close(_TOO_LARGE)
            return False
        if end < 0:
            self.tail = seen[-3:]
        else:
            self.headers_complete()
        return True

    def headers_complete(self) -> None:
        self.phase = _BUSY
        self._stop_timer()

    def answered(self, request: web.BaseRequest, response: web.StreamResponse) -> None:
        """The response to `request` is about to be sent: apply the keep-alive limits."""
        self.requests += 1
        if not request.content.is_eof():
            response.force_close()  # the rest of the body is not a request: never parse it as one
            self.phase = _CLOSING
            return
        if self.eof or self.requests >= self.front.limits.keepalive_requests:
            response.force_close()
        self.phase = _IDLE

    def _headers_late(self) -> None:
        self.timer = None
        if self.phase == _HEADERS:
            self.front.header_timeouts += 1
            self._answer_and_close(_TIMED_OUT)

    def _answer_and_close(self, answer: bytes) -> None:
        self.phase = _CLOSING
        self._stop_timer()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(answer)
            self.transport.close()

    def _stop_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


def reply(status: int, headers: tuple[tuple[str, str], ...] = (), body: str = "") -> web.Response:
    """A response with exactly these headers (aiohttp adds no content type of its own)."""
    response = web.Response(status=status, body=body.encode())
    for name, value in headers:
        response.headers.add(name, value)
    if not any(name.lower() == "content-type" for name, _ in headers):
        response.headers.popall("Content-Type", None)
    return response


def bad_request(message: str) -> web.Response:
    """400 with a JSON reason, for a request that cannot be decided as sent."""
    return reply(400, (("content-type", "application/json"),),
                 json.dumps({"title": "Bad request", "message": message}, separators=(",", ":")))


async def read_json(request: web.Request) -> Any:
    """The request's JSON body; `web.HTTPBadRequest` (400) when it is not JSON, 413 when too large."""
    try:
        return json.loads(await request.read())
    except (ValueError, UnicodeDecodeError) as exc:
        raise web.HTTPBadRequest(text=f"the body is not JSON: {exc}") from None


class HttpFrontEnd:
    """One HTTP listener: an aiohttp application with the project's limits, on the running loop."""

    def __init__(self, name: str, host: str, port: int, limits: HttpLimits = HttpLimits(), grace: float = 10.0) -> None:
        self.name = name
        self.grace = grace
        self.host = host
        self.requested_port = port
        self.limits = limits
        self.app = web.Application(client_max_size=limits.max_body_bytes, middlewares=[self._middleware])
        self.app.on_response_prepare.append(self._on_response_prepare)
        self.fallback: Handler | None = None
        self.connections: dict[asyncio.BaseTransport, _Connection] = {}
        self.open_connections = 0
        self.refused_connections = 0
        self.header_timeouts = 0
        self.port = 0
        self._runner: web.AppRunner | None = None
        self.handler: web.Server | None = None  # aiohttp's server, which each connection's protocol reports to
        # What aiohttp's server, and each connection's protocol made like it (`protocol`), is made with.
        self._protocol_options: dict[str, Any] = {
            "access_log": None, "logger": _QuietClientErrors(logging.getLogger("aiohttp.server")),
            "keepalive_timeout": limits.keepalive_timeout, "max_line_size": limits.max_field_bytes,
            "max_field_size": limits.max_field_bytes, "max_headers": limits.max_headers,
            "lingering_time": limits.lingering_time,
        }
        self._listener: asyncio.Server | None = None

    def add_route(self, method: str, path: str, handler: Handler) -> None:
        """Answer `method` (or "*") on `path` (aiohttp's path syntax) with `handler`."""
        self.app.router.add_route(method, path, handler)

    async def start(self) -> None:
        """Bind (never sharing the port with another process), then serve; `ListenError` if it cannot bind."""
        if self.fallback is not None:
            self.app.router.add_route("*", "/{path:.*}", self.fallback)
        sock = bind_tcp(self.name, self.host, self.requested_port)
        self.port = int(sock.getsockname()[1])
        self._runner = web.AppRunner(self.app, shutdown_timeout=self.grace, **self._protocol_options)
        await self._runner.setup()
        self.handler = self._runner.server
        self._listener = await asyncio.get_running_loop().create_server(
            lambda: _Connection(self), sock=sock, backlog=self.limits.backlog)

    def protocol(self) -> RequestHandler:
        """aiohttp's protocol for one connection, as its server would make it (`_Protocol`)."""
        assert self.handler is not None  # set before the listener accepts
        return _Protocol(self.handler, loop=asyncio.get_running_loop(), **self._protocol_options)

    async def stop(self) -> None:
        """Stop accepting, close idle connections, give requests being answered `grace` seconds."""
        if self._listener is not None:
            self._listener.close()
        for connection in list(self.connections.values()):
            connection.close_unanswered()
        if self._runner is not None:
            await self._runner.cleanup()

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        connection = self.connections.get(request.transport)  # type: ignore[arg-type]
        if connection is not None:
            connection.headers_complete()
        return await handler(request)

    async def _on_response_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        response.headers["Server"] = SERVER_NAME
        connection = self.connections.get(request.transport)  # type: ignore[arg-type]
        if connection is not None:
            connection.answered(request, response)

