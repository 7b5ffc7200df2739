"""Check cost with any-of requirements and rich path templates, by catalog size.

    python -m bench.templates [--sizes 100,1000,10000] [--calls 20000]

Each synthetic resource (bench/synthetic.py's shape) gains a suffixed item (`/{id}.json`), a
nested file with a literal around a parameter (`thumbnail.{ext}`), a custom verb (`{id}:cancel`)
and a multi-segment name (`{name=**}:publish`), and every read endpoint takes `any_of` two
alternatives. The questions are concrete paths of those templates, decided in process with the
decision memo warm, so the figure is the path match plus the scope test: it should not grow with
the number of endpoints. Sizes take turns (10 rounds). Prints one JSON object: median and p99 ns per check by size.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

from scopesvc.policy import Engine, Token, compile_catalog

from . import synthetic


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


def measure(sizes: list[int], calls: int, turns: int = 10) -> dict[int, dict[str, float]]:
    """Per-check nanoseconds by size; the sizes take turns so the machine's other load reaches all alike."""
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
    out = {}
    for size, values in samples.items():
        values.sort()
        out[size] = {"endpoints": setups[size][0], "median_ns": round(statistics.median(values)),
                     "p99_ns": round(values[int(len(values) * 0.99) - 1])}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--calls", type=int, default=20000)
    args = parser.parse_args()
    print(json.dumps(measure([int(size) for size in args.sizes.split(",")], args.calls), indent=1))


if __name__ == "__main__":
    main()
