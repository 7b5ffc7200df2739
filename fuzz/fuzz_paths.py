"""Fuzz target: the path normaliser and matcher (scopesvc.policy.paths, Engine.check).

Invariants checked on every input, besides "no exception but MalformedPath":
- an accepted path decodes to plain segments: no dot segment, no empty segment (but the final
  one in strict mode), no '/', '\\', '%' or control character in any segment;
- re-encoding the segments and splitting again gives the same segments (one meaning only);
- an allowed request's endpoint template matches the decoded segments (a regex per template, written
  here from docs/paths.md), also for a catalog of rich templates matched case-insensitively;
- a malformed path is never allowed, not even for a legacy (full-access) token.
"""

from __future__ import annotations

import re
import sys
from urllib.parse import quote

import atheris

with atheris.instrument_imports():
    from scopesvc.catalog import files as catalog_files
    from scopesvc.policy import Engine, Reason, Token, TokenFormat, compile_catalog
    from scopesvc.policy.paths import MalformedPath, split_path

RICH = {"format": "scopesvc.catalog/v1", "name": "rich", "paths": {"case_insensitive": True},
        "scopes": [{"name": "a"}], "endpoints": [
            {"method": "GET", "path": p, "scopes": ["a"]} for p in (
                "/files/{id}", "/files/{id}.json", "/files/{id}/thumbnail.{ext}", "/files/Recent", "/v1/{name}:cancel",
                "/v1/{name=**}", "/v1/{name=**}:publish", "/v1/x{y}", "/Accounts/{id}/report")]}
ENGINES = [Engine(catalog_files.load_default()),
           Engine(catalog_files.load_file(catalog_files.builtin_path("example-tasks.yaml"))),
           Engine(compile_catalog(RICH))]
_PART = re.compile(r"([^{}]*)\{[A-Za-z_][A-Za-z0-9_]*(=\*\*)?\}([^{}]*)")


def template_regex(template: str) -> re.Pattern[str]:
    """What a template matches, per docs/paths.md: literal text, `[^/]+` for a parameter, one or
    more segments for `{name=**}` (ASCII case ignored, as RICH asks; the other catalogs' templates
    differ in more than case, so it loses nothing for them)."""
    parts = []
    for segment in template[1:].split("/") if template != "/" else []:
        match = _PART.fullmatch(segment)
        if match is None:
            parts.append(re.escape(segment))
        else:
            prefix, many, suffix = match.groups()
            parts.append(re.escape(prefix) + ("[^/]+(?:/[^/]+)*" if many else "[^/]+") + re.escape(suffix))
    return re.compile("/" + "/".join(parts), re.IGNORECASE | re.ASCII)
METHODS = ["GET", "POST", "HEAD", "DELETE", "PATCH", "get"]
LEGACY = Token(format=TokenFormat.LEGACY)
_BAD = set("/\\%") | {chr(c) for c in range(0x21)} | {chr(c) for c in range(0x7F, 0xA0)}


def check_segments(target: str, segments: list[str], strict: bool) -> None:
    for i, segment in enumerate(segments):
        if segment == "" and strict and i == len(segments) - 1:
            continue
        if segment in ("", ".", "..") or _BAD & set(segment):
            raise AssertionError(f"accepted {target!r} with segment {segment!r}")
    encoded = "/" + "/".join(quote(s, safe="") for s in segments)
    if split_path(encoded, not strict) != segments:
        raise AssertionError(f"{target!r} -> {segments!r} does not round-trip through {encoded!r}")


def TestOneInput(data: bytes) -> None:  # noqa: N802 - atheris' name
    fdp = atheris.FuzzedDataProvider(data)
    method = METHODS[fdp.ConsumeIntInRange(0, len(METHODS) - 1)]
    target = fdp.ConsumeUnicodeNoSurrogates(fdp.remaining_bytes())
    for strict in (False, True):
        try:
            segments = split_path(target, not strict)
        except MalformedPath:
            segments = None
        if segments is not None:
            check_segments(target, segments, strict)
    for engine in ENGINES:
        decision = engine.check(LEGACY, method, target)
        if decision.allowed:
            segments = split_path(target, engine.catalog.strip_trailing_slash)
            ignore_case = engine.catalog.case_insensitive
            pattern = template_regex(decision.endpoint.template)
            text = "/" + "/".join(segments)
            if not (pattern.fullmatch(text) if ignore_case else re.fullmatch(pattern.pattern, text)):
                raise AssertionError(f"{method} {target!r} allowed as {decision.endpoint.key}")
        elif decision.reason == Reason.MALFORMED_PATH and decision.http_status != 400:
            raise AssertionError(f"malformed {target!r} answered {decision.http_status}")


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
