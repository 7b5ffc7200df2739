"""Where the exported configuration's cost goes: Envoy's instructions per request, part by part."""

from __future__ import annotations

from typing import Any

from .. import export_cost
from ..context import Context

NAME = "export-cost"
TITLE = "Decisions in the data plane: where the exported RBAC's cost goes"


def run(ctx: Context) -> dict[str, Any]:
    if ctx.settings.quick:
        return {"note": "Not run by --quick.", "rows": []}
    return export_cost.section(ctx.workdir)


def correct(results: dict[str, Any]) -> bool:
    return not any(row["wrong"] for row in results["rows"])


def report(results: dict[str, Any], ctx: Context) -> list[str]:
    rows = results["rows"]
    lines = [results["note"]]
    if not rows:
        return lines
    by_label = {row["label"]: row["loads"] for row in rows}
    base, exported = by_label[export_cost.JWT_ALONE]["allowed"], by_label[export_cost.EXPORTED]
    head = ("| configuration | instructions per allowed request | vs jwt_authn alone | "
            "instructions per denied request | vs jwt_authn alone |")
    lines += ["", head, "|---|---:|---:|---:|---:|"]
    for row in rows:
        cells = []
        for load in ("allowed", "denied"):
            count = row["loads"].get(load)
            cells += [f"{count:,.0f}", f"{count - base:+,.0f}"] if count is not None else ["-", "-"]
        wrong = f" WRONG: {row['wrong'][:2]}" if row["wrong"] else ""
        lines.append(f"| {row['label']} | " + " | ".join(cells) + " |" + wrong)
    lines += ["", "What each part costs, this run (the export's count less the count without it, per request):"]
    for label, loads in by_label.items():
        if label.startswith(export_cost.WITHOUT):
            lines += [f"- {label.removeprefix(export_cost.WITHOUT)} ({load}): {exported[load] - count:,.0f} "
                      f"of the export's {exported[load] - base:+,.0f}" for load, count in loads.items()]
    return lines


def summary(results: dict[str, Any]) -> list[str]:
    return [f"{row['label']}: " + ", ".join(f"{load} {count:,.0f}" for load, count in row["loads"].items())
            for row in results["rows"]]
