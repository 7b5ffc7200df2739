"""Catalog test files (`scopesvc catalog test`): decisions a catalog must give, run like `opa test`.

A test file is YAML (format in docs/catalog.md, "Catalog tests"): a list of cases, each a token
(scopes, format, issue time, kind), a question (an endpoint, a webhook delivery or a webhook
subscription) and the expected answer (allow or deny, optionally the reason and missing scopes).
Problems in the file are `CaseFileError`s naming the file and line: a bad test never passes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import yaml

from ..policy import Engine, Reason, RequestError, Token, TokenFormat, TokenKind
from ..policy.catalog import _parse_date as parse_date
from . import files

FORMATS = {"auto": TokenFormat.UNSPECIFIED, "scoped": TokenFormat.SCOPED, "legacy": TokenFormat.LEGACY}
KINDS = {"oauth": TokenKind.OAUTH_APP, "pat": TokenKind.PERSONAL_ACCESS_TOKEN, "unspecified": TokenKind.UNSPECIFIED}
_TOKEN_FIELDS = ("scopes", "format", "issued_at", "kind")
_CASE_FIELDS = ("name", *_TOKEN_FIELDS, "no_token", "method", "path", "event", "subscribe", "level",
                "expect", "reason", "missing_scopes")
_LINE = "__line__"


class CaseFileError(ValueError):
    """The test file is unusable; the message starts with `file:line:`."""


class _LineLoader(yaml.SafeLoader):
    """A safe loader that records each mapping's line and refuses aliases."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(None, None, "aliases are not allowed", self.peek_event().start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        mapping = super().construct_mapping(node, deep=deep)
        mapping[_LINE] = node.start_mark.line + 1
        return mapping


@dataclass(frozen=True)
class Case:
    name: str
    line: int
    token: Token | None  # None: the request carries no token at all
    expect_allow: bool
    method: str = ""
    path: str = ""
    event: str = ""
    subscribe: tuple[str, ...] = ()
    level: str = ""
    reason: Reason | None = None
    missing_scopes: tuple[str, ...] | None = None

    @property
    def question(self) -> str:
        if self.event:
            return f"event {self.event}"
        if self.subscribe:
            return f"subscribe {','.join(self.subscribe)} at {self.level}"
        return f"{self.method} {self.path}"


@dataclass
class Result:
    case: Case
    allowed: bool
    reason: Reason
    missing_scopes: tuple[str, ...]
    message: str
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass(frozen=True)
class CaseFile:
    path: str
    catalog: str  # the catalog the file names, resolved against its directory; "" for the embedded one
    cases: tuple[Case, ...]


def _when(value: Any, where: str) -> dt.datetime:
    try:
        return parse_date(value)
    except ValueError as exc:
        raise CaseFileError(f"{where}: issued_at: {exc}") from None


def _strings(value: Any, key: str, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(value.replace(",", " ").split())
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CaseFileError(f"{where}: '{key}' must be a list of strings")
    return tuple(value)


def _choice(value: Any, choices: Mapping[str, Any], key: str, where: str) -> Any:
    if value not in choices:
        raise CaseFileError(f"{where}: '{key}' must be one of {', '.join(choices)}, not {value!r}")
    return choices[value]


def _case(raw: Any, defaults: Mapping[str, Any], where: str, index: int) -> Case:
    if not isinstance(raw, Mapping):
        raise CaseFileError(f"{where}: a case must be a mapping, not {type(raw).__name__}")
    where = f"{where.rsplit(':', 1)[0]}:{raw[_LINE]}"
    unknown = [k for k in raw if k not in (*_CASE_FIELDS, _LINE)]
    if unknown:
        raise CaseFileError(f"{where}: unknown field {unknown[0]!r} (expected one of: {', '.join(_CASE_FIELDS)})")
    item = {**defaults, **raw}
    questions = [k for k in ("path", "event", "subscribe") if k in item]
    if len(questions) != 1:
        raise CaseFileError(f"{where}: a case asks exactly one of method + path, event, subscribe")
    if item.get("expect") not in ("allow", "deny"):
        raise CaseFileError(f"{where}: 'expect' must be allow or deny, not {item.get('expect')!r}")
    issued = item.get("issued_at")
    token: Token | None = Token(_strings(item.get("scopes", []), "scopes", where),
                  _choice(item.get("format", "auto"), FORMATS, "format", where),
                  _when(issued, where) if issued is not None else None,
                  _choice(item.get("kind", "unspecified"), KINDS, "kind", where))
    if raw.get("no_token") is True:
        if any(k in raw for k in _TOKEN_FIELDS) or "path" not in item:
            raise CaseFileError(f"{where}: 'no_token: true' is an endpoint case without scopes, format, issued_at, kind")
        token = None
    elif "no_token" in raw and raw["no_token"] is not False:
        raise CaseFileError(f"{where}: 'no_token' must be true or false")
    reason = None
    if "reason" in item:
        name = str(item["reason"]).upper().removeprefix("REASON_")
        reason = _choice(name, Reason.__members__, "reason", where)
    missing = _strings(item["missing_scopes"], "missing_scopes", where) if "missing_scopes" in item else None
    method, path = str(item.get("method", "")), item.get("path", "")
    if "path" in item and (not method or not isinstance(path, str)):
        raise CaseFileError(f"{where}: an endpoint case needs 'method' and a string 'path'")
    subscribe = _strings(item["subscribe"], "subscribe", where) if "subscribe" in item else ()
    if subscribe and "level" not in item:
        raise CaseFileError(f"{where}: a subscribe case needs 'level' (organization, user, group...)")
    name = str(item.get("name") or f"case {index + 1}")
    return Case(name, int(raw[_LINE]), token, item["expect"] == "allow", method, str(path), str(item.get("event", "")),
                subscribe, str(item.get("level", "")), reason, missing)


def parse(text: str, path: str) -> CaseFile:
    """Read a test file's text, or raise `CaseFileError` naming the line of the problem."""
    try:
        data = yaml.load(text, Loader=_LineLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise CaseFileError(f"{path}:{line}: YAML error: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(data, Mapping) or not isinstance(data.get("cases"), list) or not data["cases"]:
        raise CaseFileError(f"{path}:1: a test file is a mapping with a non-empty 'cases' list")
    unknown = [k for k in data if k not in ("catalog", "defaults", "cases", _LINE)]
    if unknown:
        raise CaseFileError(f"{path}:1: unknown field {unknown[0]!r} (expected catalog, defaults, cases)")
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, Mapping) or any(k not in (*_TOKEN_FIELDS, _LINE) for k in defaults):
        raise CaseFileError(f"{path}:1: 'defaults' may only set {', '.join(_TOKEN_FIELDS)}")
    defaults = {k: v for k, v in defaults.items() if k != _LINE}
    catalog = data.get("catalog") or ""
    if not isinstance(catalog, str):
        raise CaseFileError(f"{path}:1: 'catalog' must be a file name")
    if catalog:
        catalog = str(Path(path).parent / catalog)
    cases = tuple(_case(raw, defaults, f"{path}:1", i) for i, raw in enumerate(data["cases"]))
    return CaseFile(path, catalog, cases)


def load(path: str) -> CaseFile:
    try:
        with open(path, "rb") as handle:
            raw = handle.read(files.MAX_BYTES + 1)
    except OSError as exc:
        raise CaseFileError(f"{path}:1: cannot read: {exc.strerror or exc}") from None
    if len(raw) > files.MAX_BYTES:
        raise CaseFileError(f"{path}:1: larger than {files.MAX_BYTES} bytes")
    try:
        return parse(raw.decode("utf-8"), path)
    except UnicodeDecodeError as exc:
        raise CaseFileError(f"{path}:1: not UTF-8: {exc}") from None


def run_case(engine: Engine, case: Case, source: str) -> Result:
    """Ask the engine the case's question and compare; `RequestError` becomes a `CaseFileError`."""
    try:
        if case.token is None:
            answer: Any = engine.check(None, case.method, case.path)
        elif case.event:
            answer = engine.check_delivery(case.token, case.event)
        elif case.subscribe:
            answer = engine.check_subscription(case.token, case.subscribe, case.level)
        else:
            answer = engine.check(case.token, case.method, case.path)
    except RequestError as exc:
        raise CaseFileError(f"{source}:{case.line}: {exc}") from None
    result = Result(case, answer.allowed, answer.reason, tuple(answer.missing_scopes), answer.message)
    if answer.allowed != case.expect_allow:
        result.failures.append(f"expected {'allow' if case.expect_allow else 'deny'}, got "
                               f"{'allow' if answer.allowed else 'deny'} ({answer.reason.name}: {answer.message})")
    if case.reason is not None and answer.reason != case.reason:
        result.failures.append(f"expected reason {case.reason.name}, got {answer.reason.name}")
    if case.missing_scopes is not None and set(case.missing_scopes) != set(answer.missing_scopes):
        result.failures.append(f"expected missing scopes [{' '.join(case.missing_scopes)}], "
                               f"got [{' '.join(answer.missing_scopes)}]")
    return result


def run(engine: Engine, tests: CaseFile) -> list[Result]:
    return [run_case(engine, case, tests.path) for case in tests.cases]


def junit(results: list[Result], suite: str, catalog: str) -> bytes:
    """JUnit XML, the report format CI systems read (one testsuite, one testcase per case)."""
    failed = sum(1 for r in results if not r.passed)
    root = ElementTree.Element("testsuites", tests=str(len(results)), failures=str(failed))
    node = ElementTree.SubElement(root, "testsuite", name=suite, tests=str(len(results)), failures=str(failed),
                                  errors="0", skipped="0")
    for result in results:
        case = ElementTree.SubElement(node, "testcase", name=result.case.name, classname=catalog,
                                      file=suite, line=str(result.case.line))
        if not result.passed:
            failure = ElementTree.SubElement(case, "failure", message="; ".join(result.failures))
            failure.text = f"{result.case.question}\n" + "\n".join(result.failures)
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)
