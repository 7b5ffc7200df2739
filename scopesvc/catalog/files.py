"""Reading catalog documents from files or the package (the I/O half of loading a catalog).

YAML is parsed with the C safe loader when available. Aliases and anchors are refused (they
are how "billion laughs" documents blow up in memory), and so are files over `MAX_BYTES`.
JSON documents (by `.json` suffix or a leading `{`) are parsed with the json module.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import pathlib
from importlib import resources
from typing import Any

import yaml

from ..policy import Catalog, CatalogError, compile_catalog
from ..policy.errors import Problem
from ..policy.validation import DocPath, Lines

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


def _decode(text: bytes, source: str) -> str:
    """The file's text; plain messages for the files that are not a catalog at all."""
    if len(text) > MAX_BYTES:
        raise CatalogError(source, [f"file is larger than {MAX_BYTES} bytes"])
    if text.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise CatalogError(source, ["the file is UTF-16 text: save it as UTF-8"])
    try:
        decoded = text.decode("utf-8-sig")  # a UTF-8 byte order mark is harmless: drop it
    except UnicodeDecodeError as exc:
        line = text.count(b"\n", 0, exc.start) + 1
        raise CatalogError(source, [Problem(source, line, "", f"the file is not UTF-8 text (byte 0x{text[exc.start]:02x} "
                                            f"at offset {exc.start} cannot be decoded)")]) from None
    if not decoded.strip():
        raise CatalogError(source, ["the file is empty"])
    return decoded


def _yaml_error(exc: yaml.YAMLError, source: str, text: str) -> CatalogError:
    """A YAML syntax error with the file's name and line (PyYAML would name the text `<unicode string>`)."""
    if isinstance(exc, yaml.reader.ReaderError):
        line = text.count("\n", 0, exc.position) + 1
        reason = f"YAML error: character U+{exc.character:04X} is not allowed ({exc.reason})"
        return CatalogError(source, [Problem(source, line, "", reason)])
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        context = f" ({exc.context} on line {exc.context_mark.line + 1})" if exc.context and exc.context_mark else ""
        kind = "YAML error" if isinstance(exc, yaml.composer.ComposerError) else "YAML syntax error"
        reason = f"{kind} at column {mark.column + 1}: {exc.problem}{context}"
        return CatalogError(source, [Problem(source, mark.line + 1, "", reason)])
    return CatalogError(source, [f"YAML error: {exc}"])


def _lines(root: yaml.Node) -> dict[DocPath, int]:
    """Each entry's and field's 1-based line, by its path in the document (`("endpoints", 3, "scopes")`)."""
    lines: dict[DocPath, int] = {(): root.start_mark.line + 1}
    stack: list[tuple[DocPath, yaml.Node]] = [((), root)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                child = path + (str(key.value),)
                lines[child] = key.start_mark.line + 1
                stack.append((child, value))
        elif isinstance(node, yaml.SequenceNode):
            for index, value in enumerate(node.value):
                lines[path + (index,)] = value.start_mark.line + 1
                stack.append((path + (index,), value))
    return lines


def parse(text: bytes, source: str) -> tuple[Any, Lines | None]:
    """Parse catalog bytes (YAML or JSON) into plain data and its line numbers, or raise `CatalogError`.

    YAML is composed into nodes first, which know their lines; JSON is parsed by the json module,
    which does not, so a JSON catalog's problems are named by entry only (the error says so).
    """
    decoded = _decode(text, source)
    if source.endswith(".json") or decoded.lstrip().startswith("{"):
        try:
            return json.loads(decoded), None
        except json.JSONDecodeError as exc:
            raise CatalogError(source, [Problem(source, exc.lineno, "", f"JSON syntax error at column {exc.colno}: "
                                                f"{exc.msg}")]) from None
        except RecursionError:
            raise CatalogError(source, ["JSON nested too deeply"]) from None
        except ValueError as exc:  # e.g. an integer beyond Python's digit limit
            raise CatalogError(source, [f"JSON value error: {exc}"]) from None
    # Only pay for the alias-checking loader when the text could hold an anchor or alias.
    loader_class = _NoAliasLoader if "&" in decoded or "*" in decoded else _SafeLoader
    loader = None
    try:
        loader = loader_class(decoded)  # the pure Python reader already checks the characters here
        root = loader.get_single_node()
        data = None if root is None else loader.construct_document(root)
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, source, decoded) from None
    except RecursionError:
        raise CatalogError(source, ["YAML nested too deeply"]) from None
    except ValueError as exc:  # an impossible timestamp (2026-13-45) or an integer beyond the digit limit
        raise CatalogError(source, [f"YAML value error: {exc}"]) from None
    finally:
        if loader is not None:
            loader.dispose()
    if root is None:
        raise CatalogError(source, ["the file holds no YAML document (only comments or blank lines)"])
    return data, _lines(root)


def parse_document(text: bytes, source: str) -> Any:
    """Parse catalog bytes into plain data (without line numbers), or raise `CatalogError`."""
    return parse(text, source)[0]


def load_bytes(text: bytes, source: str) -> Catalog:
    digest = hashlib.sha256(text).hexdigest()[:12]
    data, lines = parse(text, source)
    try:
        return compile_catalog(data, source=source, digest=digest, lines=lines)
    except CatalogError as exc:
        if lines is None:
            raise exc.noted("JSON carries no line numbers: entries are named by position") from None
        raise


def load_file(path: str | pathlib.Path) -> Catalog:
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


def builtin_path(name: str) -> pathlib.Path:
    """The file of a catalog shipped in the package (`calendly.yaml`, `example-tasks.yaml`)."""
    return pathlib.Path(__file__).parent / "builtin" / name


def load(path: str | pathlib.Path | None) -> Catalog:
    """`load_file(path)`, or the embedded default when `path` is empty."""
    return load_file(path) if path else load_default()
