"""Compilers from a catalog to data-plane configuration: Envoy (`envoy`) and Istio (`istio`).

Each is a pure function, catalog in, configuration dicts out, that either encodes the whole
model or raises `ExportRefused` naming what the data plane cannot express faithfully: an export
never quietly decides less strictly, or differently, than the engine (docs/export.md).
"""

from __future__ import annotations

from collections.abc import Sequence


class ExportRefused(ValueError):
    """The catalog (or an option) asks for something the target cannot express faithfully."""

    def __init__(self, target: str, reasons: Sequence[str]) -> None:
        self.target = target
        self.reasons = tuple(reasons)
        shown = "\n  ".join(self.reasons)
        super().__init__(f"cannot export to {target} faithfully:\n  {shown}")
