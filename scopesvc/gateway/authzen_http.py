"""The AuthZEN Authorization API's HTTPS binding: routes on the HTTP front end, around authzen.py.

What the specification's "Transport" section asks, and how it is met here:
- requests are `POST` with `content-type: application/json`; another content type is 400;
- a decision, allow or deny, is always `200` with the JSON response; `400` is a request that
  cannot be read (bad JSON, wrong types, a body over the front end's size limit, a field the
  profile does not accept), with "an error message string" as its body (text/plain); `405` with
  `Allow` another method on an AuthZEN path; `500` is the server's own failure, logged, never a
  decision; `503` that a subject's bearer token cannot be verified now (no issuer's keys or
  introspection answer): the whole request, never a decision;
- `X-Request-ID`: when the request has one, every response to it carries the same value (and
  the decision log records it);
- `GET /.well-known/authzen-configuration` is the PDP metadata (`200`, `application/json`),
  naming the endpoints served here; `policy_decision_point` is `--authzen-pdp-url`, or the
  scheme and host the request was sent to.
With tracing on, each request is a SERVER span continuing the request's `traceparent`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ..policy import RequestError
from ..tokens import TokensUnavailable
from .authzen import ENDPOINTS, METADATA_PATH, Authzen

log = logging.getLogger(__name__)

REQUEST_ID = "X-Request-ID"
Body = Callable[[Any, dict[str, str]], Awaitable[dict[str, Any]]]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _text(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message, content_type="text/plain")


def _json(data: Any) -> web.Response:
    return web.Response(text=json.dumps(data, separators=(",", ":"), ensure_ascii=False),
                        content_type="application/json")


def _echo_request_id(request: web.Request, response: web.Response) -> web.Response:
    """The specification's request identification: the request's X-Request-ID, the same, on its response."""
    request_id = request.headers.get(REQUEST_ID)
    if request_id:
        response.headers[REQUEST_ID] = request_id
    return response


def _only(method: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """405 with `Allow` for any other method on an AuthZEN path (which the forward-auth fallback must not take)."""

    async def not_allowed(request: web.Request) -> web.StreamResponse:
        response = _text(405, f"{request.method} is not allowed here: use {method}")
        response.headers["Allow"] = method
        return _echo_request_id(request, response)

    return not_allowed


async def read_body(request: web.Request) -> Any:
    """The request's JSON value; `RequestError` for anything that is not one JSON document within the limits."""
    if request.content_type != "application/json":
        raise RequestError("content-type", f"must be application/json, not {request.content_type or 'absent'}")
    try:
        data = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise RequestError("request", "the body is larger than this server accepts (--http-max-body-bytes)") from None
    try:
        text = data.decode("utf-8")  # RFC 8259 8.1: JSON between systems is UTF-8 (json.loads would guess)
    except UnicodeDecodeError:
        raise RequestError("request", "the body is not UTF-8 JSON") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise RequestError("request", f"the body is not JSON: {exc}") from None
    except (ValueError, RecursionError) as exc:
        raise RequestError("request", f"the body is not usable JSON: {exc or 'nested too deeply'}") from None


class AuthzenRoutes:
    """The HTTP handlers of the AuthZEN API, to add to a front end with `add_to`."""

    def __init__(self, authzen: Authzen, pdp_url: str = "") -> None:
        self.authzen = authzen
        self.pdp_url = pdp_url
        self.tracing = authzen.decider.tracing

    def add_to(self, add_route: Callable[[str, str, Callable[[web.Request], Awaitable[web.StreamResponse]]], None]
               ) -> None:
        """Register every route with `add_route(method, path, handler)` (the HTTP front end's)."""
        bodies: dict[str, Body] = {
            "access_evaluation_endpoint": self.authzen.evaluation,
            "access_evaluations_endpoint": self.authzen.evaluations,
            "search_resource_endpoint": lambda body, _attributes: self.authzen.search_resource(body),
            "search_action_endpoint": lambda body, _attributes: self.authzen.search_action(body),
        }
        for name, path in ENDPOINTS.items():
            add_route("POST", path, self._handler(path, bodies[name]))
            add_route("*", path, _only("POST"))
        add_route("GET", METADATA_PATH, self._metadata)
        add_route("*", METADATA_PATH, _only("GET"))

    def _handler(self, route: str, body: Body) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            request_id = request.headers.get(REQUEST_ID, "")
            attributes = {"x-request-id": request_id} if request_id else {}
            if self.tracing is None:
                response = await self._answer(request, route, body, attributes)
            else:
                with self.tracing.server(f"POST {route}", request.headers, {
                        "http.request.method": "POST", "http.route": route, "scopesvc.front_end": "authzen"}) as span:
                    response = await self._answer(request, route, body, attributes)
                    span.set_attribute("http.response.status_code", response.status)
            return _echo_request_id(request, response)

        return handle

    @staticmethod
    async def _answer(request: web.Request, route: str, body: Body, attributes: dict[str, str]) -> web.Response:
        try:
            return _json(await body(await read_body(request), attributes))
        except RequestError as exc:
            return _text(400, str(exc))
        except TokensUnavailable as exc:
            log.warning("AuthZEN %s: %s", route, exc)
            return _text(503, "cannot verify the subject's token now: no usable keys at its issuer")
        except Exception:
            log.exception("internal error in AuthZEN %s", route)
            return _text(500, "internal error")

    async def _metadata(self, request: web.Request) -> web.StreamResponse:
        response = _json(self.authzen.metadata(self.pdp_url or f"{request.scheme}://{request.host}"))
        response.headers["Cache-Control"] = "max-age=300"
        return _echo_request_id(request, response)
