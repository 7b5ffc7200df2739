"""Synthetic scope catalogs of any size, written as JSON (which loads far faster than YAML).

Shape: `resources` REST resources, each with a collection, an item and nested sub-resources, so
templates mix static and `{param}` segments at depths 1 to 4. Resources share scope groups
(`g{n}:read` / `g{n}:write`, at most 250 groups), as real APIs have far fewer scopes than endpoints.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

ENDPOINTS_PER_RESOURCE = 10
MAX_GROUPS = 250


def _resource_endpoints(r: int, group: int) -> list[dict[str, Any]]:
    base = f"/res{r}"
    read, write = [f"g{group}:read"], [f"g{group}:write"]
    routes = [
        ("GET", base, read), ("POST", base, write),
        ("GET", f"{base}/{{id}}", read), ("PATCH", f"{base}/{{id}}", write), ("DELETE", f"{base}/{{id}}", write),
        ("GET", f"{base}/{{id}}/items", read), ("POST", f"{base}/{{id}}/items", write),
        ("GET", f"{base}/{{id}}/items/{{item_id}}", read),
        ("DELETE", f"{base}/{{id}}/items/{{item_id}}", write),
        ("POST", f"{base}/{{id}}/actions/sync", read + write),
    ]
    return [
        {"method": m, "path": p, "scopes": s, "operation_id": f"res{r}_{i}"}
        for i, (m, p, s) in enumerate(routes)
    ]


def catalog(endpoints: int) -> dict[str, Any]:
    """A valid `scopesvc.catalog/v1` document with exactly `endpoints` endpoints."""
    resources = -(-endpoints // ENDPOINTS_PER_RESOURCE)
    groups = min(resources, MAX_GROUPS)
    scopes = [{"name": f"g{g}:{kind}"} for g in range(groups) for kind in ("read", "write")]
    eps: list[dict[str, Any]] = []
    for r in range(resources):
        eps.extend(_resource_endpoints(r, r % groups))
    return {
        "format": "scopesvc.catalog/v1",
        "name": f"synthetic-{endpoints}",
        "revision": "1",
        "oauth": {"scopes_introduced_at": "2020-01-01"},
        "hierarchy": {"write_implies_read": True},
        "scopes": scopes,
        "endpoints": eps[:endpoints],
    }


def write(endpoints: int, path: Path) -> Path:
    path.write_text(json.dumps(catalog(endpoints), separators=(",", ":")))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description="write a synthetic scope catalog as JSON")
    parser.add_argument("endpoints", type=int)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    write(args.endpoints, args.out)


if __name__ == "__main__":
    main()
