"""Check cost with any-of requirements and rich path templates, by catalog size.

Each synthetic resource (bench/synthetic.py's shape) gains a suffixed item (`/{id}.json`), a
nested file with a literal around a parameter (`thumbnail.{ext}`), a custom verb (`{id}:cancel`)
and a multi-segment name (`{name=**}:publish`), and every read endpoint takes `any_of` two
alternatives. The questions are concrete paths of those templates, decided in process with the
decision memo warm, so the figure is the path match plus the scope test: it should not grow with
the number of endpoints. The sizes take turns.
"""

from __future__ import annotations

import time
from typing import Any

from scopesvc.policy import Engine, Token, compile_catalog

from .. import inprocess, synthetic
from ..context import Context

NAME = "templates"
TITLE = "Rich path templates and any-of requirements, by catalog size"


def catalog(endpoints: int) -> dict[str, Any]:
    doc = synthetic.catalog(endpoints)
    rich: list[dict[str, Any]] = []
    for i, endpoint in enumerate(doc["endpoints"]):
        if endpoint["method"] == "GET" and len(endpoint["scopes"]) == 1:
            group = endpoint["scopes"][0].split(":")[0]
            endpoint = {**endpoint, "any_of": [[f"{group}:write"], endpoint["scopes"]]}
            del endpoint["scopes"]
        rich.append(endpoint)
        if endpoint["method"] == "POST" and endpoint["path"].count("/") == 1:
            base, scopes = endpoint["path"], [f"g{i % synthetic.MAX_GROUPS}:write"]
            scopes = [s for s in scopes if {"name": s} in doc["scopes"]] or [doc["scopes"][0]["name"]]
            rich += [
                {"method": "GET", "path": f"{base}/{{id}}.json", "scopes": scopes},
                {"method": "GET", "path": f"{base}/{{id}}/files/thumbnail.{{ext}}", "scopes": scopes},
                {"method": "POST", "path": f"{base}/{{id}}:cancel", "scopes": scopes},
                {"method": "POST", "path": f"{base}/{{name=**}}:publish", "scopes": scopes},
            ]
    doc["endpoints"] = rich
    return doc


def questions(doc: dict[str, Any], count: int) -> list[tuple[str, str]]:
    picked = doc["endpoints"][:: max(1, len(doc["endpoints"]) // count)][:count]
    out = []
    for endpoint in picked:
        path = endpoint["path"].replace("{name=**}", "a/b/c").replace("{ext}", "png")
        out.append((endpoint["method"], path.replace("{id}", "AB12").replace("{item_id}", "7")))
    return out


def run(ctx: Context) -> dict[str, Any]:
    """Per-check nanoseconds by size (each sample the mean over the 200 questions), the sizes taking turns."""
    sizes, calls, turns = ([100, 1000], 2_000, 2) if ctx.settings.quick else ([100, 1000, 10_000], 20_000, 10)
    setups = {}
    for size in sizes:
        doc = catalog(size)
        engine = Engine(compile_catalog(doc))
        token = Token(tuple(s["name"] for s in doc["scopes"][:4]))
        asked = questions(doc, 200)
        for method, path in asked:  # warm the decision memo
            engine.check(token, method, path)
        setups[size] = (len(doc["endpoints"]), engine, token, asked)
    samples: dict[int, list[float]] = {size: [] for size in sizes}
    for _ in range(turns):
        for size, (_, engine, token, asked) in setups.items():
            for _ in range(max(1, calls // turns // len(asked))):
                start = time.perf_counter_ns()
                for method, path in asked:
                    engine.check(token, method, path)
                samples[size].append((time.perf_counter_ns() - start) / len(asked))
    return {size: {"endpoints": setups[size][0], **inprocess.summarize(values)} for size, values in samples.items()}


def report(results: dict[int, dict[str, float]], ctx: Context) -> list[str]:
    lines = ["| synthetic size | endpoints with rich templates | median ns/check | p99 ns/check |", "|---:|---:|---:|---:|"]
    lines += [f"| {size:,} | {r['endpoints']:,} | {r['median']:,.0f} | {r['p99']:,.0f} |" for size, r in results.items()]
    return [("Concrete paths of suffix, literal-around-parameter, custom-verb and `{name=**}` templates, any-of "
             "reads, decided in process with the decision memo warm (each sample the mean over 200 questions)."),
            "", *lines]


def summary(results: dict[int, dict[str, float]]) -> list[str]:
    return [f"{size}: median {r['median']:.0f} ns, p99 {r['p99']:.0f} ns per check" for size, r in results.items()]
