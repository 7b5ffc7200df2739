"""Path normalisation and matching rules (docs/paths.md)."""

from __future__ import annotations

import pytest

from scopesvc.policy.paths import MAX_PATH_LENGTH, MalformedPath, PathTrie, split_path


@pytest.mark.parametrize(
    ("target", "segments"),
    [
        ("/", []),
        ("/users/me", ["users", "me"]),
        ("/users/me/", ["users", "me"]),
        ("/users/me?x=/../..&y=%2F", ["users", "me"]),
        ("/%75sers/me", ["users", "me"]),
        ("/files/a.b..c", ["files", "a.b..c"]),
        ("/a/%C3%A9t%C3%A9", ["a", "été"]),
        ("/a/{uuid}", ["a", "{uuid}"]),
        ("/a/b:c@d!$&'()*+,=~-_", ["a", "b:c@d!$&'()*+,=~-_"]),
    ],
)
def test_accepted(target, segments):
    assert split_path(target) == segments


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("/users/../admin", "dot segment"),
        ("/users/./me", "dot segment"),
        ("/users/%2e%2e/admin", "encoded dot segment"),
        ("/users/%2E/admin", "encoded dot segment"),
        ("/users%2Fme", "encoded slash"),
        ("/users%2fme", "encoded slash"),
        ("/users%5Cme", "encoded slash or backslash"),
        ("/users/%252e%252e", "double percent-encoding"),
        ("/users/me%3Fadmin=1", "encoded '\\?' or '#'"),
        ("/users/me%23x", "encoded '\\?' or '#'"),
        ("/users//me", "empty path segment"),
        ("//users/me", "empty path segment"),
        ("/users\\me", "backslash"),
        ("/users;x=1/me", "';' path parameter"),
        ("/users/me;jsessionid=1", "';' path parameter"),
        ("/users/%zz", "bad percent-encoding"),
        ("/users/%4", "bad percent-encoding"),
        ("/users/%ff", "not UTF-8"),
        ("/users/%00", "control"),
        ("/users/me\x00", "control"),
        ("/users/m e", "control or space"),
        ("/users/me#frag", "fragment"),
        ("https://api.example/users/me", "absolute-form"),
        ("users/me", "must start with '/'"),
        ("*", "asterisk-form"),
        ("", "empty path"),
        ("/users/mé", "must be percent-encoded"),
        ("/a/{b", "must be percent-encoded"),
        ("/" + "a" * MAX_PATH_LENGTH, "longer than"),
    ],
)
def test_rejected(target, reason):
    with pytest.raises(MalformedPath, match=reason.replace("(", r"\(")):
        split_path(target)


def test_strict_trailing_slash_keeps_an_unmatchable_segment():
    assert split_path("/users/me/", strip_trailing_slash=False) == ["users", "me", ""]


def test_trie_static_wins_and_backtracks():
    trie: PathTrie[str] = PathTrie()
    trie.add(["a", "{x}", "c"], "GET", "param-then-c")
    trie.add(["a", "b", "{y}"], "GET", "b-then-param")
    trie.add(["a", "b"], "GET", "b")
    assert trie.find(["a", "b", "c"]) == {"GET": "b-then-param"}
    assert trie.find(["a", "z", "c"]) == {"GET": "param-then-c"}
    assert trie.find(["a", "b"]) == {"GET": "b"}
    assert trie.find(["a"]) is None
    assert trie.find(["a", "", "c"]) is None, "an empty segment never fills a parameter"
    assert trie.add(["a", "{z}", "c"], "GET", "again") == "param-then-c"
    assert sorted(trie) == ["b", "b-then-param", "param-then-c"]
