"""An issuer's signing keys: found by discovery, fetched without blocking the loop, refreshed within bounds.

- Discovery: `{issuer}/.well-known/openid-configuration`, then RFC 8414's
  `/.well-known/oauth-authorization-server` (inserted before the issuer's path); the document's
  `issuer` must be the configured one (RFC 8414 section 3.3).
- Refresh: a key set is used until `Cache-Control: max-age` says (clamped to
  [refresh_min, refresh_max]; `refresh_default` without one), then fetched again by the first
  request that needs it; concurrent requests share that one fetch.
- Unknown `kid`: one refetch, at most once per `refresh_min` whatever the number of kids asked
  for, so a flood of random kids cannot become a flood of fetches.
- Outage: the last good key set keeps serving for `grace` seconds past its due time; after
  that (or before any fetch succeeded) `TokensUnavailable`: the service's own failure.
- A local JWKS file is read like the catalog: again every `file_interval` seconds, a bad file
  leaving the last good keys serving (no grace bound: an operator's file does not expire).
- Symmetric (`oct`) keys in a JWKS are never used: HMAC is only for an explicitly configured secret.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import jwt

from ..ops.metrics import Metrics
from .config import IssuerConfig, TokenConfig
from .errors import TokensUnavailable

log = logging.getLogger(__name__)

MAX_DOCUMENT_BYTES = 1024 * 1024
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:,|$)", re.IGNORECASE)


class FetchError(Exception):
    """A key set or metadata document could not be fetched or read."""


def max_age(cache_control: str) -> float | None:
    """The `max-age` of a Cache-Control header (None without one, or with no-store/no-cache)."""
    lowered = cache_control.lower()
    if "no-store" in lowered or "no-cache" in lowered:
        return 0.0
    match = _MAX_AGE.search(cache_control)
    return float(match.group(1)) if match else None


async def get_json(session: aiohttp.ClientSession, url: str, timeout: float) -> tuple[dict[str, Any], float | None]:
    """GET a JSON object (at most MAX_DOCUMENT_BYTES): (document, max-age)."""
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout), allow_redirects=False,
                               headers={"accept": "application/json"}) as response:
            if response.status != 200:
                raise FetchError(f"{url}: HTTP {response.status}")
            body = await response.content.read(MAX_DOCUMENT_BYTES + 1)
            if len(body) > MAX_DOCUMENT_BYTES:
                raise FetchError(f"{url}: larger than {MAX_DOCUMENT_BYTES} bytes")
            age = max_age(response.headers.get("cache-control", ""))
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise FetchError(f"{url}: {exc.__class__.__name__}: {exc}") from None
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise FetchError(f"{url}: not JSON") from None
    if not isinstance(document, dict):
        raise FetchError(f"{url}: not a JSON object")
    return document, age


def metadata_urls(issuer: str) -> list[str]:
    """Where the issuer's metadata may be: OpenID Connect discovery, then RFC 8414."""
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    return [
        issuer.rstrip("/") + "/.well-known/openid-configuration",
        urlunsplit((parts.scheme, parts.netloc, "/.well-known/oauth-authorization-server" + path, "", "")),
    ]


async def discover(session: aiohttp.ClientSession, issuer: str, timeout: float) -> dict[str, Any]:
    """The issuer's metadata document; its `issuer` must be the configured one."""
    errors = []
    for url in metadata_urls(issuer):
        try:
            document, _age = await get_json(session, url, timeout)
        except FetchError as exc:
            errors.append(str(exc))
            continue
        if document.get("issuer") != issuer:
            raise FetchError(f"{url}: names issuer {document.get('issuer')!r}, not {issuer!r}")
        return document
    raise FetchError("no metadata: " + "; ".join(errors))


def read_key_set(document: dict[str, Any]) -> dict[str | None, list[jwt.PyJWK]]:
    """Usable signature keys by kid (None for keys without one); `oct` and encryption keys are left out."""
    entries = document.get("keys")
    if not isinstance(entries, list):
        raise FetchError("a JWKS needs a 'keys' list")
    keys: dict[str | None, list[jwt.PyJWK]] = {}
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("kty") == "oct" or entry.get("use", "sig") != "sig":
            continue
        try:
            key = jwt.PyJWK(entry)
        except jwt.PyJWTError:
            continue  # an unusable key (unknown kty or curve) does not spoil the others
        kid = entry.get("kid")
        keys.setdefault(kid if isinstance(kid, str) else None, []).append(key)
    if not keys:
        raise FetchError("the JWKS holds no usable signature key")
    return keys


class KeySet:
    """One issuer's public keys and the schedule on which they are fetched."""

    def __init__(self, issuer: IssuerConfig, config: TokenConfig, metrics: Metrics,
                 session: Callable[[], aiohttp.ClientSession], on_change: Callable[[], None]) -> None:
        self.issuer = issuer
        self.config = config
        self.metrics = metrics
        self.session = session
        self.on_change = on_change
        self.metadata: dict[str, Any] | None = None
        self._keys: dict[str | None, list[jwt.PyJWK]] | None = None
        self._document: Any = None
        self._due = 0.0  # monotonic time the keys are to be fetched again
        self._usable_until = 0.0  # monotonic time past which the last good keys are no longer served
        self._attempted = -math.inf  # monotonic time of the last fetch attempt
        self.fetched_at = 0.0  # wall-clock time of the last good fetch (for the age metric)
        self._inflight: asyncio.Future[None] | None = None
        label = issuer.issuer
        metrics.jwks_age.labels(label).set_function(lambda: time.time() - self.fetched_at if self.fetched_at else 0)

    def usable(self, now: float) -> bool:
        return self._keys is not None and now <= self._usable_until

    def find(self, kid: str | None, alg: str) -> jwt.PyJWK | None:
        """A key of this kid whose algorithm is `alg`; with no kid, the only key of that algorithm."""
        if self._keys is None:
            return None
        if kid is None:
            candidates = [key for keys in self._keys.values() for key in keys if key.algorithm_name == alg]
            return candidates[0] if len(candidates) == 1 else None
        return next((key for key in self._keys.get(kid, ()) if key.algorithm_name == alg), None)

    def find_now(self, kid: str | None, alg: str) -> jwt.PyJWK | None:
        """The key when it can be had without I/O (keys fresh and holding it); else None."""
        if time.monotonic() >= self._due:
            return None
        return self.find(kid, alg)

    async def key(self, kid: str | None, alg: str) -> jwt.PyJWK | None:
        """The key for a token's kid and alg; None when the issuer has no such key (after at most one refetch).

        Raises `TokensUnavailable` when there is no usable key set at all.
        """
        now = time.monotonic()
        if now >= self._due:
            await self.refresh()
        now = time.monotonic()
        if not self.usable(now):
            raise TokensUnavailable(f"no usable key set for issuer {self.issuer.issuer}")
        key = self.find(kid, alg)
        # A fetch under way (say, for the same new kid) is shared; else at most one per refresh_min.
        if key is None and (self._inflight is not None or now - self._attempted >= self.config.refresh_min):
            await self.refresh()
            key = self.find(kid, alg)
        return key

    async def refresh(self) -> None:
        """Fetch now, sharing a fetch already under way."""
        if self._inflight is None:
            self._inflight = asyncio.get_running_loop().create_future()
            try:
                await self._fetch()
            finally:
                self._inflight.set_result(None)
                self._inflight = None
        else:
            await asyncio.shield(self._inflight)

    async def _fetch(self) -> None:
        now = time.monotonic()
        self._attempted = now
        label = self.issuer.issuer
        try:
            document, age = await self._source()
            keys = read_key_set(document)
        except FetchError as exc:
            self.metrics.jwks_fetches.labels(label, "error").inc()
            self._due = now + self.config.refresh_min  # retry no sooner: a failing source is not hammered
            if self.usable(now):
                log.warning("key set of %s: %s; serving the last good keys (for %.0fs more at most)",
                            label, exc, self._usable_until - now)
            else:
                log.error("key set of %s: %s; no usable keys", label, exc)
            return
        self.metrics.jwks_fetches.labels(label, "ok").inc()
        config = self.config
        if self.issuer.jwks_file:
            ttl = config.file_interval if config.file_interval > 0 else math.inf
            self._usable_until = math.inf
        else:
            ttl = min(max(config.refresh_default if age is None else age, config.refresh_min), config.refresh_max)
            self._usable_until = now + ttl + config.grace
        self._due = now + ttl
        self.fetched_at = time.time()
        if document.get("keys") != self._document:
            changed = self._keys is not None
            self._keys, self._document = keys, document.get("keys")
            if changed:
                log.info("key set of %s changed: %d key(s)", label, sum(map(len, keys.values())))
                self.on_change()

    async def _source(self) -> tuple[dict[str, Any], float | None]:
        issuer, timeout = self.issuer, self.config.fetch_timeout
        if issuer.jwks_file:
            return await asyncio.to_thread(_read_file, issuer.jwks_file), None
        uri = issuer.jwks_uri
        if not uri:
            if self.metadata is None:
                self.metadata = await discover(self.session(), issuer.issuer, timeout)
            uri = self.metadata.get("jwks_uri", "")
            if not isinstance(uri, str) or not uri:
                raise FetchError(f"the metadata of {issuer.issuer} names no jwks_uri")
        return await get_json(self.session(), uri, timeout)


def _read_file(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            document = json.loads(handle.read(MAX_DOCUMENT_BYTES + 1))
    except OSError as exc:
        raise FetchError(f"{path}: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError):
        raise FetchError(f"{path}: not JSON") from None
    if not isinstance(document, dict):
        raise FetchError(f"{path}: not a JSON object")
    return document
