"""OpenAPI 3.0 / 3.1 and Swagger 2.0 documents into scope catalogs (`scopesvc catalog import openapi`).

By default the document's own security semantics are kept exactly (docs/import.md):
- the requirement objects of `security` are alternatives; within one object the scopes of every
  OAuth2 / OpenID Connect scheme are united and all needed;
- an operation's `security` overrides the root one; none at all, `[]` or an empty object `{}` among
  the alternatives makes the endpoint public;
- an OAuth2 requirement with no scopes needs a token and no scope; an alternative made only of
  schemes that carry no scopes (API keys, HTTP basic or bearer, mutual TLS) is dropped and reported,
  and an operation left without any alternative needs a token and no scope;
- scopes and their descriptions come from the OAuth2 flows; a scope used but not declared is
  declared with no description and reported; no implication is added.

Options bend the rules for real documents that bend the specification (`ImportOptions`). Every
operation ends up in the report: imported, merged with an equivalent one, or left out with why.
The catalog is only returned after it compiled through the real loader.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import yaml

from ..policy import CatalogError
from ..policy.catalog import FORMAT
from . import files

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
SCOPE_SCHEMES = ("oauth2", "openIdConnect")
_OAS3_FLOWS = ("implicit", "password", "clientCredentials", "authorizationCode", "deviceAuthorization")
_PARAM = re.compile(r"\{([^{}]*)\}")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LOADER_WHERE = re.compile(r"(endpoints|scopes)\[(\d+)\]")


@dataclass(frozen=True)
class ImportOptions:
    """How to read a document; the defaults are the specification's semantics."""

    name: str = ""
    base_path: str | None = None  # None: from servers[0].url / basePath
    authorize_url: str = ""  # "": the first authorization URL of an OAuth2 flow
    list_means_any_of: bool = False  # a requirement's scope list means "any one of"
    scopes_extension: str = ""  # an operation field naming its scopes (x-pd-requires-scope)
    ignore_scopes: tuple[str, ...] = ()  # pseudo-scopes that are not scopes (Slack's `none`)
    scopes_from_description: str = ""  # a regex finding the scopes in each operation's description
    write_implies_read: bool = False
    case_insensitive: bool = False
    error_title: str = ""
    error_message: str = ""


@dataclass(frozen=True)
class Requirement:
    """What an operation needs: nothing (public), or any one of `alternatives` (each all needed).

    `((),)` is "a token, no particular scope". Alternatives are kept without repeats and without
    supersets of another alternative (which could never be the one that decides).
    """

    public: bool = False
    alternatives: tuple[tuple[str, ...], ...] = ()

    @classmethod
    def any_of(cls, alternatives: Iterable[Iterable[str]]) -> Requirement:
        sets: list[tuple[str, ...]] = []
        for alternative in alternatives:
            candidate = tuple(dict.fromkeys(alternative))
            if any(set(kept) <= set(candidate) for kept in sets):
                continue
            sets = [kept for kept in sets if not set(candidate) <= set(kept)] + [candidate]
        return cls(False, tuple(sets))

    def catalog_fields(self) -> dict[str, Any]:
        if self.public:
            return {"public": True}
        if len(self.alternatives) == 1:
            return {"scopes": list(self.alternatives[0])}
        return {"any_of": [list(a) for a in self.alternatives]}

    def describe(self) -> str:
        if self.public:
            return "public (no token)"
        if self.alternatives == ((),):
            return "a token, no scope"
        return " | ".join("[" + " ".join(a) + "]" for a in self.alternatives)

    def scopes(self) -> list[str]:
        return list(dict.fromkeys(s for a in self.alternatives for s in a))

    def same_access(self, other: Requirement | None) -> bool:
        """Equal up to the order of alternatives and of scopes within one."""
        return other is not None and self.public == other.public and \
            {frozenset(a) for a in self.alternatives} == {frozenset(a) for a in other.alternatives}


@dataclass
class OperationReport:
    method: str
    path: str  # as the document writes it
    operation_id: str
    template: str = ""  # in the catalog
    outcome: str = "imported"  # imported | merged | left out
    requirement: Requirement | None = None
    source: str = ""  # where the requirement came from
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method, "path": self.path, "operation_id": self.operation_id,
                               "template": self.template, "outcome": self.outcome, "source": self.source}
        if self.requirement is not None:
            out["public"] = self.requirement.public
            out["any_of"] = [list(a) for a in self.requirement.alternatives]
        out["notes"] = self.notes
        return out


@dataclass
class ImportReport:
    source: str
    kind: str = ""  # "OpenAPI 3.1.0" / "Swagger 2.0"
    base_path: str = ""
    operations: list[OperationReport] = field(default_factory=list)
    undeclared: dict[str, list[str]] = field(default_factory=dict)  # scope -> operations using it
    ignored: dict[str, int] = field(default_factory=dict)  # ignored pseudo-scope -> times seen
    notes: list[str] = field(default_factory=list)  # about the document as a whole
    scopes: int = 0
    endpoints: int = 0

    def count(self, outcome: str) -> int:
        return sum(1 for op in self.operations if op.outcome == outcome)

    def summary(self) -> str:
        return (f"{self.source} ({self.kind}): {len(self.operations)} operations: {self.count('imported')} imported, "
                f"{self.count('merged')} merged into an equivalent one, {self.count('left out')} left out; "
                f"{self.endpoints} endpoints, {self.scopes} scopes ({len(self.undeclared)} undeclared)")

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "kind": self.kind, "base_path": self.base_path,
                "counts": {"operations": len(self.operations), "imported": self.count("imported"),
                           "merged": self.count("merged"), "left_out": self.count("left out"),
                           "endpoints": self.endpoints, "scopes": self.scopes},
                "operations": [op.to_json() for op in self.operations],
                "undeclared_scopes": self.undeclared, "ignored_scopes": self.ignored, "notes": self.notes}

    def human(self) -> str:
        lines = [self.summary()]
        lines += [f"note: {note}" for note in self.notes]
        for op in self.operations:
            where = f"{op.name}" + (f" -> {op.template}" if op.template and op.template != op.path else "")
            what = op.requirement.describe() if op.requirement else ""
            head = {"imported": f"{what} ({op.source})", "merged": "merged", "left out": "LEFT OUT"}[op.outcome]
            lines.append(f"  {where}: {head}")
            lines += [f"      {note}" for note in op.notes]
        for scope, users in self.undeclared.items():
            lines.append(f"undeclared scope {scope!r} (used by {len(users)} operation(s), e.g. {users[0]}): "
                         "declared in the catalog without a description")
        for scope, times in self.ignored.items():
            lines.append(f"ignored pseudo-scope {scope!r} ({times} time(s))")
        return "\n".join(lines)


class _Document:
    """A parsed document with its local `$ref`s resolved on demand."""

    def __init__(self, data: Any, source: str) -> None:
        if not isinstance(data, Mapping):
            raise CatalogError(source, ["not an OpenAPI document: the top level must be a mapping"])
        self.data = data
        self.source = source
        if isinstance(data.get("openapi"), str) and data["openapi"].startswith("3."):
            self.kind, self.version = f"OpenAPI {data['openapi']}", 3
        elif str(data.get("swagger")) == "2.0":
            self.kind, self.version = "Swagger 2.0", 2
        else:
            found = f"openapi: {data.get('openapi')!r}, swagger: {data.get('swagger')!r}"
            raise CatalogError(source, [f"not an OpenAPI 3.x or Swagger 2.0 document ({found})"])
        if not isinstance(data.get("paths", {}), Mapping):
            raise CatalogError(source, ["'paths' must be a mapping"])

    def deref(self, node: Any, where: str) -> Any:
        """Follow local `$ref`s (`#/components/...`); raises `LookupError` for others and cycles."""
        seen: set[str] = set()
        while isinstance(node, Mapping) and isinstance(node.get("$ref"), str):
            ref = node["$ref"]
            if not ref.startswith("#/"):
                raise LookupError(f"{where}: only local references are resolved, not {ref!r}")
            if ref in seen:
                raise LookupError(f"{where}: reference cycle through {ref!r}")
            seen.add(ref)
            target: Any = self.data
            for part in ref[2:].split("/"):
                part = part.replace("~1", "/").replace("~0", "~")
                if not isinstance(target, Mapping) or part not in target:
                    raise LookupError(f"{where}: {ref!r} does not resolve")
                target = target[part]
            node = target
        return node

    def schemes(self) -> tuple[dict[str, Mapping[str, Any]], list[str]]:
        raw = (self.data.get("components") or {}).get("securitySchemes") if self.version == 3 \
            else self.data.get("securityDefinitions")
        out: dict[str, Mapping[str, Any]] = {}
        problems: list[str] = []
        for name, scheme in (raw or {}).items():
            try:
                resolved = self.deref(scheme, f"security scheme {name}")
            except LookupError as exc:
                problems.append(str(exc))
                continue
            if isinstance(resolved, Mapping):
                out[str(name)] = resolved
        return out, problems

    def base_path(self, servers: Any = None) -> str:
        """Swagger 2's basePath, or the path of OpenAPI 3's first server (`servers`, else the root's)."""
        if self.version == 2:
            return str(self.data.get("basePath") or "")
        servers = servers or self.data.get("servers") or []
        if not isinstance(servers, list) or not servers or not isinstance(servers[0], Mapping):
            return ""
        url = str(servers[0].get("url", ""))
        for name, variable in (servers[0].get("variables") or {}).items():
            url = url.replace("{" + str(name) + "}", str((variable or {}).get("default", "")))
        return urlsplit(url).path


def _flows(scheme: Mapping[str, Any], version: int) -> list[Mapping[str, Any]]:
    if version == 2:
        return [scheme]
    flows = scheme.get("flows") or {}
    return [flows[name] for name in _OAS3_FLOWS if isinstance(flows.get(name), Mapping)]


def _scheme_type(scheme: Mapping[str, Any] | None) -> str:
    return str(scheme.get("type", "")) if scheme is not None else ""


def _normal_base(base: str) -> str:
    base = "/" + base.strip("/")
    return "" if base == "/" else base


def convert_template(path: str) -> tuple[str, list[str]]:
    """An OpenAPI path template as a catalog template, with notes on what changed.

    Raises `ValueError` when the template cannot be expressed. `{+name}` (RFC 6570 reserved
    expansion, Google's multi-segment names) becomes `{name=**}`; a parameter name that is not an
    identifier is renamed; a trailing slash is dropped (catalog paths strip it).
    """
    notes: list[str] = []
    if "?" in _PARAM.sub("", path) or "#" in _PARAM.sub("", path):
        raise ValueError(f"path {path!r} holds a query or fragment")

    def parameter(match: re.Match[str]) -> str:
        inner = match.group(1)
        if inner[:1] == "+":
            name = inner[1:]
            suffix = "=**"
            notes.append(f"{{{inner}}} spans segments: {{{_ident(name)}=**}}")
        elif inner[:1] in ("/", ";", "?", "&", "#", "."):
            raise ValueError(f"RFC 6570 expansion {{{inner}}} cannot be expressed")
        else:
            name, suffix = inner, ""
        ident = _ident(name)
        if ident != name and not suffix:
            notes.append(f"parameter {{{name}}} renamed {{{ident}}}")
        return "{" + ident + suffix + "}"

    template = _PARAM.sub(parameter, path)
    if len(template) > 1 and template.endswith("/"):
        template = template.rstrip("/")
        notes.append("trailing '/' dropped")
    return template, notes


def _ident(name: str) -> str:
    if _IDENT.fullmatch(name):
        return name
    ident = re.sub(r"[^A-Za-z0-9_]", "_", name) or "param"
    return ident if _IDENT.fullmatch(ident) else "p_" + ident


def shape(method: str, template: str, case_insensitive: bool = False) -> str:
    """Method and template with parameter names erased: two operations with one shape are ambiguous."""
    erased = re.sub(r"\{[A-Za-z0-9_]*(=\*\*)?\}", lambda m: "{**}" if m.group(1) else "{}", template)
    return f"{method} {erased.lower() if case_insensitive else erased}"


def _description_scopes(pattern: re.Pattern[str], text: str) -> list[str]:
    """The scopes the pattern finds: backquoted words in each match's group, or its words."""
    out: list[str] = []
    for match in pattern.finditer(text):
        if "scopes" in pattern.groupindex:
            found = match.group("scopes") or ""
        else:
            found = match.group(1) if pattern.groups else match.group(0)
        quoted = re.findall(r"`([^`\s]+)`", found or "")
        out += quoted or (found or "").replace(",", " ").split()
    return list(dict.fromkeys(out))


class _Importer:
    def __init__(self, doc: _Document, options: ImportOptions) -> None:
        self.doc = doc
        self.options = options
        self.report = ImportReport(doc.source, doc.kind)
        self.schemes, problems = doc.schemes()
        self.report.notes += problems
        self.declared: dict[str, str] = {}  # scope -> description, from OAuth2 flows
        for name, scheme in self.schemes.items():
            if _scheme_type(scheme) == "oauth2":
                for flow in _flows(scheme, doc.version):
                    for scope, text in (flow.get("scopes") or {}).items():
                        self.declared.setdefault(str(scope), "" if text is None else str(text))
            elif _scheme_type(scheme) == "openIdConnect":
                self.report.notes.append(f"scheme {name} is OpenID Connect: its scopes are in its discovery "
                                         "document, so the ones used are reported as undeclared")
        self.pattern: re.Pattern[str] | None = None
        if options.scopes_from_description:
            try:
                self.pattern = re.compile(options.scopes_from_description)
            except re.error as exc:
                raise CatalogError("--scopes-from-description", [f"bad regular expression: {exc}"]) from None

    # -- requirements ------------------------------------------------------------------------

    def _scopes(self, names: Iterable[Any], report: OperationReport) -> list[str]:
        out = []
        for name in names:
            name = str(name)
            if name in self.options.ignore_scopes:
                self.report.ignored[name] = self.report.ignored.get(name, 0) + 1
                report.notes.append(f"pseudo-scope {name!r} ignored")
            else:
                out.append(name)
        return out

    def _listed(self, scopes: list[str]) -> Requirement:
        if self.options.list_means_any_of and scopes:
            return Requirement.any_of([s] for s in scopes)
        return Requirement.any_of([scopes])

    def requirement(self, op: Mapping[str, Any], report: OperationReport) -> tuple[Requirement, str]:
        options = self.options
        if options.scopes_extension and options.scopes_extension in op:
            value = op[options.scopes_extension]
            names = [value] if isinstance(value, str) else value if isinstance(value, list) else None
            if names is None:
                report.notes.append(f"{options.scopes_extension} is not a string or a list: not used")
            else:
                return self._listed(self._scopes(names, report)), options.scopes_extension
        if self.pattern is not None:
            found = _description_scopes(self.pattern, str(op.get("description") or ""))
            if found:
                return self._listed(self._scopes(found, report)), "description"
            report.notes.append("the description pattern found no scopes: the security requirements apply")
        if "security" in op:
            security, source = op["security"], "operation security"
        else:
            security, source = self.doc.data.get("security"), "root security"
        if not security:
            why = "security: []" if isinstance(security, list) else "no security requirement"
            return Requirement(public=True), f"{source}: {why}" if security is not None else why
        if not isinstance(security, list):
            raise TypeError(f"{source} is not a list of requirement objects")
        alternatives: list[list[str]] = []
        dropped = 0
        for requirement in security:
            if not isinstance(requirement, Mapping):
                raise TypeError(f"{source} holds a {type(requirement).__name__}, not a requirement object")
            if not requirement:
                report.notes.append("an empty requirement {} makes the operation public")
                return Requirement(public=True), source
            scoped: list[str] = []
            has_scope_scheme = False
            others = []
            for scheme_name, scopes in requirement.items():
                scheme = self.schemes.get(str(scheme_name))
                if scheme is None:
                    report.notes.append(f"scheme {scheme_name!r} is not declared: treated as one without scopes")
                kind = _scheme_type(scheme)
                if kind in SCOPE_SCHEMES:
                    has_scope_scheme = True
                    scoped += self._scopes([scopes] if isinstance(scopes, str) else scopes or [], report)
                else:
                    others.append(f"{scheme_name} ({kind or 'undeclared'})")
            if not has_scope_scheme:
                dropped += 1
                report.notes.append(f"alternative {' + '.join(others)} dropped: it carries no scopes")
                continue
            if others:
                report.notes.append(f"{' + '.join(others)} also required with the OAuth2 token: not checked here")
            alternatives += ([[s] for s in dict.fromkeys(scoped)] or [[]]) if options.list_means_any_of \
                else [scoped]
        if not alternatives:
            report.notes.append("no OAuth2 alternative left: a token and no scope")
            return Requirement.any_of([[]]), source
        return Requirement.any_of(alternatives), source

    # -- operations -------------------------------------------------------------------------

    def operations(self, base: str) -> list[tuple[OperationReport, str]]:
        """Every operation's report, and its shape ("" when left out)."""
        out: list[tuple[OperationReport, str]] = []
        for path, item in self.doc.data.get("paths", {}).items():
            path = str(path)
            try:
                item = self.doc.deref(item, f"path {path}")
            except LookupError as exc:
                out.append((OperationReport("*", path, "", outcome="left out", notes=[str(exc)]), ""))
                continue
            if not isinstance(item, Mapping):
                continue
            for method in METHODS:
                if method not in item:
                    continue
                op = item[method]
                report = OperationReport(method.upper(), path, str((op or {}).get("operationId", ""))
                                         if isinstance(op, Mapping) else "")
                servers = (op.get("servers") if isinstance(op, Mapping) else None) or item.get("servers")
                if servers and self.options.base_path is None and self.doc.version == 3:
                    own = _normal_base(self.doc.base_path(servers))
                    if own != base:
                        report.notes.append(f"its own servers give the base path {own or '/'}")
                    out.append((report, self._operation(report, op, own + path)))
                    continue
                out.append((report, self._operation(report, op, base + path)))
        return out

    def _operation(self, report: OperationReport, op: Any, full_path: str) -> str:
        if not isinstance(op, Mapping):
            report.outcome = "left out"
            report.notes.append("the operation is not an object")
            return ""
        try:
            report.template, notes = convert_template(full_path)
            report.notes += notes
            report.requirement, report.source = self.requirement(op, report)
        except (ValueError, LookupError, TypeError) as exc:
            report.outcome = "left out"
            report.notes.append(str(exc))
            return ""
        for scope in report.requirement.scopes():
            if scope not in self.declared:
                self.report.undeclared.setdefault(scope, []).append(report.name)
        return shape(report.method, report.template, self.options.case_insensitive)

    def merge(self, operations: list[tuple[OperationReport, str]]) -> list[OperationReport]:
        """The operations that become endpoints: one per shape, or none when requirements differ."""
        groups: dict[str, list[OperationReport]] = {}
        for report, key in operations:
            if key:
                groups.setdefault(key, []).append(report)
        kept = []
        for group in groups.values():
            first = group[0]
            if len(group) == 1:
                kept.append(first)
                continue
            names = ", ".join(r.name for r in group)
            if all(first.requirement and first.requirement.same_access(r.requirement) for r in group):
                kept.append(first)
                first.notes.append(f"ambiguous with {names}: same requirement, one endpoint")
                for other in group[1:]:
                    other.outcome = "merged"
                    other.notes.append(f"same method and path shape as {first.name} and the same requirement: "
                                       f"served by {first.template}")
            else:
                for other in group:
                    other.outcome = "left out"
                    other.notes.append(f"ambiguous: {names} have one method and path shape but different "
                                       "requirements, which no request can tell apart")
        return kept

    # -- the catalog ----------------------------------------------------------------------------

    def catalog(self) -> dict[str, Any]:
        doc, options = self.doc, self.options
        base = _normal_base(options.base_path if options.base_path is not None else doc.base_path())
        self.report.base_path = base
        operations = self.operations(base)
        self.report.operations = [report for report, _ in operations]
        kept = self.merge(operations)
        info = doc.data.get("info") if isinstance(doc.data.get("info"), Mapping) else {}
        title = str(info.get("title") or "imported-api")
        if isinstance(doc.data.get("webhooks"), Mapping) and doc.data["webhooks"]:
            self.report.notes.append(f"{len(doc.data['webhooks'])} OpenAPI webhooks not imported: the document "
                                     "does not say which scope receiving them needs")
        authorize = options.authorize_url or self._authorize_url()
        catalog: dict[str, Any] = {
            "format": FORMAT,
            "name": options.name or (re.sub(r"[^a-z0-9.]+", "-", title.lower()).strip("-") or "imported-api"),
            "revision": str(info.get("version") or "0"),
            "description": f"{title}, imported from {doc.kind} {doc.source.rsplit('/', 1)[-1]}",
        }
        if authorize:
            catalog["oauth"] = {"authorize_url": authorize}
        if options.error_title or options.error_message:
            body = {"title": options.error_title} if options.error_title else {}
            catalog["errors"] = {"insufficient_scope": {**body, **(
                {"message": options.error_message} if options.error_message else {})}}
        catalog["paths"] = {"trailing_slash": "strip", "head_as_get": False}
        if options.case_insensitive:
            catalog["paths"]["case_insensitive"] = True
        catalog["hierarchy"] = {"write_implies_read": options.write_implies_read}
        return self._compiled(catalog, kept)

    def _authorize_url(self) -> str:
        for scheme in self.schemes.values():
            if _scheme_type(scheme) == "oauth2":
                for flow in _flows(scheme, self.doc.version):
                    url = flow.get("authorizationUrl")
                    if isinstance(url, str) and url.startswith(("https://", "http://")) and "?" not in url:
                        return url
        return ""

    def _compiled(self, head: dict[str, Any], kept: list[OperationReport]) -> dict[str, Any]:
        """The catalog with the operations the loader accepts; the others are left out with its reason."""
        ignored = set(self.options.ignore_scopes)
        declared = [s for s in self.declared if s not in ignored]
        while True:
            used = {s for r in kept for s in (r.requirement.scopes() if r.requirement else ())}
            names = declared + [s for s in self.report.undeclared if s not in self.declared and s in used]
            if not names:
                kinds = ", ".join(f"{n} ({_scheme_type(s) or '?'})" for n, s in self.schemes.items()) or "none"
                raise CatalogError(self.doc.source, [(
                    f"the document declares and uses no OAuth2 scope (security schemes: {kinds}), and a catalog "
                    "needs at least one: see --scopes-from-description and --scopes-extension")])
            catalog = {**head, "scopes": [{"name": s, "description": self.declared[s]} if self.declared.get(s)
                                          else {"name": s} for s in names],
                       "endpoints": [self._endpoint(r) for r in kept]}
            try:
                files.load_bytes(dump(catalog).encode(), f"<catalog from {self.doc.source}>")
            except CatalogError as exc:
                bad_scopes, bad_endpoints = self._blame(exc, names, kept)
                if not bad_scopes and not bad_endpoints:
                    raise
                declared = [s for s in declared if s not in bad_scopes]
                for report in kept:
                    used_bad = bad_scopes.intersection(report.requirement.scopes() if report.requirement else ())
                    if used_bad:
                        bad_endpoints.setdefault(id(report), []).append(
                            f"scope(s) {', '.join(sorted(used_bad))} refused by the catalog loader")
                for report in kept:
                    if id(report) in bad_endpoints:
                        report.outcome = "left out"
                        report.notes += [f"refused by the catalog loader: {why}" for why in bad_endpoints[id(report)]]
                kept = [r for r in kept if r.outcome != "left out"]
                continue
            self.report.scopes = len(names)
            self.report.endpoints = len(kept)
            return catalog

    @staticmethod
    def _blame(exc: CatalogError, names: list[str], kept: list[OperationReport]) -> tuple[set[str], dict[int, list[str]]]:
        scopes: set[str] = set()
        endpoints: dict[int, list[str]] = {}
        for problem in exc.problems:
            match = _LOADER_WHERE.match(problem.entry)
            if match is None:
                continue
            index = int(match.group(2))
            if match.group(1) == "scopes" and index < len(names):
                scopes.add(names[index])
            elif match.group(1) == "endpoints" and index < len(kept):
                endpoints.setdefault(id(kept[index]), []).append(problem.reason)
        return scopes, endpoints

    @staticmethod
    def _endpoint(report: OperationReport) -> dict[str, Any]:
        assert report.requirement is not None
        entry: dict[str, Any] = {"method": report.method, "path": report.template}
        entry.update(report.requirement.catalog_fields())
        if report.operation_id:
            entry["operation_id"] = report.operation_id
        return entry


class _Dumper(yaml.SafeDumper):
    """Never writes anchors or aliases: the catalog loader refuses them."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump(catalog: Mapping[str, Any]) -> str:
    return yaml.dump(catalog, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120, default_flow_style=None)


def import_document(data: Any, source: str, options: ImportOptions = ImportOptions()) -> tuple[str, ImportReport]:
    """The catalog (YAML text, compiled once by the real loader) and the report, or `CatalogError`."""
    importer = _Importer(_Document(data, source), options)
    catalog = importer.catalog()
    report = importer.report
    header = (f"# Imported by `scopesvc catalog import openapi` from {source.rsplit('/', 1)[-1]} ({report.kind}).\n"
              f"# {report.summary()}\n")
    return header + dump(catalog), report


def import_file(path: str, options: ImportOptions = ImportOptions()) -> tuple[str, ImportReport]:
    try:
        with open(path, "rb") as handle:
            text = handle.read(files.MAX_BYTES + 1)
    except OSError as exc:
        raise CatalogError(path, [f"cannot read: {exc.strerror or exc}"]) from None
    return import_document(files.parse_document(text, path), path, options)
