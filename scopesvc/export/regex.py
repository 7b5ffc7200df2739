"""The engine's path and token rules as RE2 patterns, for proxies that match with RE2 (Envoy).

Every pattern here is meant for a FULL match (Envoy's `safe_regex` semantics; `re.fullmatch`
in Python, whose syntax these patterns share), so none carries `^` or `$`. The path patterns
restate `scopesvc.policy.paths` exactly (tests compare them with `split_path` on generated
paths): a path `WELLFORMED` rejects is one the engine calls malformed, and a node pattern
matches the well-formed paths whose segments that node's template matches, percent-encoded
spellings of its literal characters included (`/%75sers/me` is `/users/me`), and with
case-insensitive paths either case of each letter, raw or encoded (`/%55SERS/Me`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..policy.paths import MAX_PATH_LENGTH
from .model import LITERAL, REST, TEXT, Part, part

ANY = r"[\s\S]*"
QUERY = r"(?:\?[\s\S]*)?"  # the engine ignores everything from the first '?'
PARAM = "[^/?]+"  # one segment of a path WELLFORMED accepts
# One or more whole characters of such a segment, raw or `%XX`: literal text after it then starts
# at a character (after `[^/?]+`, a suffix `1x` could match the end of `a%41x`, which is `aAx`).
CHARS = "(?:[^%/?]|%[0-9A-Fa-f]{2})+"
_META = set("\\.+*?()|[]{}^$")
# RE2's largest counted repetition; longer runs are written as several.
_MAX_REPEAT = 1000


def escape(text: str) -> str:
    """`text` as a literal (RE2 and Python agree on backslash-escaped punctuation)."""
    return "".join("\\" + c if c in _META else c for c in text)


def _hex_digit(value: int) -> str:
    digit = f"{value:X}"
    return digit if digit.isdigit() else f"[{digit}{digit.lower()}]"


def _hex_range(low: int, high: int) -> str:
    digits = "".join(sorted({c for v in range(low, high + 1) for c in (f"{v:X}", f"{v:x}")}))
    return digits if len(digits) == 1 else f"[{digits}]"


def encoded_byte(value: int) -> str:
    """`%XX` for one byte, either case of hex digit."""
    return "%" + _hex_digit(value >> 4) + _hex_digit(value & 15)


def encoded_bytes(low: int, high: int) -> str:
    """`%XX` for any byte in [low, high]."""
    parts = []
    for nibble in range(low >> 4, (high >> 4) + 1):
        first = low & 15 if nibble == low >> 4 else 0
        last = high & 15 if nibble == high >> 4 else 15
        parts.append("%" + _hex_digit(nibble) + _hex_range(first, last))
    return parts[0] if len(parts) == 1 else "(?:" + "|".join(parts) + ")"


def _encoded_set(values: Iterable[int]) -> str:
    """`%XX` for any of the ASCII bytes in `values`, grouped by high nibble."""
    by_high: dict[int, list[int]] = {}
    for value in sorted(values):
        by_high.setdefault(value >> 4, []).append(value & 15)
    parts = []
    for high, lows in by_high.items():
        digits = "".join(sorted({c for v in lows for c in (f"{v:X}", f"{v:x}")}))
        parts.append("%" + _hex_digit(high) + (digits if len(digits) == 1 else f"[{digits}]"))
    return "(?:" + "|".join(parts) + ")"


# Raw characters a segment may hold (paths._SEGMENT_CHARS without '%', which starts an encoding).
_RAW = "A-Za-z0-9_\\-~!$&'()*+,=:@"
RAW_CHAR = f"[{_RAW}.]"
# Printable ASCII a percent-encoding may decode to: not '/', '\\', '?', '#', '%' (paths._decode).
_ASCII_ENCODED = [b for b in range(0x21, 0x7F) if chr(b) not in "/\\?#%"]
# Multi-byte UTF-8 that decodes strictly (no overlong forms, surrogates or values past
# U+10FFFF) to a character that is not a C1 control (U+0080-U+009F, which paths._CONTROL refuses).
_CONT = encoded_bytes(0x80, 0xBF)
_UTF8 = "|".join([
    encoded_byte(0xC2) + encoded_bytes(0xA0, 0xBF),
    encoded_bytes(0xC3, 0xDF) + _CONT,
    encoded_byte(0xE0) + encoded_bytes(0xA0, 0xBF) + _CONT,
    encoded_bytes(0xE1, 0xEC) + _CONT * 2,
    encoded_byte(0xED) + encoded_bytes(0x80, 0x9F) + _CONT,
    encoded_bytes(0xEE, 0xEF) + _CONT * 2,
    encoded_byte(0xF0) + encoded_bytes(0x90, 0xBF) + _CONT * 2,
    encoded_bytes(0xF1, 0xF3) + _CONT * 3,
    encoded_byte(0xF4) + encoded_bytes(0x80, 0x8F) + _CONT * 2,
])
# One character of a valid segment, raw or encoded; a dot; anything but a dot.
UNIT = f"(?:{RAW_CHAR}|{_encoded_set(_ASCII_ENCODED)}|{_UTF8})"
DOT = r"(?:\.|%2[Ee])"
NOT_DOT = f"(?:[{_RAW}]|{_encoded_set(b for b in _ASCII_ENCODED if b != 0x2E)}|{_UTF8})"
# A segment: not empty, not '.' or '..' however spelled, or a template segment as written
# ('{param}', '{name=**}', with literal text around it: paths._TEMPLATE_SEGMENT).
SEGMENT = (f"(?:{NOT_DOT}{UNIT}*|{DOT}{NOT_DOT}{UNIT}*|{DOT}{DOT}{UNIT}+"
           f"|{RAW_CHAR}*\\{{[A-Za-z_][A-Za-z0-9_]*(?:=\\*\\*)?\\}}{RAW_CHAR}*)")
# What the engine accepts: '/' or segments with an optional trailing '/', then any query.
WELLFORMED = f"(?:/|(?:/{SEGMENT})+/?){QUERY}"


def longer_than(limit: int) -> str:
    """Any string of more than `limit` characters (in runs RE2's counted repetition allows)."""
    runs, rest = divmod(limit + 1, _MAX_REPEAT)
    return f"[\\s\\S]{{{_MAX_REPEAT}}}" * runs + (f"[\\s\\S]{{{rest}}}" if rest else "") + ANY


TOO_LONG = longer_than(MAX_PATH_LENGTH)


def literal_char(c: str, case_insensitive: bool = False) -> str:
    """A literal template character, raw or percent-encoded (the engine decodes before matching);
    an ASCII letter in either case too with `case_insensitive`."""
    if case_insensitive and c.isascii() and c.isalpha():
        upper = ord(c.upper())  # 0x41-0x5A; lower case is 0x20 more: high nibble + 2
        return f"(?:[{c.upper()}{c.lower()}]|%[{upper >> 4}{(upper >> 4) + 2}]{_hex_digit(upper & 15)})"
    return f"(?:{escape(c)}|{encoded_byte(ord(c))})"


def literal_text(text: str, case_insensitive: bool = False) -> str:
    return "".join(literal_char(c, case_insensitive) for c in text)


def segment_pattern(segment: Part, case_insensitive: bool = False) -> str:
    """The raw spellings of the segments (or, for REST, the `/`-joined segments) `segment` matches."""
    kind, _, prefix, suffix = segment
    if kind == LITERAL:
        return literal_text(prefix, case_insensitive)
    # At least one character for the parameter, whole characters when literal text follows.
    value = (CHARS if suffix else PARAM) + literal_text(suffix, case_insensitive)
    if kind == TEXT:
        return literal_text(prefix, case_insensitive) + value
    return value if kind != REST else f"(?:{PARAM}/)*{value}"


def node_pattern(segments: Sequence[str], strip_trailing_slash: bool, case_insensitive: bool = False) -> str:
    """The well-formed paths (query included) whose segments match this template shape."""
    if not segments:
        return "/" + QUERY
    body = "".join("/" + segment_pattern(part(s, case_insensitive), case_insensitive) for s in segments)
    return body + ("/?" if strip_trailing_slash else "") + QUERY


# Whitespace as Python's str.split() sees it (the adapter splits scope claims with it).
_SPACE = "".join(
    (f"\\x{ord(c):02x}" if ord(c) < 0x100 else c) for c in map(chr, range(0x3100)) if c.isspace()
)
SPACE = f"[{_SPACE}]"


def has_word(words: Sequence[str]) -> str:
    """A claim string that, split on whitespace, holds one of `words`."""
    alternatives = "|".join(escape(w) for w in words)
    return f"(?:{ANY}{SPACE})?(?:{alternatives})(?:{SPACE}{ANY})?"

