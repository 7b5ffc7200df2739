"""`scopesvc serve` configuration: one dataclass, read from flags, environment and a YAML file.

Each `ServerConfig` field is one option. Its flag is `--field-name`, its environment variable
`SCOPESVC_FIELD_NAME`, its config-file key `field_name` (or `field-name`). Precedence: flags >
environment > config file > defaults. To add an option, add a field with `help` metadata (and
`choices` when it has a fixed set of values); flag, variable, file key and `--help` follow.
A field's `serve` metadata overrides its default for `scopesvc serve` only (the dataclass
default is what an embedding program gets, e.g. no metrics listener).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

ENV_PREFIX = "SCOPESVC_"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class ConfigError(ValueError):
    """An option has a bad value; the message names the option and where it came from."""


def _opt(default: Any, help: str, **extra: Any) -> Any:
    return field(default=default, metadata={"help": help, **extra})


@dataclass
class ServerConfig:
    """How to run the server; `scopesvc serve --help` documents each field."""

    host: str = _opt("127.0.0.1", "gRPC TCP bind address (0.0.0.0 or :: for all; empty: no TCP listener)")
    port: int = _opt(50051, "gRPC TCP port (0 picks a free one)")
    workers: int = _opt(1, "server processes sharing the port via SO_REUSEPORT (Linux); worker i serves "
                        "metrics on metrics_port + i")
    reuse_port: bool = _opt(False, "share the gRPC port with other processes that set this too (--workers sets it "
                            "for its workers); off, a port another process holds fails the start")
    uds: str = _opt("", "also listen on this Unix domain socket path (plaintext; protect it with file permissions)")
    catalog: str = _opt("", "catalog file (YAML or JSON); default: the embedded Calendly API v2 catalog")
    reload_interval: float = _opt(
        2.0, "seconds between checks of the catalog file for changes (0: only on SIGHUP)")
    metrics_host: str = _opt("127.0.0.1", "Prometheus metrics HTTP bind address")
    metrics_port: int = _opt(0, "Prometheus metrics HTTP port (0 disables)", serve=9464)
    tls_cert: str = _opt("", "PEM server certificate chain for gRPC over TCP (enables TLS; needs --tls-key)")
    tls_key: str = _opt("", "PEM private key of --tls-cert")
    tls_client_ca: str = _opt("", "PEM CA bundle; clients must present a certificate it signed (mutual TLS)")
    cache_size: int = _opt(10000, "decisions kept in the cache (0 disables caching)")
    cache_ttl: float = _opt(60.0, "seconds a cached decision lives")
    decision_log: str = _opt("", "write a JSON line per decision to this file, or '-' for stdout (empty: off)")
    decision_log_sample: float = _opt(1.0, "fraction of allowed decisions logged, 0..1 (denials are always logged)")
    decision_log_max_bytes: int = _opt(
        100 * 1024 * 1024, "rotate the decision log file at this size, keeping one previous file")
    decision_log_hash_key: str = _opt(
        "", "key for the hashes that stand in for identities in the decision log (set it to make them unguessable)")
    dry_run: bool = _opt(False, "decide, log and measure as usual, but allow every request (shadow mode)")
    forward_auth_host: str = _opt("127.0.0.1", "HTTP forward-auth bind address (NGINX auth_request, Traefik ForwardAuth)")
    forward_auth_port: int = _opt(0, "HTTP forward-auth port (0 disables)")
    http_backlog: int = _opt(4096, "listen backlog of the HTTP listeners (the kernel caps it at net.core.somaxconn)")
    http_max_connections: int = _opt(4096, "open HTTP connections per listener; a new one beyond gets 503 and is "
                                     "closed (lowered to fit the process's file descriptor limit)")
    http_header_timeout: float = _opt(10.0, "seconds a request's line and headers have to arrive in full, from the "
                                      "connection opening or the request's first byte (else 408)")
    http_keepalive_timeout: float = _opt(120.0, "seconds an idle HTTP keep-alive connection is kept (longer than "
                                         "the gateways' own: NGINX 60, Traefik 90)")
    http_keepalive_requests: int = _opt(1000, "requests per HTTP connection; the last answer says close")
    http_max_header_bytes: int = _opt(64 * 1024, "bytes of request line and headers per HTTP request (else 431)")
    http_max_headers: int = _opt(100, "headers per HTTP request (else 400)")
    http_max_field_bytes: int = _opt(16 * 1024, "bytes of the request line, and of one header, per HTTP request "
                                     "(else 400)")
    http_max_body_bytes: int = _opt(1024 * 1024, "bytes of an HTTP request body an endpoint reads (else 413)")
    authzen: bool = _opt(False, "also serve the OpenID AuthZEN Authorization API 1.0 (evaluation, evaluations, "
                         "search, metadata) on the forward-auth port")
    authzen_pdp_url: str = _opt("", "policy_decision_point of the AuthZEN metadata document, e.g. "
                                "https://pdp.example.com (default: the scheme and host each request was sent to)")
    scope_source: str = _opt("jwt-metadata", "where ext_authz and forward-auth take the token's scopes from: the "
                             "Authorization: Bearer token, verified here against the --jwt-issuer(s) (bearer); the "
                             "jwt_authn payload in metadata; the verified payload in --jwt-payload-header; or the "
                             "trusted --scope-header", choices=("jwt-metadata", "jwt-payload-header", "header", "bearer"))
    jwt_metadata_namespace: str = _opt("envoy.filters.http.jwt_authn",
                                       "metadata namespace of the verified JWT payload (ext_authz)")
    jwt_payload_key: str = _opt("jwt_payload", "key of the payload in that namespace (jwt_authn payload_in_metadata)")
    jwt_payload_header: str = _opt("x-jwt-payload", "header with the verified JWT payload, base64url JSON "
                                   "(jwt_authn forward_payload_header, Istio outputPayloadToHeader)")
    scope_header: str = _opt("x-scopesvc-scopes", "trusted request header with the token's scopes, set by an earlier "
                             "authentication layer (forward-auth always; ext_authz with --scope-source header)")
    jwt_issuer: str = _opt("", "trusted token issuer URL (its iss); bearer tokens are verified against it")
    jwt_audience: str = _opt("", "audience(s) the --jwt-issuer's tokens must name (space/comma separated; required)")
    jwt_jwks_uri: str = _opt("", "the --jwt-issuer's JWKS URL (empty: found by OpenID Connect discovery, then "
                             "RFC 8414 metadata)")
    jwt_jwks_file: str = _opt("", "a local JWKS file of the --jwt-issuer's keys instead (reloaded like the catalog)")
    jwt_algorithms: str = _opt("", "accepted JWS algorithms (default: RS*, PS*, ES*, EdDSA; HS* only with "
                               "--jwt-hmac-secret-file; never none)")
    jwt_leeway: float = _opt(30.0, "seconds of clock skew allowed for exp, nbf and iat")
    jwt_require_typ: bool = _opt(False, "require the JWT header typ at+jwt (RFC 9068 access tokens)")
    jwt_hmac_secret_file: str = _opt("", "file holding the HMAC secret that HS* tokens are signed with")
    jwt_scope_claim: str = _opt("", "claim holding the scopes, a dotted path for nested ones (default: scope, then scp)")
    jwt_kind_claim: str = _opt("", "claim saying the token's kind: oauth_app or personal_access_token")
    jwt_issuers: tuple = _opt((), "several issuers: a YAML list of mappings (keys: issuer, audience, jwks_uri, "
                             "jwks_file, algorithms, leeway, require_typ, hmac_secret_file, scope_claim, kind_claim, "
                             "legacy_claim, introspection_endpoint, client_id, client_secret_file, auth_method)")
    jwt_max_bytes: int = _opt(8192, "longest bearer token accepted; longer ones are refused before parsing")
    introspection_endpoint: str = _opt("", "RFC 7662 introspection URL for the --jwt-issuer's opaque tokens "
                                       "('discover': from its metadata; empty: no introspection)")
    introspection_client_id: str = _opt("", "client id scopesvc authenticates to the introspection endpoint with")
    introspection_client_secret_file: str = _opt("", "file holding that client's secret")
    introspection_auth_method: str = _opt("client_secret_basic", "how the client authenticates",
                                          choices=("client_secret_basic", "client_secret_post"))
    token_cache_size: int = _opt(10000, "verified tokens kept, keyed by a digest of the token (0: none)")
    token_cache_ttl: float = _opt(300.0, "longest a verified token is kept (never past its exp)")
    jwks_refresh_min: float = _opt(15.0, "shortest time between key-set fetches (also for an unknown kid)")
    jwks_refresh_max: float = _opt(3600.0, "longest a key set is used before it is fetched again")
    jwks_grace: float = _opt(3600.0, "seconds the last good key set keeps serving after it is due while its "
                             "source fails")
    jwks_timeout: float = _opt(5.0, "seconds a key-set, metadata or introspection request may take")
    legacy_claim: str = _opt("", "JWT claim that marks a legacy token when true (else the token's iat decides)")
    endpoint_header: str = _opt("x-scopesvc-endpoint", "header naming the matched endpoint, added to allowed requests")
    max_concurrent_rpcs: int = _opt(0, "calls held at once, served or waiting in the transport; more get "
                                    "RESOURCE_EXHAUSTED (health checks never; 0: no limit)")
    max_message_bytes: int = _opt(4 * 1024 * 1024, "largest gRPC message received or sent")
    grace: float = _opt(10.0, "seconds in-flight RPCs get to finish on SIGTERM/SIGINT")
    drain_delay: float = _opt(0.0, "seconds to keep accepting RPCs after reporting NOT_SERVING on SIGTERM/SIGINT, so "
                              "health-checking clients and load balancers move to a peer first", serve=1.0)
    tracing: bool = _opt(False, "export an OpenTelemetry span per decision over OTLP, configured by the standard "
                         "OTEL_* environment variables (endpoint, protocol, sampler, service name)")
    log_level: str = _opt("info", "log level", choices=("debug", "info", "warning", "error"))
    log_format: str = _opt("text", "log line format", choices=("text", "json"))

    def validate(self) -> None:
        """Raise `ConfigError` for values that cannot work together."""
        if not self.host and not self.uds:
            raise ConfigError("host: give a TCP --host or a --uds socket (or both)")
        for name in ("port", "metrics_port", "forward_auth_port"):
            if not 0 <= getattr(self, name) <= 65535:
                raise ConfigError(f"{name}: must be 0..65535, not {getattr(self, name)}")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigError("tls_cert: --tls-cert and --tls-key go together")
        if self.tls_client_ca and not self.tls_cert:
            raise ConfigError("tls_client_ca: mutual TLS needs --tls-cert and --tls-key too")
        if self.tls_cert and not self.host:
            raise ConfigError("tls_cert: TLS applies to the TCP listener; give --host")
        if self.authzen and not self.forward_auth_port:
            raise ConfigError("authzen: the AuthZEN API is served on the forward-auth port; give --forward-auth-port")
        if self.authzen_pdp_url and (not self.authzen_pdp_url.startswith(("https://", "http://"))
                                     or any(c in self.authzen_pdp_url for c in "?#")):
            raise ConfigError(f"authzen_pdp_url: must be an http(s) URL without query or fragment, "
                              f"not {self.authzen_pdp_url!r}")
        if self.workers < 1:
            raise ConfigError(f"workers: must be at least 1, not {self.workers}")
        non_negative = ("cache_size", "max_concurrent_rpcs", "grace", "drain_delay", "reload_interval", "cache_ttl",
                        "token_cache_size", "token_cache_ttl", "jwks_grace", "jwks_timeout")
        positive = ("http_backlog", "http_max_connections", "http_header_timeout", "http_keepalive_timeout",
                    "http_keepalive_requests", "http_max_header_bytes", "http_max_headers", "http_max_field_bytes",
                    "http_max_body_bytes")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name}: must be positive, not {getattr(self, name)}")
        for name in non_negative:
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}: must not be negative, not {getattr(self, name)}")
        if self.cache_size and self.cache_ttl <= 0:
            raise ConfigError("cache_ttl: must be positive while the cache is on")
        if not 0.0 <= self.decision_log_sample <= 1.0:
            raise ConfigError(f"decision_log_sample: must be between 0 and 1, not {self.decision_log_sample}")
        if self.decision_log_max_bytes < 1024:
            raise ConfigError("decision_log_max_bytes: must be at least 1024")
        if self.max_message_bytes < 1024:
            raise ConfigError("max_message_bytes: must be at least 1024")


FIELDS = {f.name: f for f in dataclasses.fields(ServerConfig)}


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def _kind(f: dataclasses.Field) -> type:
    return {"str": str, "int": int, "float": float, "bool": bool, "tuple": tuple}[str(f.type)]


def _default(f: dataclasses.Field) -> Any:
    return f.metadata.get("serve", f.default)


def _convert(f: dataclasses.Field, value: Any, where: str) -> Any:
    """`value` (a string from the environment, or a YAML value) as the field's type."""
    kind = _kind(f)
    try:
        if kind is bool:
            if isinstance(value, bool):
                result: Any = value
            elif isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
                result = value.strip().lower() in _TRUE
            else:
                raise ValueError("expected true or false")
        elif kind is tuple:
            if isinstance(value, str):  # from the environment or a flag: YAML (or JSON) text
                value = yaml.safe_load(value) or []
            if not isinstance(value, (list, tuple)):
                raise ValueError("expected a list")
            result = tuple(value)
        elif kind is str:
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise ValueError("expected a string")
            result = str(value)
        elif isinstance(value, bool) or (kind is int and isinstance(value, float)):
            raise ValueError(f"expected {'an integer' if kind is int else 'a number'}")
        else:
            result = kind(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: bad value {value!r}: {exc}") from None
    choices = f.metadata.get("choices")
    if choices and result not in choices:
        raise ConfigError(f"{where}: must be one of {', '.join(choices)}, not {result!r}")
    return result


def _yaml_list(f: dataclasses.Field) -> Callable[[str], tuple[Any, ...]]:
    """A flag's type for a list option: its YAML (or JSON) text, read as `_convert` reads it."""

    def convert(text: str) -> tuple[Any, ...]:
        try:
            return tuple(_convert(f, text, flag_name(f.name)))
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def add_arguments(parser: argparse.ArgumentParser, names: Collection[str] | None = None) -> None:
    """Add `--config` and one flag per field (or per field in `names`); unset flags stay absent so lower
    layers show through."""
    parser.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                        help=f"YAML file of options (keys as the flags, without '--'); env {ENV_PREFIX}CONFIG")
    for name, f in FIELDS.items():
        if names is not None and name not in names:
            continue
        default = _default(f)
        shown = repr(default) if isinstance(default, str) else default
        help_text = f"{f.metadata['help']} (default {shown}; env {env_name(name)})"
        kind = _kind(f)
        if kind is bool:
            parser.add_argument(flag_name(name), action=argparse.BooleanOptionalAction,
                                default=argparse.SUPPRESS, help=help_text)
            continue
        parser.add_argument(flag_name(name), type=_yaml_list(f) if kind is tuple else kind, default=argparse.SUPPRESS,
                            choices=f.metadata.get("choices"), help=help_text,
                            metavar=name.upper() if not f.metadata.get("choices") else None)


def _read_file(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            data = yaml.safe_load(handle)
    except OSError as exc:
        raise ConfigError(f"config {path}: cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {path}: YAML error: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"config {path}: must be a mapping of option: value")
    values: dict[str, Any] = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        if name not in FIELDS:
            raise ConfigError(f"config {path}: unknown option {key!r}")
        values[name] = _convert(FIELDS[name], value, f"config {path}: {key}")
    return values


def resolve(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> ServerConfig:
    """Merge defaults < config file < environment < flags into a validated `ServerConfig`."""
    environ = os.environ if environ is None else environ
    values = {name: _default(f) for name, f in FIELDS.items()}
    config_file = getattr(args, "config", None) or environ.get(ENV_PREFIX + "CONFIG", "")
    if config_file:
        values.update(_read_file(config_file))
    for name, f in FIELDS.items():
        raw = environ.get(env_name(name))
        if raw is not None:
            values[name] = _convert(f, raw, env_name(name))
    for name in FIELDS:
        if hasattr(args, name):
            values[name] = getattr(args, name)
    config = ServerConfig(**values)
    config.validate()
    return config
