"""The command line as a shell script meets it: real `scopesvc` processes, their exit codes and streams.

Exit 2 (usage) must never be confused with 1 (denied), a closed pipe is not an error worth a
traceback, and every decision command can answer in JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata

import pytest

from scopesvc import cli


def run(*args: str | bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "scopesvc", *args], capture_output=True, timeout=60, check=False)


@pytest.mark.parametrize(
    ("args", "position"),
    [
        ((b"check", b"GET", b"/users/me", b"-s", b"users:read\xff"), 5),  # used to be a traceback and exit 1
        ((b"plan", b"\xff"), 2),
        ((b"catalog", b"validate", b"/tmp/\xfe.yaml"), 3),
        ((b"diagnose", b"--event", b"invitee.\xc0\xae"), 3),
        ((b"\xff",), 1),
    ],
)
def test_arguments_that_are_not_utf8_exit_2_with_a_message(args, position):
    result = run(*args)
    assert result.returncode == 2
    assert result.stderr.startswith(f"scopesvc: argument {position} (".encode()) and b"is not valid UTF-8" in result.stderr
    assert b"Traceback" not in result.stderr and result.stdout == b""


@pytest.mark.parametrize(("args", "code"), [(("catalog", "show"), 141), (("catalog", "show", "--json"), 141),
                                            (("check", "GET", "/users/me", "-s", "users:read"), 141),
                                            (("--help",), 0)])  # argparse itself ignores a failed help write
def test_a_closed_pipe_is_quiet(args, code):
    # The reader is gone before the first write (as `| head -1` is after its line): no traceback, no
    # "Broken pipe" message, and exit 141 as for a command killed by SIGPIPE - never 1 ("denied").
    read, write = os.pipe()
    os.close(read)
    with os.fdopen(write, "wb") as stdout:
        result = subprocess.run([sys.executable, "-m", "scopesvc", *args], stdout=stdout, stderr=subprocess.PIPE,
                                timeout=60, check=False)
    assert result.stderr == b"" and result.returncode == code


def test_head_reads_the_first_line_of_catalog_show():
    result = subprocess.run(f"{sys.executable} -m scopesvc catalog show | head -1", shell=True, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0 and result.stdout.startswith("calendly-api-v2 revision") and result.stderr == ""


def test_version():
    result = run("--version")
    assert result.returncode == 0 and result.stdout.decode() == f"scopesvc {metadata.version('scopesvc')}\n"


@pytest.mark.parametrize(
    ("args", "usage"),
    [
        (("check", "--bogus", "GET", "/users/me"), "usage: scopesvc check "),
        (("catalog", "show", "--bogus"), "usage: scopesvc catalog show "),
        (("catalog", "validate", "--colour", "x.yaml"), "usage: scopesvc catalog validate "),
        (("plan", "--bogus"), "usage: scopesvc plan "),
        (("serve", "--bogus"), "usage: scopesvc serve "),
        (("catalog",), "usage: scopesvc catalog "),
    ],
)
def test_a_bad_flag_shows_the_subcommands_own_usage(args, usage):
    result = run(*args)
    assert result.returncode == 2 and result.stderr.decode().startswith(usage), result.stderr
    assert b"Traceback" not in result.stderr


def _commands(parser, prefix=()):  # type: ignore[no-untyped-def]
    """Every runnable (sub)command parser, by its words."""
    for action in parser._subparsers._group_actions if parser._subparsers else ():
        for name, sub in action.choices.items():
            if sub._subparsers:
                yield from _commands(sub, (*prefix, name))
            else:
                yield (*prefix, name), sub


def test_every_command_but_serve_takes_json():
    # The README promises --json on every command; `serve` is a server and prints no answer.
    commands = dict(_commands(cli.build_parser()))
    assert ("serve",) in commands and ("catalog", "validate") in commands
    lacking = [" ".join(words) for words, sub in commands.items()
               if words != ("serve",) and "--json" not in sub._option_string_actions]
    assert lacking == []


@pytest.mark.parametrize(
    ("args", "code", "key"),
    [
        (("check", "GET", "/users/me", "-s", "users:read", "--json"), 0, "allowed"),
        (("plan", "GET /users/me", "--json"), 0, "scopes"),
        (("migrate", "--format", "legacy", "--json"), 0, "scopes"),
        (("webhook", "--event", "invitee.created", "-s", "scheduled_events:read", "--json"), 0, "allowed"),
        (("diagnose", "GET", "/users/me", "--json"), 1, "target"),
        (("catalog", "show", "--json"), 0, "endpoints"),
        (("catalog", "validate", "--json"), 0, "valid"),
    ],
)
def test_json_output_parses(args, code, key):
    result = run(*args)
    assert result.returncode == code, result.stderr
    assert key in json.loads(result.stdout)
