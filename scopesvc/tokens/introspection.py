"""RFC 7662 token introspection: ask the issuer whether an opaque token is active, and what it grants.

The client authenticates with `client_secret_basic` (RFC 6749 section 2.3.1: form-encoded id
and secret in HTTP Basic) or `client_secret_post`. A network failure, a timeout or an answer
that is not an RFC 7662 response is `TokensUnavailable`: the service's own failure, never an
allow. The token itself is sent only to the configured endpoint and never logged.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any
from urllib.parse import quote

import aiohttp

from ..ops.metrics import Metrics
from .config import DISCOVER, IssuerConfig
from .errors import TokensUnavailable
from .keys import MAX_DOCUMENT_BYTES, FetchError, KeySet, discover


class Introspector:
    """Introspects opaque tokens at one issuer's endpoint."""

    def __init__(self, issuer: IssuerConfig, keys: KeySet, timeout: float, metrics: Metrics) -> None:
        self.issuer = issuer
        self.keys = keys  # holds the issuer's metadata once discovered
        self.timeout = timeout
        self.metrics = metrics
        self._histogram = metrics.introspection_seconds.labels(issuer.issuer)

    async def endpoint(self, session: aiohttp.ClientSession) -> str:
        configured = self.issuer.introspection_endpoint
        if configured != DISCOVER:
            return configured
        if self.keys.metadata is None:
            try:
                self.keys.metadata = await discover(session, self.issuer.issuer, self.timeout)
            except FetchError as exc:
                raise TokensUnavailable(f"introspection endpoint of {self.issuer.issuer}: {exc}") from None
        url = self.keys.metadata.get("introspection_endpoint")
        if not isinstance(url, str) or not url:
            raise TokensUnavailable(f"the metadata of {self.issuer.issuer} names no introspection_endpoint")
        return url

    async def introspect(self, session: aiohttp.ClientSession, token: str) -> dict[str, Any]:
        """The introspection response (`active` is a bool in it); raises TokensUnavailable."""
        issuer = self.issuer
        form = {"token": token, "token_type_hint": "access_token"}
        headers = {"accept": "application/json"}
        if issuer.auth_method == "client_secret_post":
            form |= {"client_id": issuer.client_id, "client_secret": issuer.client_secret}
        else:  # RFC 6749 section 2.3.1: each part form-urlencoded before Basic
            basic = f"{quote(issuer.client_id, safe='')}:{quote(issuer.client_secret, safe='')}"
            headers["authorization"] = "Basic " + base64.b64encode(basic.encode()).decode()
        url = await self.endpoint(session)
        start = time.perf_counter()
        try:
            async with session.post(url, data=form, allow_redirects=False, headers=headers,
                                    timeout=aiohttp.ClientTimeout(total=self.timeout)) as response:
                body = await response.content.read(MAX_DOCUMENT_BYTES + 1)
                status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise TokensUnavailable(f"introspection at {url}: {exc.__class__.__name__}") from None
        finally:
            self._histogram.observe(time.perf_counter() - start)
        if status != 200:
            raise TokensUnavailable(f"introspection at {url}: HTTP {status}")
        try:
            answer = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            answer = None
        if not isinstance(answer, dict) or not isinstance(answer.get("active"), bool):
            raise TokensUnavailable(f"introspection at {url}: not an RFC 7662 response")
        return answer
