"""Where the exported configuration's cost goes: Envoy's instructions per request, part by part.

CPU time per answer (`./bench/run export`) moves by about 5 us between rounds on this shared
2-core machine, as much as some parts of the export cost, so removing one part at a time and
timing it cannot tell those parts apart. The instructions a request costs can: Envoy runs under
callgrind, which counts every instruction it executes (all threads), and for the same binary,
configuration and requests the count repeats whatever else the machine is doing (repeated runs
here agreed to within 0.03%). A count is not
a time (a cache miss costs more than an instruction), so this section explains the `export`
section's CPU figures and does not replace them.

Each configuration is `bench.export.config` for jwt_authn alone or for the export, or the export
with one part taken out, built from the export's own output. Three more rows measure other ways to
decide in Envoy: the rewrite-header checks as one CEL expression, and jwt_authn followed by a Lua
filter, empty or reading only what any scripted decision must read (the path and the token's
scope). Requests go one at a time over one keep-alive HTTP/1.1 connection, after a warm-up; the
counters are zeroed before each load and read after it, and every answer's status is checked.
"""

from __future__ import annotations

import copy
import http.client
import itertools
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from scopesvc.export import envoy as exported

from . import export, servers, tools

WARM_UP, REQUESTS = 100, 600
ALLOWED = [path for path, allowed in export.REQUESTS if allowed]
DENIED = [path for path, allowed in export.REQUESTS if not allowed]
_TOTAL = re.compile(r"^(?:summary|totals): (\d+)", re.MULTILINE)


def _hcm(cfg: dict[str, Any]) -> dict[str, Any]:
    return cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]


def _decision(cfg: dict[str, Any]) -> dict[str, Any]:
    """The export's decision matcher (the `scopesvc.decide` filter's)."""
    decide = next(f for f in _hcm(cfg)["http_filters"] if f["name"] == "scopesvc.decide")
    return decide["typed_config"]["shadow_matcher"]


def _action_name(on_match: dict[str, Any]) -> str:
    return on_match.get("action", {}).get("typed_config", {}).get("name", "")


def _without_refusal(name: str) -> Callable[[dict[str, Any]], None]:
    """Takes out the decision's first check named `name` (the rewrite headers or the path grammar)."""
    def change(cfg: dict[str, Any]) -> None:
        checks = _decision(cfg)["matcher_list"]["matchers"]
        checks[:] = [check for check in checks if _action_name(check["on_match"]) != name]
    return change


def _without_token_requirement(cfg: dict[str, Any]) -> None:
    """Every endpoint allowed without looking at the token: each endpoint's requirement (allow if
    the payload satisfies it, else deny, both under the endpoint's name) becomes a plain allow."""
    def walk(node: Any) -> Iterator[dict[str, Any]]:
        if isinstance(node, dict):
            yield node
            for value in node.values():
                yield from walk(value)
        elif isinstance(node, list):
            for value in node:
                yield from walk(value)

    for node in list(walk(_decision(cfg))):
        inner = node.get("matcher")
        if not isinstance(inner, dict) or "matcher_list" not in inner:
            continue
        matchers, otherwise = inner["matcher_list"]["matchers"], inner.get("on_no_match", {})
        if len(matchers) == 1 and _action_name(matchers[0]["on_match"]) == _action_name(otherwise) != "":
            node.clear()
            node.update(matchers[0]["on_match"])


def _without_local_replies(cfg: dict[str, Any]) -> None:
    del _hcm(cfg)["local_reply_config"]


def _after_jwt_authn(name: str, typed_config: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    """jwt_authn and one more filter right after it (before the router)."""
    def change(cfg: dict[str, Any]) -> None:
        _hcm(cfg)["http_filters"].insert(1, {"name": name, "typed_config": typed_config})
    return change


# What any RBAC decision costs at least: one RBAC filter that allows everything.
_with_trivial_rbac = _after_jwt_authn("envoy.filters.http.rbac", {
    "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
    "rules": {"action": "ALLOW", "policies": {"any": {"permissions": [{"any": True}], "principals": [{"any": True}]}}}})


def _with_lua(code: str) -> Callable[[dict[str, Any]], None]:
    """The floor of a decision scripted in Envoy (its Lua filter) instead of compiled to RBAC."""
    return _after_jwt_authn("envoy.filters.http.lua", {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
        "default_source_code": {"inline_string": code}})


LUA_EMPTY = "function envoy_on_request(handle) end"
# What any scripted decision must read: the path, and the verified token's scope claim.
LUA_READS = """function envoy_on_request(handle)
  local path = handle:headers():get(":path")
  local jwt = handle:streamInfo():dynamicMetadata():get("envoy.filters.http.jwt_authn")
  local scope = jwt and jwt.jwt_payload and jwt.jwt_payload.scope
end"""


def _any_header_cel(names: list[str]) -> dict[str, Any]:
    """`'a' in request.headers || 'b' in request.headers || ...` as a parsed CEL expression (Envoy's
    CEL matcher takes no expression text), the ORs as a balanced tree."""
    ids = itertools.count(1)

    def tree(part: list[str]) -> dict[str, Any]:
        if len(part) > 1:
            return {"id": next(ids), "call_expr": {"function": "_||_", "args": [
                tree(part[:len(part) // 2]), tree(part[len(part) // 2:])]}}
        headers = {"id": next(ids), "select_expr": {"operand": {"id": next(ids), "ident_expr": {"name": "request"}},
                                                    "field": "headers"}}
        return {"id": next(ids), "call_expr": {"function": "@in", "args": [
            {"id": next(ids), "const_expr": {"string_value": part[0]}}, headers]}}
    return {"expr": tree(names)}


def _rewrite_check_as_cel(cfg: dict[str, Any]) -> None:
    """The rewrite-header checks as one CEL expression instead of one header lookup per name."""
    check = next(c for c in _decision(cfg)["matcher_list"]["matchers"] if _action_name(c["on_match"]) == exported.REWRITE)
    check["predicate"] = {"single_predicate": {
        "input": {"name": "envoy.matching.inputs.cel_data_input",
                  "typed_config": {"@type": "type.googleapis.com/xds.type.matcher.v3.HttpAttributesCelMatchInput"}},
        "custom_match": {"name": "envoy.matching.matchers.cel_matcher", "typed_config": {
            "@type": "type.googleapis.com/xds.type.matcher.v3.CelMatcher",
            "expr_match": {"parsed_expr": _any_header_cel(exported.rewrite_header_names())}}}}}


Load = tuple[str, list[str], int]  # its name, the paths sent in turn, the status class every answer must have
ALLOWED_LOAD: Load = ("allowed", ALLOWED, 2)
DENIED_LOAD: Load = ("denied", DENIED, 4)
JWT_ALONE, EXPORTED = "Envoy + jwt_authn", "exported RBAC + jwt_authn"
WITHOUT = "exported, without "  # the rows that take one part out of the export
LUA = JWT_ALONE + " + "  # the rows that add a Lua filter instead of the export
# (label, bench.export.config kind, the part taken out or put in, the loads measured)
CONFIGS: list[tuple[str, str, Callable[[dict[str, Any]], None] | None, list[Load]]] = [
    (JWT_ALONE, "jwt", None, [ALLOWED_LOAD]),
    ("Envoy + jwt_authn + one RBAC filter allowing everything", "jwt", _with_trivial_rbac, [ALLOWED_LOAD]),
    (EXPORTED, "exported", None, [ALLOWED_LOAD, DENIED_LOAD]),
    (WITHOUT + "the rewrite-header checks", "exported", _without_refusal(exported.REWRITE), [ALLOWED_LOAD]),
    (WITHOUT + "the path grammar", "exported", _without_refusal(exported.MALFORMED), [ALLOWED_LOAD]),
    (WITHOUT + "the token requirement", "exported", _without_token_requirement, [ALLOWED_LOAD]),
    (WITHOUT + "local_reply_config", "exported", _without_local_replies, [ALLOWED_LOAD, DENIED_LOAD]),
    # Other ways to decide in Envoy, each at its floor or with one part swapped in.
    (EXPORTED + ", the rewrite-header checks as one CEL expression", "exported", _rewrite_check_as_cel,
     [ALLOWED_LOAD]),
    (LUA + "an empty Lua filter", "jwt", _with_lua(LUA_EMPTY), [ALLOWED_LOAD]),
    (LUA + "a Lua filter reading the path and the token's scope", "jwt", _with_lua(LUA_READS), [ALLOWED_LOAD]),
]


def _control(option: str, proc: subprocess.Popen) -> None:
    """callgrind_control `option` for Envoy's process (it exits 0 even when it found no such process)."""
    done = subprocess.run(["callgrind_control", option, str(proc.pid)], capture_output=True, text=True, timeout=120,
                          check=False)
    if "Error" in done.stdout + done.stderr:
        raise RuntimeError(f"callgrind_control {option}: {(done.stdout + done.stderr).strip()}")


def _counted(proc: subprocess.Popen, out: Path, step: int) -> int:
    """Instructions since the last zeroing: callgrind_control dumps them as `<out>.<step>`."""
    _control("-d", proc)
    dump = Path(f"{out}.{step}")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = _TOTAL.search(dump.read_text()) if dump.exists() else None
        if found:
            return int(found.group(1))
        time.sleep(0.2)
    raise RuntimeError(f"callgrind wrote no totals to {dump}")


def _measure(binary: Path, workdir: Path, label: str, cfg: dict[str, Any], header: str,
             loads: list[Load]) -> dict[str, Any]:
    port = servers.free_port()
    cfg["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"] = port
    stem = workdir / f"cost-{port}"
    out = Path(f"{stem}.out")
    Path(f"{stem}.yaml").write_text(yaml.safe_dump(cfg))
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", str(binary), "-c", f"{stem}.yaml",
           "--disable-hot-restart", "--concurrency", "1", "--log-level", "warn", "--base-id", str(port)]
    name, value = header.split(": ", 1)
    with open(f"{stem}.log", "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        servers.wait_for_port(port, proc, timeout=600)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        result: dict[str, Any] = {"label": label, "loads": {}, "wrong": []}

        def send(paths: list[str], count: int, status: int) -> None:
            for i in range(count):
                conn.request("GET", paths[i % len(paths)], headers={name: value})
                answer = conn.getresponse()
                answer.read()
                if answer.status // 100 != status:
                    result["wrong"].append(f"{paths[i % len(paths)]}: {answer.status}, expected {status}xx")

        for step, (load, paths, status) in enumerate(loads, start=1):
            send(paths, WARM_UP, status)
            _control("-z", proc)
            send(paths, REQUESTS, status)
            result["loads"][load] = _counted(proc, out, step) / REQUESTS
        conn.close()
        return result
    finally:
        proc.terminate()
        proc.wait(120)


def section(workdir: Path) -> dict[str, Any]:
    binary = tools.envoy_binary()
    if binary is None:
        return {"note": "Envoy not installed (scripts/install-test-tools puts it in .tools/envoy-venv); not run.",
                "rows": []}
    if tools.valgrind() is None:
        return {"note": "valgrind not installed (Debian's valgrind); not run.", "rows": []}
    catalog, options, header = export.setup(workdir)
    jobs = []
    for label, kind, change, loads in CONFIGS:
        cfg = copy.deepcopy(export.config(kind, 0, catalog, options))
        if change is not None:
            change(cfg)
        jobs.append((label, cfg, loads))
    # Two at a time (this machine's cores): counts do not depend on what runs beside them.
    with ThreadPoolExecutor(max_workers=2) as pool:
        rows = list(pool.map(lambda job: _measure(binary, workdir, job[0], job[1], header, job[2]), jobs))
    note = (f"{tools.version([str(binary), '--version']).strip()} under `valgrind --tool=callgrind`, one worker; "
            f"{REQUESTS} requests per load after {WARM_UP} to warm up, one at a time on one HTTP/1.1 connection, "
            f"with one RS256 token ({export.SCOPES}). Allowed: GET {', '.join(ALLOWED)}; denied: GET "
            f"{', '.join(DENIED)}. {tools.version(['valgrind', '--version']).strip()}.")
    return {"note": note, "rows": rows}
