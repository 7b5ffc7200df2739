"""The policy core in process: decision cost, a decision cache, and catalogs of 1k-100k endpoints."""

from __future__ import annotations

import cProfile
import io
import json
import pstats
import subprocess
import sys
from typing import Any

from scopesvc.catalog import files as catalog_files
from scopesvc.policy import Engine

from .. import inprocess, synthetic, tools, workload
from ..context import Context
from ..report import target_rows, trim_pstats

NAME = "core"
TITLE = "The policy core in process"


def run(ctx: Context) -> dict[str, Any]:
    rounds = 20 if ctx.settings.quick else 300
    default = Engine(catalog_files.load_default())
    cases = [(c.token, c.method, c.path) for c in workload.full_mix(default.catalog)]
    result: dict[str, Any] = {"default_cached": inprocess.cached_decision_ns(default, rounds),
                              "endpoints": len(default.catalog.endpoints)}
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(rounds):
        for args in cases:
            default.check(*args)
    profile.disable()
    text = io.StringIO()
    pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(12)
    result["profile"] = trim_pstats(text.getvalue())
    result["sizes"] = {}
    engines: dict[Any, Engine] = {"default": default}
    for size in ctx.settings.catalog_sizes:
        path = synthetic.write(size, ctx.workdir / f"synthetic-{size}.json")
        load = json.loads(subprocess.run([sys.executable, "-m", "bench.inprocess", "load", str(path)],
                                         capture_output=True, text=True, check=True, cwd=tools.ROOT).stdout)
        engines[size] = Engine(catalog_files.load_file(path))
        load["file_mib"] = path.stat().st_size / 2**20
        result["sizes"][size] = load
    decisions = inprocess.decision_ns(engines, len(cases) * rounds)  # the default's mix `rounds` times over
    result["default"] = decisions.pop("default")
    for size, decision in decisions.items():
        result["sizes"][size]["decision"] = decision
    return result


def targets(results: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    d = results["default"]["median"] / 1000
    out = [("in-process decision median <= 2 us (default catalog)", f"{d:.2f} us", f"{d / 2:.2f}x of 2 us", d <= 2)]
    big = results["sizes"].get(100_000)
    if big:
        b = big["decision"]["median"] / 1000
        out.append(("decision median at 100,000 endpoints <= 1.5x the default's", f"{b:.2f} us vs {d:.2f} us",
                    f"{b / d:.2f}x", b <= 1.5 * d))
        out.append(("100,000-endpoint catalog loads and compiles in <= 2 s", f"{big['total_s']:.2f} s",
                    f"{big['total_s'] / 2:.2f}x of 2 s", big["total_s"] <= 2))
    return out


def report(results: dict[str, Any], ctx: Context) -> list[str]:
    d, c = results["default"], results["default_cached"]
    lines = target_rows(targets(results)) + [
        "",
        "### Decision cost",
        "",
        f"`Engine.check(token, method, path)` over the full mix ({d['cases']} questions; for a synthetic catalog, "
        "its 500 sampled endpoints asked by every token kind that applies), each call timed with `perf_counter_ns` "
        "(its own cost included). The catalogs take turns, 10 each, so the machine's other load reaches all alike.",
        "",
        "| catalog | endpoints | median us | p99 us | mean us |",
        "|---|---:|---:|---:|---:|",
        f"| default (Calendly) | {results['endpoints']} | {d['median'] / 1000:.2f} | {d['p99'] / 1000:.2f} | "
        f"{d['mean'] / 1000:.2f} |",
    ]
    for size, s in results["sizes"].items():
        x = s["decision"]
        lines.append(f"| synthetic | {int(size):,} | {x['median'] / 1000:.2f} | {x['p99'] / 1000:.2f} | "
                     f"{x['mean'] / 1000:.2f} |")
    lines += [
        "",
        f"A `cachetools.LRUCache` keyed on the whole question, every call a hit: median {c['median'] / 1000:.2f} us "
        f"against {d['median'] / 1000:.2f} us uncached ({d['median'] / c['median']:.1f}x).",
        "",
        "### Catalog load and compile (synthetic catalogs, JSON, a fresh process each)",
        "",
        "| endpoints | file MiB | parse s | compile s | total s | memory added MiB |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for size, s in results["sizes"].items():
        lines.append(f"| {int(size):,} | {s['file_mib']:.1f} | {s['parse_s']:.3f} | {s['compile_s']:.3f} | "
                     f"{s['total_s']:.3f} | {s['rss_mib']:.0f} |")
    lines += [
        "",
        "Synthetic catalogs (`python -m bench.synthetic N FILE`): N/10 REST resources of 10 endpoints each "
        "(collection, item, nested items, an action), templates 1-4 segments deep mixing static and `{param}` "
        "segments, scopes `g<k>:read|write` shared by resources (at most 250 groups).",
        "",
        "### Profile",
        "",
        "cProfile of `Engine.check` over the mix (sorted by own time):",
        "",
        "```",
        results["profile"],
        "```",
    ]
    missed = [name for name, _, _, ok in targets(results) if not ok]
    if any("decision median" in name for name in missed):
        lines += ["", "Not met: see the profile (splitting the path and walking the trie, the token format and "
                  "unknown-scope checks, the lookup of the reusable answer)."]
    if any("loads" in name for name in missed):
        lines += ["", "Not met: compile time is per-endpoint validation and trie insertion in Python."]
    return lines


def summary(results: dict[str, Any]) -> list[str]:
    return [f"[{'met' if ok else 'NOT MET'}] {name}: {measured} ({ratio})" for name, measured, ratio, ok in
            targets(results)]
