"""`scopesvc catalog test`: the shipped Calendly tests pass, a wrong catalog fails them, bad files exit 2."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

import pytest

from scopesvc.catalog import files as catalog_files
from scopesvc.cli import main

CALENDLY_TESTS = str(catalog_files.builtin_path("calendly.tests.yaml"))


def test_the_embedded_catalog_passes_its_tests(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junit = tmp_path / "junit.xml"
    assert main(["catalog", "test", CALENDLY_TESTS, "--junit", str(junit), "-v"]) == 0
    out = capsys.readouterr().out
    assert "0 failed" in out and out.count("PASS ") >= 45
    suite = ElementTree.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "0" and len(suite.findall("testcase")) >= 45


def test_a_changed_catalog_fails_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = catalog_files.builtin_path("calendly.yaml").read_text()
    wrong = text.replace("    path: /users/me\n    scopes: [users:read]", "    path: /users/me\n    scopes: [users:write]")
    wrong = wrong.replace("  - name: users:read\n", "  - name: users:write\n  - name: users:read\n", 1)
    assert wrong.count("users:write") == 2
    catalog = tmp_path / "wrong.yaml"
    catalog.write_text(wrong)
    junit = tmp_path / "junit.xml"
    assert main(["catalog", "test", CALENDLY_TESTS, "--catalog", str(catalog), "--junit", str(junit)]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "the current user" in out and "expected allow, got deny" in out
    failures = ElementTree.parse(junit).getroot().findall(".//failure")
    assert len(failures) >= 4  # every /users/me case


CASE = "  - {name: one, scopes: [users:read], method: GET, path: /users/me, expect: allow}\n"


@pytest.mark.parametrize(("text", "message"), [
    ("cases:\n" + CASE + "  - {name: two, method: GET, path: /users/me, expect: maybe}\n", ":3: 'expect' must be allow"),
    ("cases:\n" + CASE + "  - {name: t, method: GET, path: /x, expect: deny, color: red}\n", ":3: unknown field 'color'"),
    ("cases:\n" + CASE + "  - {name: t, event: e, path: /x, method: GET, expect: deny}\n", ":3: a case asks exactly"),
    ("cases:\n" + CASE + "  - {name: t, method: GET, path: /x, expect: deny, reason: NOPE}\n", ":3: 'reason' must be"),
    ("cases:\n" + CASE + "  - {name: t, format: odd, method: GET, path: /x, expect: deny}\n", ":3: 'format' must be"),
    ("cases:\n" + CASE + "  - {name: t, issued_at: soon, method: GET, path: /x, expect: deny}\n", ":3: issued_at"),
    ("cases:\n" + CASE + "  - {name: t, subscribe: [invitee.created], level: galaxy, expect: deny}\n",
     ":3: subscription_scope"),
    ("cases:\n" + CASE + "  - {name: t, method: GET, path: /x, expect: deny\n", ":4: YAML error"),
    ("cases: []\n", ":1: a test file is a mapping"),
    ("cases:\n" + CASE + "  - {no_token: true, scopes: [a], method: GET, path: /x, expect: deny}\n", ":3: 'no_token: true'"),
    ("catalog: nowhere.yaml\ncases:\n" + CASE, "cannot read"),
])
def test_bad_test_files_exit_2_with_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str,
                                             message: str) -> None:
    tests = tmp_path / "t.yaml"
    tests.write_text(text)
    assert main(["catalog", "test", str(tests)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
