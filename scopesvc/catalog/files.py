"""Reading catalog documents from files or the package (the I/O half of loading a catalog).

YAML is parsed with the C safe loader when available. Aliases and anchors are refused (they
are how "billion laughs" documents blow up in memory), and so are files over `MAX_BYTES`.
JSON documents (by `.json` suffix or a leading `{`) are parsed with the json module.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ..policy import Catalog, CatalogError, compile_catalog

MAX_BYTES = 64 * 1024 * 1024
DEFAULT_CATALOG = "calendly.yaml"
_SafeLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _NoAliasLoader(yaml.SafeLoader):
    """A (pure Python) safe loader that rejects aliases; the C loader composes nodes itself."""

    def compose_node(self, parent: Any, index: Any) -> Any:  # pragma: no cover - exercised via YAML input
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "aliases are not allowed in a catalog", event.start_mark)
        return super().compose_node(parent, index)


def parse_document(text: bytes, source: str) -> Any:
    """Parse catalog bytes (YAML or JSON) into plain data, or raise `CatalogError`."""
    if len(text) > MAX_BYTES:
        raise CatalogError(source, [f"file is larger than {MAX_BYTES} bytes"])
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CatalogError(source, [f"not UTF-8: {exc}"]) from None
    if source.endswith(".json") or decoded.lstrip().startswith("{"):
        try:
            return json.loads(decoded)
        except json.JSONDecodeError as exc:
            raise CatalogError(source, [f"JSON syntax error at line {exc.lineno} column {exc.colno}: {exc.msg}"]) from None
        except RecursionError:
            raise CatalogError(source, ["JSON nested too deeply"]) from None
        except ValueError as exc:  # e.g. an integer beyond Python's digit limit
            raise CatalogError(source, [f"JSON value error: {exc}"]) from None
    if "&" in decoded or "*" in decoded:
        # Only pay for the alias-checking loader when the text could hold an anchor or alias.
        loader: type = _NoAliasLoader
    else:
        loader = _SafeLoader
    try:
        return yaml.load(decoded, Loader=loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        raise CatalogError(source, [f"YAML error: {exc}"]) from None
    except RecursionError:
        raise CatalogError(source, ["YAML nested too deeply"]) from None
    except ValueError as exc:  # an impossible timestamp (2026-13-45) or an integer beyond the digit limit
        raise CatalogError(source, [f"YAML value error: {exc}"]) from None


def load_bytes(text: bytes, source: str) -> Catalog:
    digest = hashlib.sha256(text).hexdigest()[:12]
    return compile_catalog(parse_document(text, source), source=source, digest=digest)


def load_file(path: str | Path) -> Catalog:
    """Load and compile a catalog file, or raise `CatalogError` (also for unreadable files)."""
    source = str(path)
    try:
        with open(path, "rb") as handle:
            text = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise CatalogError(source, [f"cannot read: {exc.strerror or exc}"]) from None
    return load_bytes(text, source)


def load_default() -> Catalog:
    """The embedded default catalog (the Calendly API v2 scope model)."""
    text = resources.files("scopesvc.catalog.builtin").joinpath(DEFAULT_CATALOG).read_bytes()
    return load_bytes(text, f"embedded:{DEFAULT_CATALOG}")


def builtin_path(name: str) -> Path:
    """The file of a catalog shipped in the package (`calendly.yaml`, `example-tasks.yaml`)."""
    return Path(__file__).parent / "builtin" / name


def load(path: str | Path | None) -> Catalog:
    """`load_file(path)`, or the embedded default when `path` is empty."""
    return load_file(path) if path else load_default()
