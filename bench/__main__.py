"""Run benchmark sections and rewrite their parts of BENCHMARKS.md: `./bench/run [SECTION ...]`.

With no section named, every section runs. `--quick` is the few-second smoke run CI uses (it
writes no file unless `--out` is given). `--note TEXT` adds a note to each rewritten section's
stamp (e.g. that the machine was busy with other work). The sections are in bench/sections/.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from scopesvc.catalog import files as catalog_files
from scopesvc.policy import Engine

from . import document, report, tools
from .context import Context, Settings
from .sections import SECTIONS


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="./bench/run", description=__doc__.splitlines()[0])
    parser.add_argument("sections", nargs="*", metavar="SECTION", help=f"default: all of {', '.join(SECTIONS)}")
    parser.add_argument("--list", action="store_true", help="name the sections and exit")
    parser.add_argument("--quick", action="store_true", help="a few seconds per section, smaller loads")
    parser.add_argument("--out", type=Path, help="report file (default BENCHMARKS.md; with --quick none)")
    parser.add_argument("--json", type=Path, help="also write the raw results as JSON")
    parser.add_argument("--note", default="", help="a note for the stamp of every section this run rewrites")
    parser.add_argument("--workers", type=int, help="grpc: also measure `serve --workers N` (default 2)")
    parser.add_argument("--no-cerbos", dest="cerbos", action="store_false", help="grpc: skip the Cerbos comparison")
    cfg = parser.parse_args(argv)
    if cfg.list:
        for name, module in SECTIONS.items():
            print(f"{name:<{max(map(len, SECTIONS))}} {module.TITLE}")
        return 0
    unknown = [name for name in cfg.sections if name not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; sections: {', '.join(SECTIONS)}")
    names = cfg.sections or list(SECTIONS)
    settings = Settings.smoke() if cfg.quick else Settings()
    if cfg.workers is not None:
        settings.workers = cfg.workers
    settings.cerbos = settings.cerbos and cfg.cerbos
    out = cfg.out or (None if cfg.quick else tools.ROOT / "BENCHMARKS.md")

    results: dict[str, Any] = {}
    rendered: dict[str, str] = {}
    correct = True
    with tempfile.TemporaryDirectory(prefix="scopesvc-bench-") as tmp:
        ctx = Context(settings, Path(tmp), Engine(catalog_files.load_default()))
        for name in names:
            module = SECTIONS[name]
            started, before = time.time(), document.loadavg()
            results[name] = module.run(ctx)
            stamp = document.Stamp(started, time.time() - started, document.command(argv), before,
                                   document.loadavg(), cfg.note)
            rendered[name] = document.render(name, module.TITLE, stamp, module.report(results[name], ctx))
            ok = getattr(module, "correct", lambda _: True)(results[name])
            correct = correct and ok
            for line in getattr(module, "summary", lambda _: [])(results[name]):
                print(f"{name}: {line}")
            print(f"{name}: every answer correct: {ok}")
    if out:
        old = out.read_text() if out.exists() else ""
        out.write_text(document.rewrite(old, rendered, SECTIONS))
    if cfg.json:
        cfg.json.write_text(json.dumps(report.jsonable(results), indent=1))
    return 0 if correct else 1


if __name__ == "__main__":
    sys.exit(main())
