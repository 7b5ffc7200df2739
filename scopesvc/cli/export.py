"""`scopesvc export ...`: compile a catalog into data-plane configuration (docs/export.md)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from ..catalog import files as catalog_files
from ..export import ExportRefused, envoy, istio
from .common import EXIT_ALLOW, UsageError, add_catalog


class _Dumper(yaml.SafeDumper):
    """Writes shared values out in full: no `&id001` anchors for readers to chase."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _dump(document: Any, header: str, as_json: bool = False) -> str:
    """YAML with `header` as comments; or, with --json, the same document as JSON (Envoy reads both)."""
    if as_json:
        return json.dumps(document, indent=2) + "\n"
    body = yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=1_000_000, allow_unicode=False)
    return "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines()) + body


def write_output(text: str, target: str) -> None:
    """Print, or replace `target` atomically (a rename), so a watching Envoy never reads half a file."""
    if not target or target == "-":
        sys.stdout.write(text)
        return
    directory = os.path.dirname(os.path.abspath(target))
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".scopesvc-export-")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def jwt_options(args: argparse.Namespace) -> envoy.JwtOptions:
    try:
        return envoy.JwtOptions(
            issuer=args.jwt_issuer, audiences=tuple(args.jwt_audience or ()), jwks_file=args.jwt_jwks_file,
            jwks_uri=args.jwt_jwks_uri, jwks_cluster=args.jwt_jwks_cluster, payload_key=args.jwt_payload_key,
            legacy_claim=args.legacy_claim)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def cmd_export_envoy(args: argparse.Namespace) -> int:
    catalog = catalog_files.load(args.catalog)
    options = jwt_options(args)
    header = (f"Envoy configuration exported by scopesvc from catalog {catalog.name} revision {catalog.revision}.\n"
              "It decides as the scopesvc engine does; see docs/export.md.\n")
    try:
        if args.lds:
            document: Any = {"resources": [{
                "@type": "type.googleapis.com/envoy.config.listener.v3.Listener",
                **envoy.listener(catalog, options, args.listen_port, args.listen_address)}]}
        elif args.bootstrap:
            if not args.upstream:
                raise UsageError("--bootstrap needs --upstream HOST:PORT")
            document = envoy.bootstrap(catalog, options, args.listen_port, args.upstream, args.listen_address,
                                       lds_path=args.lds_path)
        else:
            header += (f"Set these fields on your HttpConnectionManager (the router goes after http_filters), and\n"
                       f"the runtime key re2.max_program_size.error_level to at least {envoy.RE2_PROGRAM_SIZE}.\n")
            document = envoy.connection_manager_settings(catalog, options)
    except ValueError as exc:
        if isinstance(exc, ExportRefused):
            raise
        raise UsageError(str(exc)) from None
    write_output(_dump(document, header, args.json), args.output)
    return EXIT_ALLOW


def cmd_export_istio(args: argparse.Namespace) -> int:
    catalog = catalog_files.load(args.catalog)
    if bool(args.jwt_jwks_file) == bool(args.jwt_jwks_uri):
        raise UsageError("give exactly one of --jwt-jwks-file and --jwt-jwks-uri")
    selector = []
    for item in args.selector or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--selector must be KEY=VALUE, not {item!r}")
        selector.append((key, value))
    inline_jwks = Path(args.jwt_jwks_file).read_text() if args.jwt_jwks_file else ""
    options = istio.IstioOptions(
        name=args.name or f"scopesvc-{catalog.name}", namespace=args.namespace, issuer=args.jwt_issuer,
        audiences=tuple(args.jwt_audience or ()), jwks_uri=args.jwt_jwks_uri, jwks=inline_jwks,
        selector=tuple(selector), accept_mesh_path_normalization=args.accept_mesh_path_normalization)
    documents = istio.resources(catalog, options)
    header = (f"Istio policy exported by scopesvc from catalog {catalog.name} revision {catalog.revision};\n"
              "see docs/export.md for what it encodes and what it cannot.\n")
    if args.json:  # one document: a Kubernetes List, as kubectl reads it
        text = _dump({"apiVersion": "v1", "kind": "List", "items": documents}, "", True)
    else:
        text = "---\n".join(_dump(d, header if i == 0 else "") for i, d in enumerate(documents))
    write_output(text, args.output)
    return EXIT_ALLOW


def _add_jwt(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--jwt-issuer", required=True, metavar="ISS", help="the tokens' issuer (iss)")
    parser.add_argument("--jwt-audience", action="append", metavar="AUD",
                        help="an accepted audience (repeat); none given: the audience is not checked")
    jwks = parser.add_mutually_exclusive_group(required=True)
    jwks.add_argument("--jwt-jwks-file", default="", metavar="FILE", help="JWKS file Envoy reads")
    jwks.add_argument("--jwt-jwks-uri", default="", metavar="URL", help="JWKS URL Envoy fetches")
    parser.add_argument("--jwt-jwks-cluster", default="jwks", metavar="NAME",
                        help="the Envoy cluster that reaches --jwt-jwks-uri (--bootstrap defines it)")
    parser.add_argument("--jwt-payload-key", default="jwt_payload", metavar="KEY",
                        help="metadata key of the verified payload (jwt_authn payload_in_metadata)")
    parser.add_argument("--legacy-claim", default="", metavar="CLAIM",
                        help="JWT claim that marks a legacy token when true (as scopesvc serve --legacy-claim)")


def _add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the configuration as JSON instead of YAML")


def register(commands: Any, json_flag: argparse.ArgumentParser) -> None:
    """Add `export` and its targets to the top-level subparsers (their --json is the configuration as JSON)."""
    del json_flag  # an export prints configuration, not a scopesvc.v1 message
    export = commands.add_parser("export", help="compile a catalog into proxy configuration (Envoy, Istio)")
    targets = export.add_subparsers(dest="export_target", required=True, metavar="TARGET")
    to_envoy = targets.add_parser(
        "envoy", help="Envoy v3 YAML: jwt_authn + RBAC + local replies, or a whole bootstrap",
        description="Without --bootstrap or --lds: the HttpConnectionManager fields to set (path handling, "
                    "local_reply_config, http_filters). Exit 2 when the catalog cannot be exported faithfully.")
    add_catalog(to_envoy)
    _add_json(to_envoy)
    _add_jwt(to_envoy)
    mode = to_envoy.add_mutually_exclusive_group()
    mode.add_argument("--bootstrap", action="store_true", help="a complete runnable Envoy configuration")
    mode.add_argument("--lds", action="store_true",
                      help="the listener as an LDS file resource (for a bootstrap made with --lds-path)")
    to_envoy.add_argument("--listen-port", type=int, default=10000, metavar="PORT", help="the API listener's port")
    to_envoy.add_argument("--listen-address", default="127.0.0.1", metavar="ADDR", help="the API listener's address")
    to_envoy.add_argument("--upstream", default="", metavar="HOST:PORT", help="the API behind Envoy (--bootstrap)")
    to_envoy.add_argument("--lds-path", default="", metavar="FILE",
                          help="with --bootstrap: read the listener from this file (write it with --lds), "
                               "so a new catalog rolls in by replacing the file")
    to_envoy.add_argument("-o", "--output", default="", metavar="FILE",
                          help="write here (atomically replaced) instead of standard output")
    to_envoy.set_defaults(func=cmd_export_envoy)

    to_istio = targets.add_parser(
        "istio", help="Istio RequestAuthentication + AuthorizationPolicy (refused where Istio is not faithful)",
        description="Exit 2 with the reasons when Istio cannot express the catalog faithfully (docs/export.md).")
    add_catalog(to_istio)
    _add_json(to_istio)
    to_istio.add_argument("--jwt-issuer", required=True, metavar="ISS", help="the tokens' issuer (iss)")
    to_istio.add_argument("--jwt-audience", action="append", metavar="AUD", help="an accepted audience (repeat)")
    to_istio.add_argument("--jwt-jwks-file", default="", metavar="FILE", help="JWKS file, inlined as jwks")
    to_istio.add_argument("--jwt-jwks-uri", default="", metavar="URL", help="JWKS URL (jwksUri)")
    to_istio.add_argument("--name", default="", help="resource name; default: scopesvc-<catalog name>")
    to_istio.add_argument("--namespace", default="", help="resource namespace")
    to_istio.add_argument("--selector", action="append", metavar="KEY=VALUE", help="workload label (repeat)")
    to_istio.add_argument("--accept-mesh-path-normalization", action="store_true",
                          help="export although Istio decides on the mesh-normalised path (docs/export.md)")
    to_istio.add_argument("-o", "--output", default="", metavar="FILE", help="write here instead of standard output")
    to_istio.set_defaults(func=cmd_export_istio)
