"""gRPC server TLS from mounted PEM files, re-read when they change (certificate rotation).

gRPC asks for a new certificate configuration at each handshake; a reload (SIGHUP, or a change
seen by the periodic check) leaves the new one for the next handshake to pick up, so
connections already open keep theirs. A client CA turns on mutual TLS; whether client
certificates are required is fixed at start.
"""

from __future__ import annotations

import logging
import threading

import grpc

from ..ops.config import ConfigError, ServerConfig
from ..ops.reload import fingerprint

log = logging.getLogger(__name__)


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read {path}: {exc.strerror or exc}") from None


class TlsFiles:
    """The server's certificate, key and optional client CA, and credentials that follow them."""

    def __init__(self, config: ServerConfig) -> None:
        self._paths = {"tls_cert": config.tls_cert, "tls_key": config.tls_key, "tls_client_ca": config.tls_client_ca}
        self._lock = threading.Lock()
        self._pending: grpc.ServerCertificateConfiguration | None = None
        self._seen = self._fingerprints()
        self.credentials = grpc.dynamic_ssl_server_credentials(
            self._configuration(), self._fetch, require_client_authentication=bool(config.tls_client_ca))

    def _fingerprints(self) -> tuple[object, ...]:
        return tuple(fingerprint(path) for path in self._paths.values() if path)

    def _configuration(self) -> grpc.ServerCertificateConfiguration:
        files = {name: _read(path, name) for name, path in self._paths.items() if path}
        return grpc.ssl_server_certificate_configuration(
            [(files["tls_key"], files["tls_cert"])], root_certificates=files.get("tls_client_ca"))

    def _fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """Called by gRPC before each handshake: the new configuration once, else None (no change)."""
        with self._lock:
            pending, self._pending = self._pending, None
        return pending

    def reload(self, force: bool = False) -> bool:
        """Re-read the files when they changed (or when `force`); True when new ones will be used."""
        seen = self._fingerprints()
        if not force and seen == self._seen:
            return False
        self._seen = seen
        try:
            configuration = self._configuration()
        except ConfigError as exc:
            log.error("TLS files reload rejected, the previous certificate stays in use: %s", exc)
            return False
        with self._lock:
            self._pending = configuration
        log.info("TLS files reloaded: new connections use them")
        return True
