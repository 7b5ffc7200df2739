"""Fuzz target: the path normaliser and matcher (scopesvc.policy.paths, Engine.check).

Invariants checked on every input, besides "no exception but MalformedPath":
- an accepted path decodes to plain segments: no dot segment, no empty segment (but the final
  one in strict mode), no '/', '\\', '%' or control character in any segment;
- re-encoding the segments and splitting again gives the same segments (one meaning only);
- an allowed request's endpoint template matches the decoded segments, segment by segment;
- a malformed path is never allowed, not even for a legacy (full-access) token.
"""

from __future__ import annotations

import sys
from urllib.parse import quote

import atheris

with atheris.instrument_imports():
    from scopesvc.catalog import files as catalog_files
    from scopesvc.policy import Engine, Reason, Token, TokenFormat
    from scopesvc.policy.paths import MalformedPath, split_path

ENGINES = [Engine(catalog_files.load_default()),
           Engine(catalog_files.load_file(catalog_files.builtin_path("example-tasks.yaml")))]
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
            template = decision.endpoint.template.split("/")[1:] if decision.endpoint.template != "/" else []
            if len(template) != len(segments) or any(
                t != s and not t.startswith("{") for t, s in zip(template, segments, strict=True)
            ):
                raise AssertionError(f"{method} {target!r} allowed as {decision.endpoint.key}")
        elif decision.reason == Reason.MALFORMED_PATH and decision.http_status != 400:
            raise AssertionError(f"malformed {target!r} answered {decision.http_status}")


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
