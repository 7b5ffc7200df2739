"""Bad input through catalog files and the command line: exit 2 with a message, or a deny (exit 1).

Never a traceback, never an allow. Catalog files cover YAML bombs (aliases, deep nesting),
huge files, wrong types in every section, impossible timestamps and encodings.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from scopesvc import cli
from scopesvc.catalog import files as catalog_files
from scopesvc.policy import CatalogError, Engine, Token

EXAMPLE = catalog_files.builtin_path("example-tasks.yaml").read_text()


def run_cli(*args: str | bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "scopesvc", *args], capture_output=True, timeout=60)


def in_process(capsys, *args: str) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    code = cli.main(list(args))
    out = capsys.readouterr()
    return code, out.out + out.err


def minimal(**overrides: object) -> dict:
    doc: dict = {"format": "scopesvc.catalog/v1", "name": "t", "scopes": [{"name": "a:read"}, {"name": "a:write"}],
                 "endpoints": [{"method": "GET", "path": "/a", "scopes": ["a:read"]}]}
    doc.update(overrides)
    return doc


BILLION_LAUGHS = "\n".join(
    ["format: scopesvc.catalog/v1", 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
)

BAD_FILES: dict[str, tuple[bytes, str]] = {
    "billion-laughs.yaml": (BILLION_LAUGHS.encode(), "aliases are not allowed"),
    "one-alias.yaml": (b"format: &f scopesvc.catalog/v1\nname: *f\n", "aliases are not allowed"),
    "merge-alias.yaml": (b"base: &b {name: x}\ncat:\n  <<: *b\n", "aliases are not allowed"),
    "deep-flow.yaml": (b"[" * 50_000 + b"]" * 50_000, "YAML syntax error"),
    "deep-block.yaml": ("".join(f"{' ' * i}k:\n" for i in range(3000)).encode(), "invalid catalog"),
    "deep.json": (b'{"a":' * 50_000 + b"1" + b"}" * 50_000, "nested too deeply"),
    "bad-date.yaml": (EXAMPLE.replace("oauth:\n", "oauth:\n  scopes_introduced_at: 2026-13-45\n").encode(),
                      "month must be in 1..12"),
    "year-zero.yaml": (EXAMPLE.replace("oauth:\n", "oauth:\n  scopes_introduced_at: 0000-01-01\n").encode(),
                       "out of range"),
    "bad-hour.yaml": (EXAMPLE.replace("oauth:\n", "oauth:\n  scopes_introduced_at: 2026-01-01T25:00:00Z\n").encode(),
                      "hour must be"),
    "bad-date-string.yaml": (EXAMPLE.replace("oauth:\n", "oauth:\n  scopes_introduced_at: 'soon'\n").encode(), "bad date"),
    "huge-int.yaml": (EXAMPLE.replace('revision: "3"', "revision: " + "9" * 5000).encode(), "value error"),
    "huge-int.json": (b'{"revision": ' + b"9" * 5000 + b"}", "value error"),
    "python-tag.yaml": (b"!!python/object/apply:os.system ['true']\n", "could not determine a constructor"),
    "binary-name.yaml": (EXAMPLE.replace("name: tasks-api", "name: !!binary aGVsbG8=").encode(), "must be a string"),
    "not-utf8.yaml": (b"format: scopesvc.catalog/v1\nname: \xff\xfe\n", "not UTF-8"),
    "utf16.yaml": ("format: x\n".encode("utf-16"), "UTF-16 text: save it as UTF-8"),
    "nul.yaml": (b"format: scopesvc\x00.catalog/v1\n", "control characters"),
    "empty.yaml": (b"", "the file is empty"),
    "list.yaml": (b"- a\n- b\n", "must be a mapping, not list"),
    "scalar.json": (b'"x"', "must be a mapping"),
    "complex-key.yaml": (b"? [a, b]\n: c\n", "unhashable"),
    "inf.yaml": (EXAMPLE.replace('revision: "3"', "revision: .inf").encode(), "'revision' must be a string"),
}

WRONG_TYPES: list[tuple[dict, str]] = [
    (minimal(scopes=5), "scopes: must be a list, not int"),
    (minimal(scopes=["a:read"]), "scopes[0]: must be a mapping, not str"),
    (minimal(scopes=[{"name": 7}]), "'name' must be a string, not int"),
    (minimal(scopes=[{"name": "a b"}]), "printable ASCII"),
    (minimal(scopes=[{"name": "x" * 201}]), "printable ASCII"),
    (minimal(scopes=[{"name": "a:read", "implies": "a:write"}]), "'implies' must be a list of strings"),
    (minimal(scopes=[{"name": "a:read", "implies": ["b"]}, {"name": "b", "implies": ["a:read"]}]), "implication cycle"),
    (minimal(scopes=[{"name": "a:read", "implies": ["a:read"]}]), "cannot imply itself"),
    (minimal(scopes=[{"name": "a:read"}, {"name": "a:read"}]), "duplicate scope"),
    (minimal(endpoints="GET /a"), "endpoints: must be a list, not str"),
    (minimal(endpoints=[{"method": "GET", "path": "/a", "scopes": "a:read"}]), "'scopes' must be a list of strings"),
    (minimal(endpoints=[{"method": "GET", "path": "/a"}]), "'scopes' is required"),
    (minimal(endpoints=[{"method": 1, "path": "/a", "scopes": []}]), "'method' must be a string, not int"),
    (minimal(endpoints=[{"method": "get", "path": "/a", "scopes": []}]), "bad method"),
    (minimal(endpoints=[{"method": "GET", "path": None, "scopes": []}]), "'path' is required"),
    (minimal(endpoints=[{"method": "GET", "path": "/a/../b", "scopes": []}]), "dot segment"),
    (minimal(endpoints=[{"method": "GET", "path": "/a/%2F", "scopes": []}]), "write templates unencoded"),
    (minimal(endpoints=[{"method": "GET", "path": "/a/{x", "scopes": []}]), "at most one parameter"),
    (minimal(endpoints=[{"method": "GET", "path": "/a;b", "scopes": []}]), "';' path parameter"),
    (minimal(endpoints=[{"method": "GET", "path": "a", "scopes": []}]), "must start with '/'"),
    (minimal(endpoints=[{"method": "GET", "path": "/a", "scopes": ["nope"]}]), "unknown scope 'nope'"),
    (minimal(endpoints=[{"method": "GET", "path": "/{x}", "scopes": []}, {"method": "GET", "path": "/{y}", "scopes": []}]),
     "conflicts with"),
    (minimal(hierarchy={"write_implies_read": "yes"}), "must be true or false"),
    (minimal(paths={"trailing_slash": True}), "must be 'strip' or 'strict'"),
    (minimal(paths=[]), "paths: must be a mapping, not list"),
    (minimal(oauth={"authorize_url": "javascript:alert(1)"}), "must be an http(s) URL"),
    (minimal(revision=1.5), "'revision' must be a string, not float"),
    (minimal(name=["x"]), "'name' must be a string, not list"),
    (minimal(format="scopesvc.catalog/v2"), "format: must be"),
    (minimal(surprise=1), "unknown field 'surprise'"),
    (minimal(webhooks={"subscribe_scope": "a:read", "events": [{"name": "E!", "scope": "a:read"}]}), "event name"),
    (minimal(features=[{"name": "f", "requires": ["GET /a/../a"]}]), "dot segment"),
]


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_catalog_files_are_refused_with_a_reason(tmp_path, capsys, name):
    content, reason = BAD_FILES[name]
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(CatalogError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        catalog_files.load_file(path)
    code, output = in_process(capsys, "catalog", "validate", str(path))
    assert code == 2 and "invalid catalog" in output and "Traceback" not in output


@pytest.mark.parametrize(("doc", "reason"), WRONG_TYPES, ids=[r for _, r in WRONG_TYPES])
def test_wrong_types_in_catalogs_are_refused_with_a_reason(tmp_path, capsys, doc, reason):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(CatalogError) as info:
        catalog_files.load_file(path)
    assert any(reason in issue for issue in info.value.issues), info.value.issues
    code, output = in_process(capsys, "catalog", "validate", str(path))
    assert code == 2 and reason in output


def test_huge_catalog_file_is_refused_without_reading_it_all(tmp_path, capsys):
    path = tmp_path / "huge.yaml"
    with open(path, "wb") as handle:
        handle.truncate(catalog_files.MAX_BYTES + 10)  # sparse: costs no disk
    code, output = in_process(capsys, "catalog", "validate", str(path))
    assert code == 2 and "larger than" in output


@pytest.mark.parametrize("target", ["/nonexistent/catalog.yaml", "DIR"])
def test_unreadable_catalogs_are_refused(tmp_path, capsys, target):
    code, output = in_process(capsys, "catalog", "validate", str(tmp_path) if target == "DIR" else target)
    assert code == 2 and "cannot read" in output


def test_server_refuses_to_start_on_a_bomb(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(BILLION_LAUGHS)
    result = run_cli("serve", "--port", "0", "--catalog", str(path))
    assert result.returncode == 2 and b"aliases are not allowed" in result.stderr and b"Traceback" not in result.stderr


def test_thousands_of_scopes_and_endpoints_decide_correctly():
    n = 5000
    doc = minimal(scopes=[{"name": f"s{i}:read"} for i in range(n)] + [{"name": f"s{i}:write"} for i in range(n)],
                  endpoints=[{"method": "GET", "path": f"/r{i}", "scopes": [f"s{i}:read"]} for i in range(n)]
                  + [{"method": "POST", "path": f"/r{i}", "scopes": [f"s{i}:write", f"s{(i + 1) % n}:read"]} for i in range(n)])
    catalog_path = json.dumps(doc).encode()
    engine = Engine(catalog_files.load_bytes(catalog_path, "big.json"))
    assert engine.check(Token(("s4999:write",)), "GET", "/r4999").allowed
    assert not engine.check(Token(("s4999:write",)), "GET", "/r4998").allowed
    assert not engine.check(Token(("s4999:write",)), "POST", "/r4999").allowed
    assert engine.check(Token(("s4999:write", "s0:read")), "POST", "/r4999").allowed
    assert engine.check(Token(tuple(f"s{i}:read" for i in range(1000))), "GET", "/r999").allowed


# -- the command line ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "code", "expect"),
    [
        (["check", "GET", "/users/../organizations/x", "--format", "legacy"], 1, "malformed path: dot segment"),
        (["check", "GET", "/users%2Fme", "--format", "legacy"], 1, "encoded slash"),
        (["check", "GET", "/users/me;x", "--format", "legacy"], 1, "';' path parameter"),
        (["check", "GET", "https://h/users/me", "--format", "legacy"], 1, "absolute-form"),
        (["check", "GET", "/users/me#f", "--format", "legacy"], 1, "fragment"),
        (["check", "GET", "/users\\me", "--format", "legacy"], 1, "backslash"),
        (["check", "GET", "/users/me\n", "--format", "legacy"], 1, "control"),
        (["check", "GET", "/users/" + "a" * 100_000, "--format", "legacy"], 1, "longer than"),
        (["check", "get", "/users/me", "--format", "legacy"], 1, "case-sensitive"),
        (["check", "GET", "/organizations/x", "-s", "organizations:read\x01"], 1, "unknown scopes"),
        (["check", "GET", "/users/me", "--issued-at", "yesterday"], 2, "not an ISO 8601"),
        (["check", "GET", "/users/me", "--issued-at", "2026-02-30"], 2, "not an ISO 8601"),
        (["check", "GET", "/users/me", "--format", "bogus"], 2, "invalid choice"),
        (["check", "GET"], 2, "required"),
        (["plan", "GET /users/../x"], 2, "dot segment"),
        (["plan", "\x00"], 2, "nor a named feature"),
        (["plan", "GET /users/me", "--client-id", "c", "--redirect-uri", "javascript:x"], 2, "redirect_uri"),
        (["diagnose", "GET", "/users/%2e%2e"], 2, "malformed path"),
        (["webhook", "--event", "INVITEE.CREATED", "--format", "legacy"], 1, "unknown webhook event"),
        (["migrate", "--issued-at", "0000-01-01"], 2, "not an ISO 8601"),
    ],
)
def test_cli_bad_input(capsys, args, code, expect):
    try:
        got, output = in_process(capsys, *args)
    except SystemExit as exc:  # argparse's own usage errors
        got, output = int(exc.code or 0), capsys.readouterr().err
    assert got == code and expect in output and "Traceback" not in output
    assert "ALLOW" not in output


@pytest.mark.parametrize("path", [b"/users/\xff", b"/\xc0\xae\xc0\xae/x", b"/users/me\xed\xa0\x80"])
def test_cli_invalid_utf8_arguments_are_usage_errors(path):
    # Exit 2, not 1: a script must not read a request it could not even pass as "denied".
    result = run_cli(b"check", b"GET", path, b"--format", b"legacy")
    assert result.returncode == 2, result.stderr
    assert b"argument 3" in result.stderr and b"is not valid UTF-8" in result.stderr and result.stdout == b""


def test_cli_bad_catalog_date_exits_2_not_a_traceback(tmp_path):
    # Regression: an impossible YAML timestamp used to escape as a bare ValueError and crash.
    path = tmp_path / "c.yaml"
    path.write_text(EXAMPLE.replace("oauth:\n", "oauth:\n  scopes_introduced_at: 2026-13-45\n"))
    result = run_cli("check", "GET", "/v2/me", "--catalog", str(path))
    assert result.returncode == 2 and b"month must be in 1..12" in result.stderr and b"Traceback" not in result.stderr


def test_cli_env_cannot_widen_a_decision(tmp_path):
    # Nothing in the environment turns a deny into an allow for the one-shot check command.
    env = {**os.environ, "SCOPESVC_DRY_RUN": "true", "SCOPESVC_CATALOG": str(tmp_path / "missing.yaml")}
    result = subprocess.run([sys.executable, "-m", "scopesvc", "check", "GET", "/organizations/x", "-s", "users:read"],
                            capture_output=True, timeout=60, env=env)
    assert result.returncode in (1, 2) and b"ALLOW" not in result.stdout
