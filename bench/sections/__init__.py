"""The benchmark's sections: each measures one capability and writes its own part of BENCHMARKS.md.

`./bench/run [SECTION ...]` (default: all) runs the named sections and rewrites only their parts
of BENCHMARKS.md, each stamped with the run that measured it (commit, uncommitted changes, date,
machine, load, the exact command); the other sections stay as their own runs wrote them.

A section is a module here with:

    NAME = "grpc"                      # the word `./bench/run` takes and the section's marker in the file
    TITLE = "Check over gRPC"          # its heading in BENCHMARKS.md
    def run(ctx: Context) -> dict      # measure (bench.context.Context: settings, scratch dir, engine)
    def report(results, ctx) -> list[str]   # the section's Markdown body: figures only from `results`
    def correct(results) -> bool       # optional: False when an answer was wrong (the run exits 1)
    def summary(results) -> list[str]  # optional: lines for the console

Every figure a report prints must come from `results` (this run) or name its source and date.
Adding a section (e.g. `http`, `tokens`, `export`, `std`) is a new module plus one line in SECTIONS.
"""

from __future__ import annotations

from types import ModuleType

from . import core, envoy, export, export_cost, grpc, http, templates, tokens, tracing

SECTIONS: dict[str, ModuleType] = {module.NAME: module for module in (core, grpc, envoy, http, tokens, tracing,
                                                                      templates, export, export_cost)}
